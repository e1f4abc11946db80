#pragma once

// Observers watch the values a tensor takes during calibration and choose
// quantization parameters for it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/quant/qparams.hpp"

namespace xgrad::quant {

class Observer {
public:
    /// `axis` -1 observes the whole tensor; otherwise one range per index
    /// along `axis` (per channel).
    explicit Observer(QScheme scheme, std::int64_t axis = -1) : scheme_(scheme), axis_(axis) {}
    virtual ~Observer() = default;

    /// Records the values of one batch.
    virtual void observe(const Tensor& x) = 0;

    /// Parameters for everything observed so far. Throws value_error when
    /// nothing was observed.
    virtual QParams qparams() const = 0;

    QScheme scheme() const { return scheme_; }
    std::int64_t axis() const { return axis_; }
    std::size_t batches() const { return batches_; }

protected:
    void count_batch() { ++batches_; }
    void check_observed(const char* name) const;

    QScheme scheme_;
    std::int64_t axis_;
    std::size_t batches_ = 0;
};

/// The smallest and largest value ever seen, per tensor or per channel.
class MinMaxObserver : public Observer {
public:
    using Observer::Observer;
    void observe(const Tensor& x) override;
    QParams qparams() const override;

protected:
    std::vector<double> min_;
    std::vector<double> max_;
};

/// An exponential moving average of each batch's minimum and maximum:
/// m <- m + c (batch - m), starting at the first batch's values. Less
/// sensitive to one outlying batch than MinMaxObserver.
class MovingAverageMinMaxObserver : public MinMaxObserver {
public:
    explicit MovingAverageMinMaxObserver(QScheme scheme, std::int64_t axis = -1,
                                         double averaging_constant = 0.01);
    void observe(const Tensor& x) override;

private:
    double averaging_constant_;
};

/// A histogram of every value seen (per tensor only), from which the range
/// is chosen either as percentiles, clipping rare outliers, or to minimise
/// the expected squared quantization error over the histogram.
class HistogramObserver : public Observer {
public:
    enum class Method { percentile, mse };

    /// `percentile` is the fraction of values kept on each side for
    /// Method::percentile (0.9999 clips the lowest and highest 0.01%).
    HistogramObserver(QScheme scheme, Method method, double percentile = 0.9999,
                      std::size_t bins = 2048);
    void observe(const Tensor& x) override;
    QParams qparams() const override;

    /// The range the method chooses, before choose_qparams() widens it to 0.
    std::pair<double, double> chosen_range() const;

private:
    void rebin(double low, double high);
    double squared_error(double low, double high) const;

    Method method_;
    double percentile_;
    std::vector<double> counts_;
    double low_ = 0.0;
    double high_ = 0.0;
};

/// The activation observers, by name as the command-line tools accept them:
/// "minmax", "moving_average", "histogram_percentile" or "histogram_mse".
std::unique_ptr<Observer> make_activation_observer(const std::string& name);

}  // namespace xgrad::quant

#include "xgrad/quant/observer.hpp"

#include <algorithm>
#include <cmath>

namespace xgrad::quant {

void Observer::check_observed(const char* name) const {
    if (batches_ == 0) {
        throw value_error(std::string(name) + ": no values observed yet; run calibration batches first");
    }
}

void MinMaxObserver::observe(const Tensor& x) {
    const auto [low, high] = channel_min_max(x, axis_);
    if (min_.empty()) {
        min_ = low;
        max_ = high;
    } else {
        if (low.size() != min_.size()) {
            throw shape_error("MinMaxObserver: a batch has " + std::to_string(low.size()) +
                              " channels, earlier batches had " + std::to_string(min_.size()));
        }
        for (std::size_t c = 0; c < low.size(); ++c) {
            min_[c] = std::min(min_[c], low[c]);
            max_[c] = std::max(max_[c], high[c]);
        }
    }
    count_batch();
}

QParams MinMaxObserver::qparams() const {
    check_observed("MinMaxObserver");
    return choose_qparams(min_, max_, scheme_, axis_);
}

MovingAverageMinMaxObserver::MovingAverageMinMaxObserver(QScheme scheme, std::int64_t axis,
                                                         double averaging_constant)
    : MinMaxObserver(scheme, axis), averaging_constant_(averaging_constant) {
    if (!(averaging_constant > 0.0 && averaging_constant <= 1.0)) {
        throw value_error("MovingAverageMinMaxObserver: averaging_constant must be in (0, 1], got " +
                          std::to_string(averaging_constant));
    }
}

void MovingAverageMinMaxObserver::observe(const Tensor& x) {
    const auto [low, high] = channel_min_max(x, axis_);
    if (min_.empty()) {
        min_ = low;
        max_ = high;
    } else {
        if (low.size() != min_.size()) {
            throw shape_error("MovingAverageMinMaxObserver: a batch has " + std::to_string(low.size()) +
                              " channels, earlier batches had " + std::to_string(min_.size()));
        }
        for (std::size_t c = 0; c < low.size(); ++c) {
            min_[c] += averaging_constant_ * (low[c] - min_[c]);
            max_[c] += averaging_constant_ * (high[c] - max_[c]);
        }
    }
    count_batch();
}

HistogramObserver::HistogramObserver(QScheme scheme, Method method, double percentile, std::size_t bins)
    : Observer(scheme, -1), method_(method), percentile_(percentile), counts_(bins, 0.0) {
    if (bins < 2) {
        throw value_error("HistogramObserver: needs at least 2 bins, got " + std::to_string(bins));
    }
    if (!(percentile > 0.5 && percentile <= 1.0)) {
        throw value_error("HistogramObserver: percentile must be in (0.5, 1], got " + std::to_string(percentile));
    }
}

// Moves the counts to the bins of a wider range [low, high]: each old bin's
// count goes to the new bin that contains its centre.
void HistogramObserver::rebin(double low, double high) {
    std::vector<double> counts(counts_.size(), 0.0);
    const double old_width = (high_ - low_) / static_cast<double>(counts_.size());
    const double new_width = (high - low) / static_cast<double>(counts.size());
    for (std::size_t b = 0; b < counts_.size(); ++b) {
        if (counts_[b] == 0.0) {
            continue;
        }
        const double centre = low_ + (static_cast<double>(b) + 0.5) * old_width;
        const auto target = static_cast<std::size_t>(std::clamp(
            std::floor((centre - low) / new_width), 0.0, static_cast<double>(counts.size() - 1)));
        counts[target] += counts_[b];
    }
    counts_ = std::move(counts);
    low_ = low;
    high_ = high;
}

void HistogramObserver::observe(const Tensor& x) {
    const auto [low, high] = channel_min_max(x, -1);
    if (batches_ == 0) {
        low_ = low[0];
        high_ = high[0] > low[0] ? high[0] : low[0] + 1e-6;
    } else if (low[0] < low_ || high[0] > high_) {
        rebin(std::min(low[0], low_), std::max(high[0], high_));
    }
    const auto bins = static_cast<double>(counts_.size());
    const double width = (high_ - low_) / bins;
    detail::visit_floating(x.dtype(), "HistogramObserver", [&](auto zero) {
        using T = decltype(zero);
        for (T value : x.values<T>()) {
            const auto v = static_cast<double>(value);
            if (std::isnan(v)) {
                continue;
            }
            const double b = std::clamp(std::floor((v - low_) / width), 0.0, bins - 1.0);
            counts_[static_cast<std::size_t>(b)] += 1.0;
        }
    });
    count_batch();
}

// Expected squared error of quantizing the histogram's bin centres with the
// parameters for [low, high], weighted by the counts.
double HistogramObserver::squared_error(double low, double high) const {
    const QParams params = choose_qparams({low}, {high}, scheme_);
    const double width = (high_ - low_) / static_cast<double>(counts_.size());
    double error = 0.0;
    for (std::size_t b = 0; b < counts_.size(); ++b) {
        if (counts_[b] == 0.0) {
            continue;
        }
        const double centre = low_ + (static_cast<double>(b) + 0.5) * width;
        const std::int64_t q = quantize_value(centre, params.scales[0], params.zero_points[0],
                                              params.qmin(), params.qmax());
        const double restored = static_cast<double>(q - params.zero_points[0]) * params.scales[0];
        error += counts_[b] * (centre - restored) * (centre - restored);
    }
    return error;
}

std::pair<double, double> HistogramObserver::chosen_range() const {
    check_observed("HistogramObserver");
    const std::size_t bins = counts_.size();
    const double width = (high_ - low_) / static_cast<double>(bins);
    double total = 0.0;
    for (double count : counts_) {
        total += count;
    }
    if (method_ == Method::percentile) {
        // The first bin where the cumulative count passes 1 - p from below,
        // and the last where it passes p.
        const double tail = (1.0 - percentile_) * total;
        double running = 0.0;
        std::size_t first = 0;
        while (first + 1 < bins && running + counts_[first] <= tail) {
            running += counts_[first++];
        }
        running = 0.0;
        std::size_t last = bins - 1;
        while (last > first && running + counts_[last] <= tail) {
            running += counts_[last--];
        }
        return {low_ + static_cast<double>(first) * width, low_ + static_cast<double>(last + 1) * width};
    }
    // Method::mse: shrink the range bin by bin from each end, keeping the
    // candidate with the smallest error.
    std::pair<double, double> best{low_, high_};
    double best_error = squared_error(low_, high_);
    const std::size_t steps = 64;
    const std::size_t stride = std::max<std::size_t>(bins / (2 * steps), 1);
    for (std::size_t left = 0; left < bins / 2; left += stride) {
        for (std::size_t right = 0; right < bins / 2; right += stride) {
            const double low = low_ + static_cast<double>(left) * width;
            const double high = high_ - static_cast<double>(right) * width;
            const double error = squared_error(low, high);
            if (error < best_error) {
                best_error = error;
                best = {low, high};
            }
        }
    }
    return best;
}

QParams HistogramObserver::qparams() const {
    const auto [low, high] = chosen_range();
    return choose_qparams({low}, {high}, scheme_);
}

std::unique_ptr<Observer> make_activation_observer(const std::string& name) {
    if (name == "minmax") {
        return std::make_unique<MinMaxObserver>(QScheme::affine_uint8);
    }
    if (name == "moving_average") {
        return std::make_unique<MovingAverageMinMaxObserver>(QScheme::affine_uint8);
    }
    if (name == "histogram_percentile") {
        return std::make_unique<HistogramObserver>(QScheme::affine_uint8, HistogramObserver::Method::percentile);
    }
    if (name == "histogram_mse") {
        return std::make_unique<HistogramObserver>(QScheme::affine_uint8, HistogramObserver::Method::mse);
    }
    throw value_error("make_activation_observer: unknown observer '" + name +
                      "'; choose minmax, moving_average, histogram_percentile or histogram_mse");
}

}  // namespace xgrad::quant

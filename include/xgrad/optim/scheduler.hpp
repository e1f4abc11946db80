#pragma once

// Learning-rate schedulers, as PyTorch's torch.optim.lr_scheduler.
//
// A scheduler records each parameter group's lr when it is constructed (its
// base lr) and, at each epoch e, sets every group's lr to a closed-form
// function of that group's base lr and e. Groups with different learning
// rates therefore keep their ratio. Construction sets the lr of epoch 0, and
// each step() advances one epoch:
//
//   optim::Adam optimizer(params, {.lr = 1e-3});
//   optim::CosineAnnealingLR scheduler(optimizer, /*t_max=*/100);
//   for (int epoch = 0; epoch < 100; ++epoch) {
//       train_one_epoch(optimizer);
//       scheduler.step();
//   }
//
// Because every lr follows from the base lr and the epoch alone, a
// scheduler overrides any other change to a group's lr at its next step,
// unlike PyTorch's chainable form of the same schedulers.
//
// A scheduler keeps a reference to its optimizer, which must outlive it.
// Schedulers have no state_dict(): to resume training, construct the
// scheduler on a fresh optimizer (so it records the original learning rates),
// load the optimizer's state, and call step() once per finished epoch.

#include <cstdint>
#include <vector>

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

class LRScheduler {
public:
    virtual ~LRScheduler() = default;
    LRScheduler(const LRScheduler&) = delete;
    LRScheduler& operator=(const LRScheduler&) = delete;

    /// Advances one epoch and sets every group's lr. Throws value_error when
    /// the optimizer has gained param groups since the scheduler was
    /// constructed.
    void step();

    /// The learning rates that the last step() or the constructor set, one
    /// per param group.
    const std::vector<double>& get_last_lr() const { return last_lrs_; }

    /// The current epoch: 0 after construction, increased by each step().
    std::int64_t last_epoch() const { return last_epoch_; }

    /// Each group's lr when the scheduler was constructed.
    const std::vector<double>& base_lrs() const { return base_lrs_; }

protected:
    /// Records the base learning rates. Each subclass constructor validates
    /// its arguments and then calls apply() to set the lr of epoch 0.
    LRScheduler(Optimizer& optimizer, const char* name);

    /// The lr of a group with base lr `base_lr` at `epoch`.
    virtual double lr_at(double base_lr, std::int64_t epoch) const = 0;

    /// Sets every group's lr for last_epoch().
    void apply();

    const char* name_;

private:
    Optimizer& optimizer_;
    std::vector<double> base_lrs_;
    std::vector<double> last_lrs_;
    std::int64_t last_epoch_ = 0;
};

/// lr = base_lr · gamma^⌊epoch / step_size⌋.
class StepLR : public LRScheduler {
public:
    /// Throws value_error for step_size < 1 and for a negative or non-finite gamma.
    StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);

protected:
    double lr_at(double base_lr, std::int64_t epoch) const override;

private:
    std::int64_t step_size_;
    double gamma_;
};

/// lr = base_lr · gamma^epoch.
class ExponentialLR : public LRScheduler {
public:
    /// Throws value_error for a negative or non-finite gamma.
    ExponentialLR(Optimizer& optimizer, double gamma);

protected:
    double lr_at(double base_lr, std::int64_t epoch) const override;

private:
    double gamma_;
};

/// lr = eta_min + (base_lr − eta_min) (1 + cos(π · epoch / t_max)) / 2, the
/// closed form from I. Loshchilov and F. Hutter, "SGDR: Stochastic Gradient
/// Descent with Warm Restarts", ICLR 2017, without the restarts. The lr falls
/// from base_lr to eta_min over t_max epochs. After t_max it rises again,
/// with period 2 t_max.
class CosineAnnealingLR : public LRScheduler {
public:
    /// Throws value_error for t_max < 1 and for a negative or non-finite eta_min.
    CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min = 0.0);

protected:
    double lr_at(double base_lr, std::int64_t epoch) const override;

private:
    std::int64_t t_max_;
    double eta_min_;
};

/// PyTorch's LinearLR: lr = base_lr · f, with the factor f moving linearly
/// from start_factor at epoch 0 to end_factor at epoch total_iters and
/// staying there:
///
///   f = start_factor + (end_factor − start_factor) · min(epoch, total_iters) / total_iters
///
/// With the defaults the lr warms up from a third of base_lr to base_lr over
/// 5 epochs.
class LinearWarmup : public LRScheduler {
public:
    /// Throws value_error for a start_factor outside (0, 1], an end_factor
    /// outside [0, 1], and total_iters < 1.
    explicit LinearWarmup(Optimizer& optimizer, double start_factor = 1.0 / 3.0,
                          double end_factor = 1.0, std::int64_t total_iters = 5);

protected:
    double lr_at(double base_lr, std::int64_t epoch) const override;

private:
    double start_factor_;
    double end_factor_;
    std::int64_t total_iters_;
};

/// PyTorch's name for LinearWarmup.
using LinearLR = LinearWarmup;

}  // namespace xgrad::optim

#pragma once

// AdamW: Adam with decoupled weight decay, from I. Loshchilov and F. Hutter,
// "Decoupled Weight Decay Regularization", ICLR 2019.
//
// For each parameter θ with gradient g, step size α (the group's lr) and
// weight decay λ, at the parameter's step t:
//
//   θ ← θ (1 − α λ)
//   m ← β₁ m + (1 − β₁) g
//   v ← β₂ v + (1 − β₂) g²
//   v̂ ← max(v̂, v)                        (AMSGrad only, from v̂ = 0)
//   θ ← θ − α / (1 − β₁ᵗ) · m / (√u / √(1 − β₂ᵗ) + ε)
//
// where u is v̂ with AMSGrad and v without. Unlike Adam's L2 penalty, the
// decay bypasses m and v, so every weight shrinks by the same factor whatever
// its gradient history. As in PyTorch, the decay is scaled by the scheduled
// lr α, whereas the paper scales it by a separate schedule multiplier.
//
// State per parameter: the same as Adam's (step, exp_avg, exp_avg_sq and,
// with AMSGrad, max_exp_avg_sq).

#include <utility>
#include <vector>

#include "xgrad/optim/adam.hpp"

namespace xgrad::optim {

/// Hyperparameters of AdamW, with PyTorch's defaults. They mean the same as
/// AdamOptions, except that weight_decay is the decoupled decay λ and
/// defaults to 0.01.
struct AdamWOptions {
    double lr = 1e-3;
    std::pair<double, double> betas = {0.9, 0.999};
    double eps = 1e-8;
    double weight_decay = 1e-2;
    bool amsgrad = false;
};

/// Adam with decoupled weight decay. It derives from Adam to share the update
/// loop, and options() returns AdamWOptions.
class AdamW : public Adam {
public:
    /// Throws value_error like Adam's constructor, with messages that start
    /// with "AdamW".
    explicit AdamW(std::vector<Tensor> params, AdamWOptions options = {});
    explicit AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});

    const AdamWOptions& options() const { return options_; }

private:
    AdamWOptions options_;
};

}  // namespace xgrad::optim

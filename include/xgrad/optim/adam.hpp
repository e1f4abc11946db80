#pragma once

// Adam: D. P. Kingma and J. Ba, "Adam: A Method for Stochastic
// Optimization", ICLR 2015, with PyTorch's L2 weight decay and the AMSGrad
// variant of S. J. Reddi, S. Kale and S. Kumar, "On the Convergence of Adam
// and Beyond", ICLR 2018.
//
// For each parameter θ with gradient g, step size α (the group's lr), weight
// decay λ, decay rates β₁, β₂ and ε, at the parameter's step t:
//
//   g ← g + λ θ                          (an L2 penalty, when λ ≠ 0)
//   m ← β₁ m + (1 − β₁) g
//   v ← β₂ v + (1 − β₂) g²
//   v̂ ← max(v̂, v)                        (AMSGrad only, from v̂ = 0)
//   θ ← θ − α / (1 − β₁ᵗ) · m / (√u / √(1 − β₂ᵗ) + ε)
//
// where u is v̂ with AMSGrad and v without. Dividing by 1 − β₁ᵗ and
// √(1 − β₂ᵗ) is the paper's bias correction of m and v, which start at zero.
// ε is added after the correction, as in PyTorch.
//
// The L2 penalty passes through the moment estimates, so it is scaled by the
// adaptive step. AdamW (adamw.hpp) decays the weights directly instead.
//
// State per parameter: step, exp_avg (m), exp_avg_sq (v) and, with AMSGrad,
// max_exp_avg_sq (v̂).

#include <utility>
#include <vector>

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

/// Hyperparameters of Adam, with PyTorch's defaults.
struct AdamOptions {
    /// Step size α, >= 0.
    double lr = 1e-3;

    /// Decay rates (β₁, β₂) of the first and second moment estimates, each in [0, 1).
    std::pair<double, double> betas = {0.9, 0.999};

    /// Term ε added to the denominator, >= 0.
    double eps = 1e-8;

    /// L2 penalty λ, >= 0, added to the gradient as λ θ.
    double weight_decay = 0.0;

    /// Divides by the maximum of all second moment estimates so far (AMSGrad).
    bool amsgrad = false;
};

class Adam : public Optimizer {
public:
    /// Throws value_error naming the option and its value for a negative or
    /// non-finite lr, eps or weight_decay, and for a beta outside [0, 1). The
    /// Optimizer constructor documents the checks on parameters and groups.
    explicit Adam(std::vector<Tensor> params, AdamOptions options = {});
    explicit Adam(std::vector<ParamGroup> groups, AdamOptions options = {});

    const AdamOptions& options() const { return options_; }

protected:
    /// For AdamW: with `decoupled_weight_decay`, step() multiplies θ by
    /// 1 − α λ before the update instead of adding λ θ to the gradient.
    Adam(std::string name, std::vector<ParamGroup> groups, AdamOptions options,
         bool decoupled_weight_decay);

    std::vector<std::string> buffer_names() const override;
    void update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) override;
    void print_options(std::ostream& out) const override;

private:
    AdamOptions options_;
    bool decoupled_weight_decay_;
};

}  // namespace xgrad::optim

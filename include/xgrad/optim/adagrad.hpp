#pragma once

// Adagrad: J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods
// for Online Learning and Stochastic Optimization", JMLR 12 (2011), in
// PyTorch's formulation (the paper's diagonal variant, with a decaying
// learning rate and L2 weight decay).
//
// For each parameter θ with gradient g, learning rate γ (the group's lr),
// weight decay λ, learning-rate decay η and ε, at the parameter's step t:
//
//   g ← g + λ θ                          (when λ ≠ 0)
//   γₜ = γ / (1 + (t − 1) η)
//   s ← s + g²
//   θ ← θ − γₜ g / (√s + ε)
//
// The sum of squares s starts at initial_accumulator_value.
//
// State per parameter: step and sum (s). PyTorch creates the state when the
// optimizer is constructed. xgrad creates it at the parameter's first step,
// as for the other optimizers, so state_dict() has no entries for a
// parameter before that step.

#include <vector>

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

/// Hyperparameters of Adagrad, with PyTorch's defaults.
struct AdagradOptions {
    /// Learning rate γ, >= 0.
    double lr = 1e-2;

    /// Learning-rate decay η, >= 0: step t uses γ / (1 + (t − 1) η).
    double lr_decay = 0.0;

    /// L2 penalty λ, >= 0, added to the gradient as λ θ.
    double weight_decay = 0.0;

    /// Starting value of the sum of squared gradients, >= 0.
    double initial_accumulator_value = 0.0;

    /// Term ε added to the denominator, >= 0.
    double eps = 1e-10;
};

class Adagrad : public Optimizer {
public:
    /// Throws value_error naming the option and its value when any option is
    /// negative or not finite. The Optimizer constructor documents the checks
    /// on parameters and groups.
    explicit Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
    explicit Adagrad(std::vector<ParamGroup> groups, AdagradOptions options = {});

    const AdagradOptions& options() const { return options_; }

protected:
    std::vector<std::string> buffer_names() const override;
    double initial_buffer_value(std::size_t buffer) const override;
    void update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) override;
    void print_options(std::ostream& out) const override;

private:
    AdagradOptions options_;
};

}  // namespace xgrad::optim

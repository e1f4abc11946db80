#pragma once

// SGD: stochastic gradient descent with optional momentum, dampening,
// Nesterov momentum and L2 weight decay, in PyTorch's formulation.
//
// For each parameter θ with gradient g, learning rate γ, weight decay λ,
// momentum μ and dampening τ, at the parameter's step t:
//
//   g ← g + λ θ                          (when λ ≠ 0)
//   when μ ≠ 0:
//     b ← g                              (t = 1)
//     b ← μ b + (1 − τ) g                (t > 1)
//     g ← g + μ b                        (Nesterov)
//     g ← b                              (otherwise)
//   θ ← θ − γ g
//
// The momentum buffer b starts as the first gradient, not as zero, and γ
// multiplies the whole step rather than only the gradient, as in PyTorch.
// I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the importance of
// initialization and momentum in deep learning", ICML 2013, the source of
// the Nesterov form, write the step into the buffer instead, as
// v ← μ v + γ g and θ ← θ − v. The two forms agree while γ is constant.
//
// State per parameter: step and, when μ ≠ 0, momentum_buffer.

#include <vector>

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

/// Hyperparameters of SGD, with PyTorch's defaults.
struct SGDOptions {
    /// Learning rate γ, >= 0. Recent PyTorch 2.x releases default to 1e-3, and
    /// older ones had no default.
    double lr = 1e-3;

    /// Momentum factor μ, >= 0.
    double momentum = 0.0;

    /// Dampening τ of the momentum update, applied from the second step on.
    double dampening = 0.0;

    /// L2 penalty λ, >= 0, added to the gradient as λ θ.
    double weight_decay = 0.0;

    /// Nesterov momentum, which requires momentum > 0 and dampening == 0.
    bool nesterov = false;
};

class SGD : public Optimizer {
public:
    /// Throws value_error naming the option and its value for a negative or
    /// non-finite lr, momentum or weight_decay, and for a non-finite
    /// dampening. Also throws value_error for Nesterov without momentum or
    /// with dampening. The Optimizer constructor documents the checks on
    /// parameters and groups.
    explicit SGD(std::vector<Tensor> params, SGDOptions options = {});
    explicit SGD(std::vector<ParamGroup> groups, SGDOptions options = {});

    const SGDOptions& options() const { return options_; }

protected:
    std::vector<std::string> buffer_names() const override;
    void update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) override;
    void print_options(std::ostream& out) const override;

private:
    SGDOptions options_;
};

}  // namespace xgrad::optim

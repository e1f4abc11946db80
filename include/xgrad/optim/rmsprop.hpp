#pragma once

// RMSprop, in PyTorch's formulation. RMSprop was introduced in G. Hinton's
// lecture 6e of the course "Neural Networks for Machine Learning" (2012).
// The centered variant follows A. Graves, "Generating Sequences With
// Recurrent Neural Networks", arXiv:1308.0850 (2013).
//
// For each parameter θ with gradient g, learning rate γ (the group's lr),
// weight decay λ, smoothing constant α, momentum μ and ε:
//
//   g ← g + λ θ                          (when λ ≠ 0)
//   v ← α v + (1 − α) g²
//   ṽ ← v
//   when centered:
//     ḡ ← α ḡ + (1 − α) g
//     ṽ ← v − ḡ²
//   when μ > 0:
//     b ← μ b + g / (√ṽ + ε)
//     θ ← θ − γ b
//   otherwise:
//     θ ← θ − γ g / (√ṽ + ε)
//
// v, ḡ and b start at zero. ε is added after the square root, as in PyTorch
// (TensorFlow adds it inside). Centering divides by an estimate of the
// gradient's variance instead of its second moment.
//
// State per parameter: step, square_avg (v), then momentum_buffer (b) when
// μ > 0 and grad_avg (ḡ) when centered.

#include <vector>

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

/// Hyperparameters of RMSprop, with PyTorch's defaults.
struct RMSpropOptions {
    /// Learning rate γ, >= 0.
    double lr = 1e-2;

    /// Smoothing constant α of the running averages, in [0, 1].
    double alpha = 0.99;

    /// Term ε added to the denominator, >= 0.
    double eps = 1e-8;

    /// L2 penalty λ, >= 0, added to the gradient as λ θ.
    double weight_decay = 0.0;

    /// Momentum factor μ, >= 0.
    double momentum = 0.0;

    /// Normalizes by the estimated variance of the gradient instead of its
    /// second moment.
    bool centered = false;
};

class RMSprop : public Optimizer {
public:
    /// Throws value_error naming the option and its value for a negative or
    /// non-finite lr, eps, weight_decay or momentum, and for an alpha outside
    /// [0, 1]. The Optimizer constructor documents the checks on parameters
    /// and groups.
    explicit RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
    explicit RMSprop(std::vector<ParamGroup> groups, RMSpropOptions options = {});

    const RMSpropOptions& options() const { return options_; }

protected:
    std::vector<std::string> buffer_names() const override;
    void update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) override;
    void print_options(std::ostream& out) const override;

private:
    RMSpropOptions options_;
};

}  // namespace xgrad::optim

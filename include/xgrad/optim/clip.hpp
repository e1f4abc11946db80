#pragma once

// Gradient clipping, as PyTorch's torch.nn.utils.clip_grad_norm_ and
// clip_grad_value_. Both change the gradients in place and skip parameters
// without a gradient. Call them between backward() and the optimizer's
// step().
//
// NOTE: a gradient tensor shared by two parameters (one set with set_grad()
// on both) is clipped twice, as in PyTorch.

#include <limits>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::optim {

/// Norm order that selects the infinity norm, max |g|.
inline constexpr double kInfinityNorm = std::numeric_limits<double>::infinity();

/// Scales the gradients of `params` so that their total norm is at most about
/// `max_norm`, and returns the total norm before scaling.
///
/// The total norm treats all gradients as one vector:
/// (Σ |g|^p)^(1/p) for a finite order p = norm_type, or max |g| for
/// kInfinityNorm. With c = max_norm / (total + 1e-6), every gradient is
/// multiplied by c when c < 1, so the norm after clipping is slightly below
/// max_norm. The 1e-6 keeps c finite for a zero norm. The sums run in double
/// for float32 gradients too. Without gradients the result is 0.
///
/// A non-finite total norm (a gradient containing inf or nan) throws value_error
/// when `error_if_nonfinite` is set. Otherwise, as in PyTorch, c is 0 or nan
/// and the gradients become zero or nan, which the next step passes on.
///
/// Throws value_error for an undefined parameter, a negative or nan
/// max_norm, and a norm_type that is not positive.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

/// Clamps every gradient element of `params` to [-clip_value, clip_value].
/// Throws value_error for an undefined parameter and for a negative or nan
/// clip_value.
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace xgrad::optim

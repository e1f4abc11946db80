#pragma once

// Activation functions and the softmax family. All take float32 or float64
// tensors and keep the input's shape and dtype.

#include <cstdint>
#include <limits>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Hyperbolic tangent.  dx = dy * (1 - y^2).
Tensor tanh(const Tensor& x);

/// Logistic sigmoid 1 / (1 + e^-x), computed without overflow for large |x|.
/// dx = dy * y * (1 - y).
Tensor sigmoid(const Tensor& x);

/// max(x, 0), with NaN passed through.  dx = dy where x > 0, and 0
/// elsewhere, including at x = 0.
Tensor relu(const Tensor& x);

/// x where x > 0, negative_slope * x elsewhere.  dx = dy where x > 0 and
/// negative_slope * dy elsewhere, including at x = 0.
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);

/// Gaussian error linear unit x * Phi(x), with Phi the standard normal CDF.
/// With `approximate`, the tanh form
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Both are differentiable
/// everywhere.
Tensor gelu(const Tensor& x, bool approximate = false);

/// min(max(x, min), max). dx = dy where min <= x <= max, bounds included,
/// and 0 outside. Pass -infinity or +infinity to leave a side open.
/// Throws value_error when min > max or a bound is NaN.
Tensor clamp(const Tensor& x, double min, double max);

/// exp(x) / sum(exp(x)) along `axis`, computed after subtracting the maximum
/// so that no exponential overflows. dx = y * (dy - sum(dy * y)).
Tensor softmax(const Tensor& x, std::int64_t axis = -1);

/// log(softmax(x)) along `axis` in the stable form x - max - log(sum(exp(x -
/// max))), finite for logits such as [1000, 0, -1000].
/// dx = dy - softmax(x) * sum(dy).
Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);

}  // namespace xgrad

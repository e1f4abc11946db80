#pragma once

// Elementwise functions of one tensor. Each takes a float32 or float64 tensor
// of any shape and returns one of the same shape and dtype. Gradients below
// are vector-Jacobian products: dx is the gradient of the input given dy,
// the gradient of the output.

#include "xgrad/tensor.hpp"

namespace xgrad {

/// y = -x.  dx = -dy.
Tensor neg(const Tensor& x);

/// y = e^x.  dx = dy * y.
Tensor exp(const Tensor& x);

/// Natural logarithm.  dx = dy / x. log(0) = -inf; negative inputs give NaN.
Tensor log(const Tensor& x);

/// y = sqrt(x).  dx = dy / (2 y), which is +inf at x = 0.
Tensor sqrt(const Tensor& x);

/// y = |x|.  dx = dy * sign(x), and 0 at x = 0.
Tensor abs(const Tensor& x);

/// y = x^exponent for a scalar exponent.  dx = dy * exponent * x^(exponent - 1),
/// and 0 everywhere when exponent is 0.
Tensor pow(const Tensor& x, double exponent);

/// Converts to another float dtype.  dx = dy converted back to x's dtype.
/// An int64 tensor converts to float (without gradient); converting to
/// int64 throws not_implemented.
Tensor to_dtype(const Tensor& x, Dtype dtype);

}  // namespace xgrad

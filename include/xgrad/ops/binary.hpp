#pragma once

// Elementwise functions of two or three tensors with NumPy broadcasting: the
// shapes are aligned at their last dimension, and each dimension pair must be
// equal or contain a 1. The output has the broadcast shape; each input's
// gradient is summed back to that input's shape. The float inputs must share
// one dtype. Scalar overloads convert the scalar to the tensor's dtype.

#include "xgrad/tensor.hpp"

namespace xgrad {

/// a + b.  da = dy, db = dy.
Tensor add(const Tensor& a, const Tensor& b);

/// a - b.  da = dy, db = -dy.
Tensor sub(const Tensor& a, const Tensor& b);

/// a * b.  da = dy * b, db = dy * a.
Tensor mul(const Tensor& a, const Tensor& b);

/// a / b.  da = dy / b, db = -dy * a / b^2.
Tensor div(const Tensor& a, const Tensor& b);

/// Elementwise maximum, NaN when either input is NaN. The larger input gets
/// dy; at ties each gets dy / 2, as in PyTorch.
Tensor maximum(const Tensor& a, const Tensor& b);

/// Elementwise minimum, NaN when either input is NaN. The smaller input gets
/// dy; at ties each gets dy / 2.
Tensor minimum(const Tensor& a, const Tensor& b);

/// condition ? a : b, elementwise, broadcasting all three. `condition` may
/// have any dtype; a nonzero element selects a. da = dy where the condition
/// holds and 0 elsewhere; db the reverse; the condition gets no gradient.
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);

Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

}  // namespace xgrad

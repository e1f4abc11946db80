#pragma once

// Matrix products, computed by BLAS (OpenBLAS's sgemm and dgemm).

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Matrix product with NumPy's matmul rules:
///  - (m, k) @ (k, n) -> (m, n);
///  - (m, k) @ (k) -> (m) and (k) @ (k, n) -> (n): a one-dimensional operand
///    acts as a row or column vector and its dimension is removed again;
///  - (k) @ (k) -> () (the dot product);
///  - higher ranks are stacks of matrices: (..., m, k) @ (..., k, n) ->
///    (..., m, n), with the leading batch dimensions broadcast as in NumPy.
/// dA = dC B^T and dB = A^T dC per matrix, summed over broadcast batches.
/// Throws shape_error when the inner dimensions differ or the batch
/// dimensions do not broadcast, and value_error for a zero-dimensional input.
Tensor matmul(const Tensor& a, const Tensor& b);

/// The affine map of a fully connected layer: y = x W^T + b, with x of shape
/// (..., in_features), weight W of shape (out_features, in_features) and an
/// optional bias b of shape (out_features); y has shape (..., out_features).
/// One BLAS call with W transposed in place, so W is never copied.
/// dx = dy W, dW = dy^T x and db = dy summed over every leading dimension.
/// Pass an undefined tensor as bias for no bias.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace xgrad

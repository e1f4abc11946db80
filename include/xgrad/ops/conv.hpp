#pragma once

// Two-dimensional convolution over NCHW tensors (batch, channels, height,
// width), computed as im2col plus BLAS matrix products (OpenBLAS's sgemm or
// dgemm), one per chunk of samples, or with oneDNN for a float32 forward
// when XGRAD_CONV_KERNEL=onednn.

#include <cstdint>
#include <utility>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// A (height, width) pair of window sizes: a kernel, a stride, a padding or
/// a dilation.
using Size2d = std::pair<std::int64_t, std::int64_t>;

/// Hyperparameters of conv2d.
struct Conv2dParams {
    Size2d stride{1, 1};      ///< step between windows; positive
    Size2d padding{0, 0};     ///< zeros added on each side of the input; non-negative
    Size2d dilation{1, 1};    ///< spacing between kernel taps; positive
    std::int64_t groups = 1;  ///< channel groups; only 1 is supported, others throw
};

/// Cross-correlation, as PyTorch's conv2d computes it:
///   y[n, o, i, j] = b[o] + sum over c, p, q of
///       w[o, c, p, q] * x[n, c, i * s_h - pad_h + p * d_h, j * s_w - pad_w + q * d_w],
/// where x reads zero outside the input. Shapes: input x (N, C_in, H, W),
/// weight w (C_out, C_in, kH, kW), optional bias b (C_out), output y
/// (N, C_out, H_out, W_out) with
///   H_out = floor((H + 2 pad_h - d_h (kH - 1) - 1) / s_h) + 1, and W_out alike.
/// With X_n the im2col matrix of sample n (C_in kH kW rows, H_out W_out
/// columns) and W the weight as a (C_out, C_in kH kW) matrix, y_n = W X_n, so
///   dW = sum_n dy_n X_n^T,   dx_n = col2im(W^T dy_n),   db[o] = sum of dy[:, o, :, :].
/// Takes float32 or float64. Pass an undefined tensor as bias for no bias.
/// The environment variable XGRAD_CONV_KERNEL, read at every call, selects
/// the float32 forward: `im2col` (the default, also when unset) or `onednn`,
/// oneDNN's direct convolution on the calling thread. A 1x1 kernel with
/// stride 1 and no padding, and shapes oneDNN rejects, stay on BLAS. Any
/// other value throws value_error.
/// Throws shape_error when x or w is not four-dimensional, the channel counts
/// differ, the bias does not have shape (C_out), or the dilated kernel is
/// larger than the padded input. Throws value_error for a non-positive
/// stride, dilation or groups, a negative padding, or inputs of different or
/// integer dtypes, and not_implemented for groups above 1.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
              const Conv2dParams& params = {});

}  // namespace xgrad

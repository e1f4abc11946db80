#pragma once

// Pooling over the height and width of NCHW tensors (batch, channels,
// height, width). Each channel is pooled on its own, and the output has
// shape (N, C, H_out, W_out) with PyTorch's floor-mode sizes
//   H_out = floor((H + 2 pad_h - kH) / s_h) + 1, and W_out alike.
// All take float32 or float64 tensors and keep the dtype.

#include <optional>

#include "xgrad/ops/conv.hpp"  // Size2d
#include "xgrad/tensor.hpp"

namespace xgrad {

/// Hyperparameters of max_pool2d.
struct MaxPool2dParams {
    /// Window size (kH, kW); positive.
    Size2d kernel{0, 0};
    /// Step between windows; defaults to the kernel size.
    std::optional<Size2d> stride = std::nullopt;
    /// Read as -infinity on each side; at most half the kernel.
    Size2d padding{0, 0};
};

/// Hyperparameters of avg_pool2d.
struct AvgPool2dParams {
    /// Window size (kH, kW); positive.
    Size2d kernel{0, 0};
    /// Step between windows; defaults to the kernel size.
    std::optional<Size2d> stride = std::nullopt;
    /// Read as zero on each side; at most half the kernel.
    Size2d padding{0, 0};
    /// Divide every window by kH kW, padding included (PyTorch's default);
    /// when false, divide by the number of input elements in the window.
    bool count_include_pad = true;
};

/// The maximum of each kH x kW window:
///   y[n, c, i, j] = max over p < kH, q < kW of x[n, c, i s_h - pad_h + p, j s_w - pad_w + q],
/// where the padding never wins. Each dy[n, c, i, j] goes to the input
/// element that was its window's maximum; overlapping windows add up.
/// NOTE: when elements of a window tie for the maximum, the gradient goes to
/// the first of them in row-major window order, as in PyTorch's CPU kernel. A
/// NaN in a window makes its output NaN, and the gradient goes to the last
/// NaN in that order, also as in PyTorch's CPU kernel.
/// Throws shape_error when x is not four-dimensional or the kernel is larger
/// than the padded input, and value_error for a non-positive kernel or
/// stride or a padding that is negative or more than half the kernel.
Tensor max_pool2d(const Tensor& x, const MaxPool2dParams& params);

/// The mean of each kH x kW window:
///   y[n, c, i, j] = (sum of the window's input elements) / divisor,
/// where padding adds zero and divisor is kH kW, or with count_include_pad
/// false, the number of input elements in the window.
/// dx: each dy[n, c, i, j] / divisor is added to every input element of
/// its window. Throws as max_pool2d.
Tensor avg_pool2d(const Tensor& x, const AvgPool2dParams& params);

/// The mean over height and width: (N, C, H, W) -> (N, C),
///   y[n, c] = sum of x[n, c, :, :] / (H W),   dx[n, c, h, w] = dy[n, c] / (H W).
/// Throws shape_error when x is not four-dimensional or H W is zero.
Tensor global_avg_pool2d(const Tensor& x);

}  // namespace xgrad

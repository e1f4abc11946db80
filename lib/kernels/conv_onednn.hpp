#pragma once

// conv2d's float32 forward through oneDNN's convolution primitive, on the
// calling thread alone.

#include <cstddef>

#include "kernels/window2d.hpp"

namespace xgrad::detail {

// Computes y (N, C_out, H_out, W_out) from x (N, C_in, H, W), the weight
// (C_out, C_in, kH, kW) and an optional bias (C_out, or nullptr), all NCHW
// float32, with oneDNN's direct convolution. The input, weight and output
// are reordered into and out of oneDNN's blocked layouts at every call.
// Returns false, writing nothing, when oneDNN cannot create the primitive;
// the caller then uses another kernel.
bool conv2d_forward_onednn(const Window2d& window, std::size_t out_channels, const float* x,
                           const float* weight, const float* bias, float* y);

}  // namespace xgrad::detail

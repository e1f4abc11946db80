#pragma once

// Int8 inference for conv2d, in the scheme of quantized_linear() (see
// xgrad/ops/quantized.hpp): a uint8 input with one scale and zero point per
// tensor, an int8 weight with one scale per output channel
// (quantize_conv_weight()), int32 accumulation and a float32 output:
//
//   const xgrad::QuantizedWeight weight = xgrad::quantize_conv_weight(conv.weight);
//   const xgrad::QuantizationParams input{.scale = 1.0 / 255, .zero_point = 0};
//   const xgrad::Tensor y = xgrad::quantized_conv2d(x, input, weight, conv.bias,
//                                                   {.padding = {1, 1}});
//
// The padding is the real value 0, as in conv2d: the op copies the quantized
// input into a buffer whose borders hold the zero point's code, so that
// every tap, padding included, contributes (q - zero_point) * q_w. The same
// two kernels as for quantized_linear compute the int32 sums, oneDNN's int8
// convolution and a reference loop (im2row and the integer matrix loop),
// selected by QuantizedKernel and XGRAD_QUANTIZED_KERNEL alike, and their
// outputs agree bit for bit.

#include <cstddef>

#include "xgrad/ops/conv.hpp"
#include "xgrad/ops/quantized.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad {

/// Largest C_in * kH * kW that quantized_conv2d() accepts: every output sums
/// that many products, so the bound of kMaxQuantizedInFeatures applies.
inline constexpr std::size_t kMaxQuantizedConvInputs = kMaxQuantizedInFeatures;

/// conv2d on int8 weights:
///
///   y[n, o, i, j] = s_x * s_w[o] * (sum over c, p, q of
///       q_w[o, c, p, q] * q_x[n, c, i s_h - pad_h + p d_h, j s_w - pad_w + q d_w]
///       - z_x * row_sums[o]) + b[o],
///
/// with q_x = quantize_uint8(x, input) inside the input and z_x (the real
/// value 0) in the padding, s_x = input.scale, z_x = input.zero_point, q_w =
/// weight.values of shape (C_out, C_in, kH, kW), s_w = weight.scales and
/// row_sums = weight.row_sums, both of shape (C_out). x is float32 of shape
/// (N, C_in, H, W), y is float32 of shape (N, C_out, H_out, W_out) with
/// H_out and W_out as conv2d computes them, and the optional float32 bias b
/// has shape (C_out). `params` sets stride, padding and dilation as for
/// conv2d. The integer sum is exact in int32 (see kMaxQuantizedConvInputs),
/// and the conversion back to float32 is that of quantized_linear().
///
/// Inference only, like quantized_linear(): not differentiable and not
/// recorded on the tape (capture() records it). In a graph the node has the
/// inputs (x, values, scales, row_sums) and an optional bias,
/// attrs.scalars[0] = input.scale and attrs.ints = {input.zero_point,
/// kernel as an integer, stride h, w, padding h, w, dilation h, w}.
///
/// Throws value_error for a wrong dtype, an input scale or zero point out of
/// range, a weight scale that is not positive and finite, a row sum outside
/// [-128 K, 127 K] for K = C_in kH kW, a non-positive stride, dilation or
/// groups, or a negative padding. Throws shape_error when x or values is not
/// four-dimensional, the channel counts differ, scales, row_sums or bias does
/// not have shape (C_out), or the dilated kernel is larger than the padded
/// input. Throws not_implemented for groups above 1, when C_in kH kW exceeds
/// kMaxQuantizedConvInputs, and for `kernel` onednn where
/// onednn_int8_available() is false or oneDNN cannot create the convolution
/// for the shapes.
///
/// Each calling thread keeps scratch buffers that grow to the largest call
/// so far: the padded uint8 input, the int32 sums of a chunk of samples and
/// the reference kernel's im2row matrix. It also keeps oneDNN convolutions
/// for the 16 shapes it ran most recently.
/// NOTE: the oneDNN kernel reorders the weight into oneDNN's layout for
/// every chunk of samples (about 256 KB of int32 sums), because the op
/// cannot see whether the weight changed. That cost does not shrink with the
/// batch, so it weighs most on small batches.
Tensor quantized_conv2d(const Tensor& x, const QuantizationParams& input,
                        const QuantizedWeight& weight, const Tensor& bias = Tensor(),
                        const Conv2dParams& params = {},
                        QuantizedKernel kernel = QuantizedKernel::automatic);

}  // namespace xgrad

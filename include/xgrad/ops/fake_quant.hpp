#pragma once

// Fake quantization for quantization-aware training: the forward pass rounds
// values to the quantized grid and back to float, so training includes the
// error int8 inference will make, and the backward pass uses the
// straight-through estimator (Bengio et al., 2013): the gradient passes
// unchanged where the value lies in the quantized range and is zero where it
// was clamped.

#include <cstdint>

#include "xgrad/quant/qparams.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad {

/// y = (clamp(round(x / s) + z, qmin, qmax) - z) * s, with ties to even,
/// per tensor or per channel as `params` sets. The scales and zero points
/// travel as tensors, so a graph can hold them as constants.
/// dx = dy where qmin <= round(x / s) + z <= qmax, both ends included, and 0
/// where the value was clamped.
Tensor fake_quantize(const Tensor& x, const quant::QParams& params);

/// Fake quantization of a weight (out_features, in_features) with per-row
/// symmetric int8 parameters, or of a convolution weight (C_out, C_in, kH,
/// kW) with one set per output channel, computed from its current values at
/// every call (quant::weight_qparams), so they follow the weight as it
/// trains. These are the codes quantize_weight() and quantize_conv_weight()
/// produce. Every value lies in its row's range, so dx = dy everywhere.
///
/// NOTE: quantized_linear() quantizes its input by multiplying with a
/// float32 reciprocal of the scale, where fake_quantize() divides in double,
/// so an input within one float32 rounding of a half step can land one code
/// apart. The weights match exactly.
Tensor fake_quantize_weight(const Tensor& weight);

}  // namespace xgrad

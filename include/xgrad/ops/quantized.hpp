#pragma once

// Int8 inference for Linear layers, in the integer-arithmetic scheme of
// Jacob et al., "Quantization and Training of Neural Networks for Efficient
// Integer-Arithmetic-Only Inference" (CVPR 2018). A real value r is stored
// as an integer q with
//
//   r = scale * (q - zero_point).
//
// Activations are asymmetric uint8: q in [0, 255], with one scale and one
// zero point per tensor. Weights are symmetric int8 per output channel: zero
// point 0 and one scale per row of W. quantized_linear() quantizes its
// float32 input, multiplies the integers with int32 accumulation and turns
// the sums back into float32:
//
//   const xgrad::QuantizedWeight weight = xgrad::quantize_weight(layer.weight);
//   const xgrad::QuantizationParams input{.scale = 0.02, .zero_point = 128};
//   const xgrad::Tensor y = xgrad::quantized_linear(x, input, weight, layer.bias);
//
// Two kernels compute the integer product: oneDNN's u8 x s8 -> s32 matmul,
// which needs a CPU with VNNI or AMX instructions, and a plain loop that
// runs anywhere. Both produce the same int32 sums, and the float steps before
// and after the product are shared, so the two outputs agree bit for bit.
// QuantizedKernel selects one per call, and the environment variable
// XGRAD_QUANTIZED_KERNEL=reference makes every automatic choice in the
// process the plain loop.
//
// The oneDNN kernel runs on the calling thread alone. Debian's oneDNN 2.6
// threads through OpenMP, whose idle threads keep spinning after a call and
// take a core from OpenBLAS's threads. In tests/bench/bench_quant, a float32
// `linear` right after a two-thread oneDNN matmul took 1.7 to 6.5 times as
// long as after another `linear`, and right after the single-thread
// quantized_linear it took the same time. One thread still made the int8
// network about 3 times as fast as float32 on two OpenBLAS threads at batch
// 256 with AMX, and 2.1 times with oneDNN limited to AVX-512 VNNI
// (docs/benchmarks.md, "Int8 against float32 inference").

#include <cstdint>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Largest in_features that quantized_linear() accepts. Every product
/// q_x * q_w and (q_x - zero_point) * q_w lies in [-255 * 128, 255 * 128],
/// so a sum of 65,793 of them still fits in the int32 accumulators.
inline constexpr std::size_t kMaxQuantizedInFeatures = 65793;

/// Parameters of the affine map from uint8 codes to real values:
/// r = scale * (q - zero_point).
struct QuantizationParams {
    double scale = 1.0;           ///< positive; from FLT_MIN to FLT_MAX
    std::int64_t zero_point = 0;  ///< the code of r = 0, in [0, 255]
};

/// A layer's weight in symmetric int8 with one scale per output:
/// W[n, ...] ~ scales[n] * values[n, ...]. For a Linear layer, values has
/// shape (out_features, in_features) and each row has its own scale. For a
/// convolution (quantized_conv2d()), values has shape (C_out, C_in, kH, kW)
/// and each output channel has its own scale.
struct QuantizedWeight {
    Tensor values;    ///< int8, shape (out_features, in_features) or (C_out, C_in, kH, kW)
    Tensor scales;    ///< float32, shape (out_features), positive and finite
    Tensor row_sums;  ///< int64, shape (out_features): sum of all of values[n]
};

/// Selects the kernel of the integer product in quantized_linear().
enum class QuantizedKernel : std::uint8_t {
    /// oneDNN when onednn_int8_available(), every dimension of the product
    /// is positive and oneDNN can create the product for the shapes. The
    /// reference loop otherwise, and always under
    /// XGRAD_QUANTIZED_KERNEL=reference.
    automatic,
    /// The plain loop in xgrad: one int32 sum per output element.
    reference,
    /// oneDNN's int8 matmul; throws not_implemented where it is unavailable.
    onednn,
};

/// Quantizes a float32 or float64 weight of shape (out_features,
/// in_features) row by row: scales[n] = max_k |W[n, k]| / 127, rounded to
/// float32, and values[n, k] = nearbyint(W[n, k] / scales[n]) clamped to
/// [-127, 127]. The largest magnitude of a row maps to +-127 and -W maps to
/// -values; the code -128 is never used. A row of zeros gets scale 1, and a
/// row whose scale would fall below FLT_MIN gets FLT_MIN, so every scale is a
/// positive normal float32 and a zero row dequantizes to exact zeros. Fills
/// row_sums as well. Throws shape_error for a weight that is not
/// two-dimensional, value_error for an integer dtype or a NaN or infinite
/// element (naming its position).
QuantizedWeight quantize_weight(const Tensor& weight);

/// Quantizes a float32 or float64 convolution weight of shape (C_out, C_in,
/// kH, kW) per output channel, by the rules of quantize_weight() with all
/// C_in kH kW taps of channel n as its row n: scales[n] = max |W[n]| / 127
/// rounded to float32, values of the weight's shape, and row_sums[n] the sum
/// of values[n]. Throws shape_error for a weight that is not
/// four-dimensional, value_error for an integer dtype or a NaN or infinite
/// element (naming its position).
QuantizedWeight quantize_conv_weight(const Tensor& weight);

/// Sums each row of an int8 matrix of shape (out_features, in_features) into
/// an int64 tensor of shape (out_features), for a QuantizedWeight whose
/// values did not come from quantize_weight(). Throws shape_error for a
/// tensor that is not two-dimensional and value_error for one that is not int8.
/// For int8 convolution values of shape (C_out, C_in, kH, kW), pass them
/// reshaped to (C_out, C_in kH kW).
Tensor weight_row_sums(const Tensor& values);

/// Quantizes a float32 tensor to uint8 of the same shape, exactly as
/// quantized_linear() quantizes its input:
///
///   q = clamp(nearbyint(x * inverse) + zero_point, 0, 255),
///   inverse = float32(1 / scale),
///
/// where x * inverse is a float32 product and nearbyint rounds half to even.
/// The product with the reciprocal can differ from x / scale in its last
/// bit, so a value within one float32 rounding of a half-integer multiple of
/// scale may round the other way. Clamping happens before the float32 value
/// becomes an integer, so no value overflows: +-inf go to 255 and 0. NaN
/// goes to the zero point, as in quant::quantize_value(). Throws value_error for an input that is not float32, a scale
/// outside [FLT_MIN, FLT_MAX] or a zero point outside [0, 255].
Tensor quantize_uint8(const Tensor& x, const QuantizationParams& params);

/// True when oneDNN can run the int8 product on this CPU: its effective
/// instruction set (after any DNNL_MAX_CPU_ISA limit) includes VNNI
/// (avx512_core_vnni, avx512_core_bf16, avx2_vnni) or AMX
/// (avx512_core_amx). Without VNNI, oneDNN's int8 kernels add pairs of
/// products in saturating int16, which can change the sums.
bool onednn_int8_available();

/// The `linear` layer on int8 weights:
///
///   y[m, n] = s_x * s_w[n] * (sum_k q_x[m, k] q_w[n, k] - z_x * row_sums[n]) + b[n],
///
/// with q_x = quantize_uint8(x, input), s_x = input.scale, z_x =
/// input.zero_point, q_w = weight.values, s_w = weight.scales and an optional
/// float32 bias b of shape (out_features). x is float32 of shape (...,
/// in_features); y is float32 of shape (..., out_features). The integer sum
/// is exact in int32 (see kMaxQuantizedInFeatures). The conversion back to
/// float32 rounds s_x * s_w[n], computed in double, to float32, and
/// multiplies it by the float32 value of the integer in brackets and adds
/// b[n] in float32, fused into one rounding where the build targets FMA.
/// Pass an undefined tensor as bias for no bias.
///
/// Inference only: the op is not differentiable, so no gradient reaches x or
/// the weight, and nothing is recorded on the tape (capture() still records
/// it). In a graph the node has the inputs (x, values, scales, row_sums) and
/// an optional bias, attrs.scalars[0] = input.scale, and attrs.ints =
/// {input.zero_point, kernel as an integer}.
///
/// Throws value_error for a wrong dtype, an input scale or zero point out of
/// range, a weight scale that is not positive and finite, or a row sum
/// outside [-128 * in_features, 127 * in_features]. Throws shape_error when
/// values is not two-dimensional, when scales, row_sums or bias does not have
/// shape (out_features), or when x's last dimension is not in_features.
/// Throws not_implemented when in_features exceeds kMaxQuantizedInFeatures,
/// and for `kernel` onednn where onednn_int8_available() is false or oneDNN
/// cannot create the product for the shapes.
///
/// NOTE: the op trusts row_sums: a wrong sum shifts every output of its row
/// by s_x * s_w[n] * z_x times the error. quantize_weight() and
/// weight_row_sums() compute correct ones.
///
/// Each calling thread keeps scratch buffers (the uint8 input, the int32
/// sums, per-output factors) that grow to the largest call so far. It also
/// keeps one oneDNN matmul primitive per (rows, in_features, out_features)
/// it has run, up to the 16 most recently used. Both last until the thread
/// exits. Later calls of the same shape allocate nothing in xgrad's code.
/// NOTE: oneDNN 2.6 itself allocates six small blocks inside every matmul
/// execution (counted with a replaced operator new), so a graph replayed
/// through the oneDNN kernel is not free of heap allocation. With the
/// reference kernel it is.
Tensor quantized_linear(const Tensor& x, const QuantizationParams& input,
                        const QuantizedWeight& weight, const Tensor& bias = Tensor(),
                        QuantizedKernel kernel = QuantizedKernel::automatic);

}  // namespace xgrad

#pragma once

// Quantization parameters, after Jacob et al. (2018), "Quantization and
// Training of Neural Networks for Efficient Integer-Arithmetic-Only
// Inference": a real value r is stored as an integer q with
//
//     r = scale * (q - zero_point),
//
// where zero_point is itself an integer in the quantized range, so the real
// value 0 is represented exactly (padding and pruned weights stay exact).
//
// Two schemes:
//   affine_uint8    q in [0, 255], any zero point: activations;
//   symmetric_int8  q in [-127, 127], zero point 0: weights. The range leaves
//                   out -128 so that it is symmetric and the largest
//                   magnitude maps exactly to +-127.
//
// Quantizing rounds half to even (so 2.5 steps becomes 2 and 3.5 becomes 4)
// and clamps after adding the zero point, in double precision, so no
// intermediate overflows however far outside the range the input lies.

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::quant {

enum class QScheme { affine_uint8, symmetric_int8 };

/// Returns "affine_uint8" or "symmetric_int8".
const char* scheme_name(QScheme scheme);

/// The smallest scale chosen, so that an all-zero or tiny range (a pruned
/// row) still gets a finite, positive scale and zero quantizes to exactly
/// zero. float32's machine epsilon, as PyTorch's observers use.
inline constexpr double kMinScale = std::numeric_limits<float>::epsilon();

/// Scales and zero points for one tensor: one pair for the whole tensor
/// (axis == -1) or one per index along `axis` (per channel).
struct QParams {
    QScheme scheme = QScheme::affine_uint8;
    std::vector<double> scales;
    std::vector<std::int64_t> zero_points;
    std::int64_t axis = -1;

    std::int64_t qmin() const { return scheme == QScheme::affine_uint8 ? 0 : -127; }
    std::int64_t qmax() const { return scheme == QScheme::affine_uint8 ? 255 : 127; }
    Dtype dtype() const { return scheme == QScheme::affine_uint8 ? Dtype::uint8 : Dtype::int8; }
    bool per_channel() const { return axis >= 0; }
    std::string describe() const;
};

/// Parameters that represent [min_values[i], max_values[i]] for each
/// channel (one entry each for per-tensor parameters, with axis -1). The
/// range is first widened to include 0. For affine_uint8,
/// scale = (max - min) / 255 and zero_point = round(-min / scale); for
/// symmetric_int8, scale = max(|min|, |max|) / 127 and zero_point = 0. A
/// scale below kMinScale becomes kMinScale. Throws value_error for NaN or a
/// min above its max.
QParams choose_qparams(const std::vector<double>& min_values, const std::vector<double>& max_values,
                       QScheme scheme, std::int64_t axis = -1);

/// The integer q for one real value: clamp(round(x / scale) + zero_point,
/// qmin, qmax), with ties to even. NaN maps to the zero point (real 0).
std::int64_t quantize_value(double x, double scale, std::int64_t zero_point, std::int64_t qmin,
                            std::int64_t qmax);

/// Quantizes a float32 or float64 tensor to uint8 or int8 (the scheme's
/// dtype). Throws shape_error when a per-channel axis does not exist or its
/// extent differs from the number of scales.
Tensor quantize(const Tensor& x, const QParams& params);

/// (q - zero_point) * scale as float32.
Tensor dequantize(const Tensor& q, const QParams& params);

/// Minimum and maximum of x per index along `axis` (or over the whole
/// tensor for axis -1), as doubles; the statistics observers collect.
std::pair<std::vector<double>, std::vector<double>> channel_min_max(const Tensor& x,
                                                                    std::int64_t axis);

/// The scale of a symmetric int8 weight row whose largest magnitude is
/// `largest`: largest / 127 rounded to float32 (as the int8 kernel stores
/// it), 1 for an all-zero row and at least FLT_MIN, so it is always a
/// positive normal float32. Fake quantization and quantize_weight() both
/// use it, so training simulates exactly the weights inference uses.
double int8_weight_scale(double largest);

/// Per-row symmetric int8 parameters of a weight (out_features, in_features),
/// with int8_weight_scale() per row, or of a convolution weight (C_out, C_in,
/// kH, kW) per output channel. The parameters have axis 0.
QParams weight_qparams(const Tensor& weight);

}  // namespace xgrad::quant

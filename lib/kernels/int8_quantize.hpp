#pragma once

// The float steps around the integer products of quantized_linear and
// quantized_conv2d: float32 to uint8 codes before the product, int32 sums to
// float32 after it. Both ops call these functions, so both quantize and
// dequantize exactly alike.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "xgrad/op.hpp"
#include "xgrad/ops/quantized.hpp"

namespace xgrad::detail {

/// Throws value_error naming `op` unless scale is a positive normal float32
/// value and zero_point lies in [0, 255].
void check_quantization_params(const char* op, double scale, std::int64_t zero_point);

/// Formats a double as an error message shows it.
std::string number_string(double value);

/// The constants of q = clamp(nearbyint(x * inverse) + zero_point, 0, 255).
struct Quantizer {
    float inverse;
    float low;   // -zero_point
    float high;  // 255 - zero_point
    std::int32_t zero_point;
};

Quantizer make_quantizer(double scale, std::int64_t zero_point);

/// Quantizes `count` float32 values to uint8 codes, as quantize_uint8()
/// documents.
void quantize_values(const float* x, std::size_t count, Quantizer q, std::uint8_t* out);

/// Per output n: the factor float32(s_x * s_w[n]), the offset
/// z_x * row_sums[n] and the bias, computed by the op at every call in
/// O(out_features) time.
struct Dequantizer {
    const float* factors;
    const std::int32_t* offsets;
    const float* bias;
};

/// y[m, n] = factors[n] * float32(sums[m, n] - offsets[n]) + bias[n] for
/// `rows` rows of `out` outputs.
void dequantize_rows(const std::int32_t* sums, std::size_t rows, std::size_t out, Dequantizer d,
                     float* y);

/// Buffers of make_dequantizer(), kept per thread by each op.
struct DequantizerBuffers {
    std::vector<float> factors;
    std::vector<std::int32_t> offsets;
    std::vector<float> zero_bias;
};

/// Inputs of quantized_linear and quantized_conv2d, in order. The bias is
/// optional.
enum QuantizedInput : std::size_t { kX, kValues, kScales, kRowSums, kBias };

/// The per-output values of the conversion back to float32, in `buffers`.
Dequantizer make_dequantizer(const OpArgs& args, double input_scale, std::int64_t zero_point,
                             DequantizerBuffers& buffers);

/// Throws value_error naming `op` and the input unless input `input`, called
/// `name`, has the dtype `expected`.
void check_quantized_dtype(const char* op, const OpArgs& args, std::size_t input, Dtype expected,
                           const char* name);

/// Throws shape_error naming `op` unless input `input` has shape (C_out),
/// with C_out the first dimension of values.
void check_per_output(const char* op, const OpArgs& args, std::size_t input, const char* name);

/// Throws value_error naming `op` unless every weight scale is positive and
/// finite and every row sum lies in [-128 K, 127 K], where K is the product
/// of the dimensions of values after the first, called `reduction` in the
/// message. `hint` ends the row-sum message.
void check_weight_values(const char* op, const OpArgs& args, const char* reduction,
                         const char* hint);

/// True when XGRAD_QUANTIZED_KERNEL=reference. Reads the variable once per
/// process and throws value_error naming `op` for a value other than
/// "reference", "automatic" or empty.
bool environment_selects_reference(const char* op);

/// Returns "automatic", "reference" or "onednn".
const char* kernel_name(QuantizedKernel kernel);

/// Returns the buffer's data after growing it to at least `size` elements.
/// It never shrinks, so a thread's scratch keeps its largest size.
template <class T>
T* grown(std::vector<T>& buffer, std::size_t size) {
    if (buffer.size() < size) {
        buffer.resize(size);
    }
    return buffer.data();
}

}  // namespace xgrad::detail

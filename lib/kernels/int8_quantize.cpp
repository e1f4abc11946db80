// The float steps shared by quantized_linear and quantized_conv2d: quantizing
// the input, converting the int32 sums back, and reading the kernel setting.

#include "kernels/int8_quantize.hpp"

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <experimental/simd>
#include <sstream>
#include <string>

#include "xgrad/error.hpp"

namespace xgrad::detail {

namespace {

namespace stdx = std::experimental;

using FloatVector = stdx::fixed_size_simd<float, 16>;
using IntVector = stdx::fixed_size_simd<std::int32_t, 16>;
using ByteVector = stdx::fixed_size_simd<std::uint8_t, 16>;

}  // namespace

std::string number_string(double value) {
    std::ostringstream text;
    text << value;
    return text.str();
}

void check_quantization_params(const char* context, double scale, std::int64_t zero_point) {
    if (!(scale >= FLT_MIN && scale <= FLT_MAX)) {
        throw value_error(std::string(context) +
                          ": the input scale must be a positive normal float32 value, from "
                          "FLT_MIN = 1.17549e-38 to FLT_MAX = 3.40282e+38, got " +
                          number_string(scale));
    }
    if (zero_point < 0 || zero_point > 255) {
        throw value_error(std::string(context) +
                          ": the input zero point must be in [0, 255], got " +
                          std::to_string(zero_point));
    }
}

// --- quantizing activations ---------------------------------------------------
//
// q = clamp(nearbyint(x * inverse) + zero_point, 0, 255), clamped as a
// float32 integer in [-zero_point, 255 - zero_point] before the conversion to
// int32, so that no value overflows the conversion. NaN becomes the zero
// point, as in quant::quantize_value(). The vector loop and the scalar tail
// compute the same float32 operations.

Quantizer make_quantizer(double scale, std::int64_t zero_point) {
    return {static_cast<float>(1.0 / scale), static_cast<float>(-zero_point),
            static_cast<float>(255 - zero_point), static_cast<std::int32_t>(zero_point)};
}

// The quantizer comes by value and its vectors are set up before the loop:
// `out` points to bytes, which may alias anything, so with a reference g++
// reloaded the fields after every store and the loop ran several times slower.
//
// g++ 12 reports -Wmaybe-uninitialized inside the AVX-512 intrinsics that
// std::experimental::simd uses here (their "undefined" source vectors). The
// warning is false, and the pragma silences it for this function only.
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
void quantize_values(const float* x, std::size_t count, Quantizer q, std::uint8_t* out) {
    const FloatVector inverse = q.inverse;
    const FloatVector low = q.low;
    const FloatVector high = q.high;
    const IntVector zero_point = q.zero_point;
    std::size_t i = 0;
    // NOTE: with clang 14, libstdc++ 12's std::experimental::simd let
    // infinities through the masked assignments below (seen under UBSan in
    // the sanitizer build), so clang builds take the scalar loop only.
#if !defined(__clang__)
    for (; i + FloatVector::size() <= count; i += FloatVector::size()) {
        // Clamping before rounding gives the same codes as after, because
        // the bounds are whole numbers, and keeps infinities out of
        // nearbyint (whose clang implementation converts to int inside).
        FloatVector v = FloatVector(x + i, stdx::element_aligned) * inverse;
        stdx::where(stdx::isnan(v), v) = 0.0f;
        stdx::where(v < low, v) = low;
        stdx::where(v > high, v) = high;
        v = stdx::nearbyint(v);
        const IntVector codes = stdx::static_simd_cast<IntVector>(v) + zero_point;
        stdx::static_simd_cast<ByteVector>(codes).copy_to(out + i, stdx::element_aligned);
    }
#else
    (void)inverse;
    (void)low;
    (void)high;
    (void)zero_point;
#endif
    for (; i < count; ++i) {
        float v = x[i] * q.inverse;
        v = std::isnan(v) ? 0.0f : v;
        v = v < q.low ? q.low : v;
        v = v > q.high ? q.high : v;
        v = std::nearbyint(v);
        out[i] = static_cast<std::uint8_t>(static_cast<std::int32_t>(v) + q.zero_point);
    }
}
#pragma GCC diagnostic pop

// --- from int32 sums to float32 -----------------------------------------------

// y[m, n] = factors[n] * float32(sums[m, n] - offsets[n]) + bias[n]. g++
// contracts the multiply-add into one fused operation (one rounding) where
// the target has FMA, as -march=native builds on current x86 CPUs do, in the
// vector loop and the scalar tail alike. stdx::fma was not inlined by g++ 12
// and made the loop twice as slow.
void dequantize_rows(const std::int32_t* sums, std::size_t rows, std::size_t out, Dequantizer d,
                     float* y) {
    for (std::size_t m = 0; m < rows; ++m) {
        const std::int32_t* sum_row = sums + m * out;
        float* y_row = y + m * out;
        std::size_t n = 0;
        for (; n + FloatVector::size() <= out; n += FloatVector::size()) {
            const IntVector centred = IntVector(sum_row + n, stdx::element_aligned) -
                                      IntVector(d.offsets + n, stdx::element_aligned);
            const auto value = stdx::static_simd_cast<FloatVector>(centred);
            const FloatVector factor(d.factors + n, stdx::element_aligned);
            const FloatVector bias(d.bias + n, stdx::element_aligned);
            (value * factor + bias).copy_to(y_row + n, stdx::element_aligned);
        }
        for (; n < out; ++n) {
            const auto value = static_cast<float>(sum_row[n] - d.offsets[n]);
            y_row[n] = value * d.factors[n] + d.bias[n];
        }
    }
}

// --- the per-output values --------------------------------------------------

Dequantizer make_dequantizer(const OpArgs& args, double input_scale, std::int64_t zero_point,
                             DequantizerBuffers& buffers) {
    const float* weight_scales = args.values<float>(kScales).data();
    const std::int64_t* row_sums = args.values<std::int64_t>(kRowSums).data();
    const std::size_t out = args.shape(kScales)[0];
    float* factors = grown(buffers.factors, out);
    std::int32_t* offsets = grown(buffers.offsets, out);
    for (std::size_t n = 0; n < out; ++n) {
        factors[n] = static_cast<float>(input_scale * static_cast<double>(weight_scales[n]));
        offsets[n] = static_cast<std::int32_t>(zero_point * row_sums[n]);
    }
    if (args.size() > kBias) {
        return {factors, offsets, args.values<float>(kBias).data()};
    }
    // grown() value-initialises new elements, and nothing writes them.
    return {factors, offsets, grown(buffers.zero_bias, out)};
}

// --- input checks -------------------------------------------------------------

void check_quantized_dtype(const char* op, const OpArgs& args, std::size_t input, Dtype expected,
                           const char* name) {
    if (args.dtype(input) != expected) {
        throw value_error(std::string(op) + ": " + name + " must be " + dtype_name(expected) +
                          ", got " + dtype_name(args.dtype(input)) +
                          (expected == Dtype::float32 ? "; convert it with to_dtype()" : ""));
    }
}

void check_per_output(const char* op, const OpArgs& args, std::size_t input, const char* name) {
    const Shape& values = args.shape(kValues);
    if (args.shape(input) != Shape{values[0]}) {
        throw shape_error(std::string(op) + ": " + name + " has shape " +
                          shape_string(args.shape(input)) + " but values has shape " +
                          shape_string(values) + "; expected " + name + " of shape (" +
                          std::to_string(values[0]) + ")");
    }
}

void check_weight_values(const char* op, const OpArgs& args, const char* reduction,
                         const char* hint) {
    const auto& scales = args.values<float>(kScales);
    for (std::size_t n = 0; n < scales.size(); ++n) {
        const float scale = scales.data()[n];
        if (!(scale > 0.0f && scale <= FLT_MAX)) {
            throw value_error(std::string(op) + ": scales[" + std::to_string(n) + "] is " +
                              number_string(scale) + "; weight scales must be positive and finite");
        }
    }
    const Shape& values = args.shape(kValues);
    std::int64_t in = 1;
    for (std::size_t d = 1; d < values.size(); ++d) {
        in *= static_cast<std::int64_t>(values[d]);
    }
    const auto& row_sums = args.values<std::int64_t>(kRowSums);
    for (std::size_t n = 0; n < row_sums.size(); ++n) {
        const std::int64_t sum = row_sums.data()[n];
        if (sum < -128 * in || sum > 127 * in) {
            throw value_error(std::string(op) + ": row_sums[" + std::to_string(n) + "] is " +
                              std::to_string(sum) + ", outside [" + std::to_string(-128 * in) +
                              ", " + std::to_string(127 * in) + "] for " + reduction + " " +
                              std::to_string(in) + hint);
        }
    }
}

// --- the kernel setting -------------------------------------------------------

// XGRAD_QUANTIZED_KERNEL=reference, read once per process.
bool environment_selects_reference(const char* op) {
    static const bool selected = [op] {
        const char* value = std::getenv("XGRAD_QUANTIZED_KERNEL");
        if (value == nullptr || *value == '\0' || std::strcmp(value, "automatic") == 0) {
            return false;
        }
        if (std::strcmp(value, "reference") == 0) {
            return true;
        }
        throw value_error(std::string(op) + ": XGRAD_QUANTIZED_KERNEL is '" + value +
                          "'; expected 'reference' or 'automatic'");
    }();
    return selected;
}

const char* kernel_name(QuantizedKernel kernel) {
    switch (kernel) {
        case QuantizedKernel::automatic:
            return "automatic";
        case QuantizedKernel::reference:
            return "reference";
        case QuantizedKernel::onednn:
            return "onednn";
    }
    return "unknown";
}

}  // namespace xgrad::detail

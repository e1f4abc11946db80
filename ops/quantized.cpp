#include "xgrad/ops/quantized.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <experimental/simd>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/int8_matmul.hpp"
#include "xgrad/op.hpp"
#include "xgrad/quant/qparams.hpp"

namespace xgrad {

namespace {

namespace stdx = std::experimental;

// Inputs of the op, in order. attrs.scalars[0] is the input scale, and
// attrs.ints is {input zero point, QuantizedKernel}.
enum QuantizedLinearInput : std::size_t { kX, kValues, kScales, kRowSums, kBias };

std::string number_string(double value) {
    std::ostringstream text;
    text << value;
    return text.str();
}

void check_params(const char* context, double scale, std::int64_t zero_point) {
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

using FloatVector = stdx::fixed_size_simd<float, 16>;
using IntVector = stdx::fixed_size_simd<std::int32_t, 16>;
using ByteVector = stdx::fixed_size_simd<std::uint8_t, 16>;

struct Quantizer {
    float inverse;
    float low;   // -zero_point
    float high;  // 255 - zero_point
    std::int32_t zero_point;
};

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

// Per output n: the factor float32(s_x * s_w[n]), the offset z_x * row_sums[n]
// and the bias. make_dequantizer() computes the first two at every call, in
// O(out_features) time.
struct Dequantizer {
    const float* factors;
    const std::int32_t* offsets;
    const float* bias;
};

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

// --- the op -------------------------------------------------------------------

// Buffers of one call, kept per thread so that repeated calls of a shape, and
// so a replayed graph, allocate only when a call needs more room than any
// earlier one on the same thread.
struct Scratch {
    std::vector<std::uint8_t> inputs;
    std::vector<std::int32_t> sums;
    std::vector<float> factors;
    std::vector<std::int32_t> offsets;
    std::vector<float> zero_bias;
};

template <class T>
T* grown(std::vector<T>& buffer, std::size_t size) {
    if (buffer.size() < size) {
        buffer.resize(size);
    }
    return buffer.data();
}

std::size_t leading_rows(const Shape& x) {
    std::size_t rows = 1;
    for (std::size_t d = 0; d + 1 < x.size(); ++d) {
        rows *= x[d];
    }
    return rows;
}

// XGRAD_QUANTIZED_KERNEL=reference, read once per process.
bool environment_selects_reference() {
    static const bool selected = [] {
        const char* value = std::getenv("XGRAD_QUANTIZED_KERNEL");
        if (value == nullptr || *value == '\0' || std::strcmp(value, "automatic") == 0) {
            return false;
        }
        if (std::strcmp(value, "reference") == 0) {
            return true;
        }
        throw value_error(std::string("quantized_linear: XGRAD_QUANTIZED_KERNEL is '") + value +
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

// Fills `sums` with the kernel that `kernel` and the environment select.
void multiply(QuantizedKernel kernel, const std::uint8_t* q_x, const std::int8_t* q_w,
              std::size_t rows, std::size_t in, std::size_t out, std::int32_t* sums) {
    const bool wants_onednn = kernel == QuantizedKernel::onednn ||
                              (kernel == QuantizedKernel::automatic &&
                               !environment_selects_reference() && onednn_int8_available());
    // A product with a zero dimension needs no kernel; the loop below does nothing
    // or writes zeros.
    if (wants_onednn && rows > 0 && in > 0 && out > 0) {
        if (detail::int8_matmul_onednn(q_x, q_w, rows, in, out, sums)) {
            return;
        }
        if (kernel == QuantizedKernel::onednn) {
            throw not_implemented("quantized_linear: oneDNN cannot create an int8 matmul for " +
                                  std::to_string(rows) + " rows, in_features " +
                                  std::to_string(in) + " and out_features " + std::to_string(out));
        }
    }
    detail::int8_matmul_reference(q_x, q_w, rows, in, out, sums);
}

// The per-output values of the conversion back to float32, in `scratch`.
Dequantizer make_dequantizer(const OpArgs& args, double input_scale, std::int64_t zero_point,
                             Scratch& scratch) {
    const float* weight_scales = args.values<float>(kScales).data();
    const std::int64_t* row_sums = args.values<std::int64_t>(kRowSums).data();
    const std::size_t out = args.shape(kScales)[0];
    float* factors = grown(scratch.factors, out);
    std::int32_t* offsets = grown(scratch.offsets, out);
    for (std::size_t n = 0; n < out; ++n) {
        factors[n] = static_cast<float>(input_scale * static_cast<double>(weight_scales[n]));
        offsets[n] = static_cast<std::int32_t>(zero_point * row_sums[n]);
    }
    if (args.size() > kBias) {
        return {factors, offsets, args.values<float>(kBias).data()};
    }
    // grown() value-initialises new elements, and nothing writes them.
    return {factors, offsets, grown(scratch.zero_bias, out)};
}

void check_attrs(const OpAttrs& attrs) {
    const auto& ints = attrs.ints;
    if (ints.size() != 2) {
        throw value_error("quantized_linear: attrs.ints must be {input zero point, kernel}, got " +
                          std::to_string(ints.size()) + " values");
    }
    check_params("quantized_linear", attrs.scalars[0], ints[0]);
    if (ints[1] < 0 || ints[1] > static_cast<std::int64_t>(QuantizedKernel::onednn)) {
        const std::string value = std::to_string(ints[1]);
        throw value_error(
            "quantized_linear: attrs.ints[1] must be a QuantizedKernel, "
            "0, 1 or 2, got " +
            value);
    }
}

void check_dtype(const OpArgs& args, std::size_t input, Dtype expected, const char* name) {
    if (args.dtype(input) != expected) {
        throw value_error(std::string("quantized_linear: ") + name + " must be " +
                          dtype_name(expected) + ", got " + dtype_name(args.dtype(input)) +
                          (expected == Dtype::float32 ? "; convert it with to_dtype()" : ""));
    }
}

void check_per_output(const OpArgs& args, std::size_t input, const char* name) {
    const Shape& values = args.shape(kValues);
    if (args.shape(input) != Shape{values[0]}) {
        throw shape_error(std::string("quantized_linear: ") + name + " has shape " +
                          shape_string(args.shape(input)) + " but values has shape " +
                          shape_string(values) + "; expected " + name + " of shape (" +
                          std::to_string(values[0]) + ")");
    }
}

void check_weight_values(const OpArgs& args) {
    const auto& scales = args.values<float>(kScales);
    for (std::size_t n = 0; n < scales.size(); ++n) {
        const float scale = scales.data()[n];
        if (!(scale > 0.0f && scale <= FLT_MAX)) {
            throw value_error("quantized_linear: scales[" + std::to_string(n) + "] is " +
                              number_string(scale) + "; weight scales must be positive and finite");
        }
    }
    const auto in = static_cast<std::int64_t>(args.shape(kValues)[1]);
    const auto& row_sums = args.values<std::int64_t>(kRowSums);
    for (std::size_t n = 0; n < row_sums.size(); ++n) {
        const std::int64_t sum = row_sums.data()[n];
        if (sum < -128 * in || sum > 127 * in) {
            throw value_error("quantized_linear: row_sums[" + std::to_string(n) + "] is " +
                              std::to_string(sum) + ", outside [" + std::to_string(-128 * in) +
                              ", " + std::to_string(127 * in) + "] for in_features " +
                              std::to_string(in) + "; compute row sums with weight_row_sums()");
        }
    }
}

struct QuantizedLinear {
    static constexpr OpInfo kInfo{
        .name = "quantized_linear", .arity = kVariadic, .differentiable = false};

    static OutputSpec infer(const OpArgs& args) {
        if (args.size() < 4 || args.size() > 5) {
            const std::string count = std::to_string(args.size());
            throw value_error(
                "quantized_linear: expected x, values, scales, row_sums and "
                "an optional bias, got " +
                count + " tensors");
        }
        check_attrs(args.attrs());
        check_dtype(args, kX, Dtype::float32, "x");
        check_dtype(args, kValues, Dtype::int8, "values");
        check_dtype(args, kScales, Dtype::float32, "scales");
        check_dtype(args, kRowSums, Dtype::int64, "row_sums");
        if (args.size() > kBias) {
            check_dtype(args, kBias, Dtype::float32, "bias");
        }

        const Shape& values = args.shape(kValues);
        if (values.size() != 2) {
            throw shape_error(
                "quantized_linear: values must have shape (out_features, in_features), got " +
                shape_string(values));
        }
        if (values[1] > kMaxQuantizedInFeatures) {
            throw not_implemented("quantized_linear: in_features " + std::to_string(values[1]) +
                                  " exceeds " + std::to_string(kMaxQuantizedInFeatures) +
                                  ", the most whose sums are exact in int32");
        }
        check_per_output(args, kScales, "scales");
        check_per_output(args, kRowSums, "row_sums");
        if (args.size() > kBias) {
            check_per_output(args, kBias, "bias");
        }
        const Shape& x = args.shape(kX);
        if (x.empty() || x.back() != values[1]) {
            throw shape_error("quantized_linear: x has shape " + shape_string(x) +
                              " but values has shape " + shape_string(values) +
                              "; the last dimension of x must be " + std::to_string(values[1]));
        }
        check_weight_values(args);

        const auto kernel = static_cast<QuantizedKernel>(args.attrs().ints[1]);
        if (kernel == QuantizedKernel::onednn && !onednn_int8_available()) {
            throw not_implemented(
                "quantized_linear: the oneDNN kernel needs VNNI or AMX instructions, which "
                "oneDNN does not find on this CPU; use QuantizedKernel::automatic or reference");
        }
        if (kernel == QuantizedKernel::automatic) {
            environment_selects_reference();  // throws here for an invalid setting
        }
        Shape out = x;
        out.back() = values[0];
        return {out, Dtype::float32};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        if constexpr (std::is_same_v<T, float>) {
            run(args, y.data());
        } else {
            throw std::logic_error("quantized_linear: the output must be float32");
        }
    }

    static void run(const OpArgs& args, float* y) {
        const double input_scale = args.attrs().scalars[0];
        const std::int64_t zero_point = args.attrs().ints[0];
        const auto kernel = static_cast<QuantizedKernel>(args.attrs().ints[1]);
        const auto& values = args.values<std::int8_t>(kValues);
        const std::size_t out = values.shape()[0];
        const std::size_t in = values.shape()[1];
        const auto& x = args.values<float>(kX);
        const std::size_t rows = leading_rows(x.shape());

        thread_local Scratch scratch;
        std::uint8_t* q_x = grown(scratch.inputs, rows * in);
        quantize_values(x.data(), rows * in, make_quantizer(input_scale, zero_point), q_x);

        std::int32_t* sums = grown(scratch.sums, rows * out);
        multiply(kernel, q_x, values.data(), rows, in, out, sums);

        const Dequantizer dequantizer = make_dequantizer(args, input_scale, zero_point, scratch);
        dequantize_rows(sums, rows, out, dequantizer, y);
    }

    static std::string describe(const OpAttrs& attrs) {
        if (attrs.ints.size() != 2) {
            return {};
        }
        std::string text = "input_scale=" + number_string(attrs.scalars[0]) +
                           ", input_zero_point=" + std::to_string(attrs.ints[0]);
        const auto kernel = static_cast<QuantizedKernel>(attrs.ints[1]);
        if (kernel != QuantizedKernel::automatic) {
            text += std::string(", kernel=") + kernel_name(kernel);
        }
        return text;
    }
};

const OpDef& kQuantizedLinear = define_op<QuantizedLinear>();

// --- weights ------------------------------------------------------------------

template <class T>
QuantizedWeight quantize_weight_typed(const xt::xarray<T>& weight) {
    const std::size_t out = weight.shape()[0];
    const std::size_t in = weight.shape()[1];
    auto values = xt::xarray<std::int8_t>::from_shape({out, in});
    auto scales = xt::xarray<float>::from_shape({out});
    auto row_sums = xt::xarray<std::int64_t>::from_shape({out});
    for (std::size_t n = 0; n < out; ++n) {
        const T* row = weight.data() + n * in;
        double max_abs = 0.0;
        for (std::size_t k = 0; k < in; ++k) {
            const auto value = static_cast<double>(row[k]);
            if (!std::isfinite(value)) {
                throw value_error("quantize_weight: weight[" + std::to_string(n) + ", " +
                                  std::to_string(k) + "] is " + number_string(value) +
                                  "; only finite weights can be quantized");
            }
            max_abs = std::max(max_abs, std::abs(value));
        }
        const auto scale = static_cast<float>(quant::int8_weight_scale(max_abs));
        std::int64_t sum = 0;
        for (std::size_t k = 0; k < in; ++k) {
            const double code = std::nearbyint(static_cast<double>(row[k]) / scale);
            const auto q = static_cast<std::int8_t>(std::clamp(code, -127.0, 127.0));
            values.data()[n * in + k] = q;
            sum += q;
        }
        scales(n) = scale;
        row_sums(n) = sum;
    }
    return {Tensor(std::move(values)), Tensor(std::move(scales)), Tensor(std::move(row_sums))};
}

}  // namespace

QuantizedWeight quantize_weight(const Tensor& weight) {
    check_defined("quantize_weight", weight);
    if (weight.dim() != 2) {
        throw shape_error(
            "quantize_weight: expected a weight of shape (out_features, "
            "in_features), got shape " +
            shape_string(weight.shape()));
    }
    return detail::visit_floating(weight.dtype(), "quantize_weight", [&](auto zero) {
        using T = decltype(zero);
        return quantize_weight_typed(weight.values<T>());
    });
}

Tensor weight_row_sums(const Tensor& values) {
    check_defined("weight_row_sums", values);
    if (values.dim() != 2) {
        throw shape_error(
            "weight_row_sums: expected int8 values of shape (out_features, "
            "in_features), got shape " +
            shape_string(values.shape()));
    }
    if (values.dtype() != Dtype::int8) {
        throw value_error(std::string("weight_row_sums: values must be int8, got ") +
                          dtype_name(values.dtype()));
    }
    const auto& codes = values.values<std::int8_t>();
    const std::size_t out = codes.shape()[0];
    const std::size_t in = codes.shape()[1];
    auto sums = xt::xarray<std::int64_t>::from_shape({out});
    for (std::size_t n = 0; n < out; ++n) {
        const std::int8_t* row = codes.data() + n * in;
        sums(n) = std::accumulate(row, row + in, std::int64_t{0});
    }
    return Tensor(std::move(sums));
}

Tensor quantize_uint8(const Tensor& x, const QuantizationParams& params) {
    check_defined("quantize_uint8", x);
    check_params("quantize_uint8", params.scale, params.zero_point);
    if (x.dtype() != Dtype::float32) {
        throw value_error(std::string("quantize_uint8: x must be float32, got ") +
                          dtype_name(x.dtype()) + "; convert it with to_dtype()");
    }
    const auto& values = x.values<float>();
    auto codes = xt::xarray<std::uint8_t>::from_shape(values.shape());
    quantize_values(values.data(), values.size(), make_quantizer(params.scale, params.zero_point),
                    codes.data());
    return Tensor(std::move(codes));
}

bool onednn_int8_available() { return detail::onednn_has_int8_dot_product(); }

Tensor quantized_linear(const Tensor& x, const QuantizationParams& input,
                        const QuantizedWeight& weight, const Tensor& bias, QuantizedKernel kernel) {
    OpAttrs attrs;
    attrs.scalars[0] = input.scale;
    attrs.ints = {input.zero_point, static_cast<std::int64_t>(kernel)};
    if (bias.defined()) {
        const Tensor* inputs[] = {&x, &weight.values, &weight.scales, &weight.row_sums, &bias};
        return apply(kQuantizedLinear, std::span<const Tensor* const>(inputs), attrs);
    }
    const Tensor* inputs[] = {&x, &weight.values, &weight.scales, &weight.row_sums};
    return apply(kQuantizedLinear, std::span<const Tensor* const>(inputs), attrs);
}

}  // namespace xgrad

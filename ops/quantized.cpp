#include "xgrad/ops/quantized.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/int8_matmul.hpp"
#include "kernels/int8_quantize.hpp"
#include "xgrad/op.hpp"
#include "xgrad/quant/qparams.hpp"

namespace xgrad {

namespace {

using detail::Dequantizer;
using detail::grown;
using detail::number_string;

// Inputs of the op, in order (detail::QuantizedInput). attrs.scalars[0] is
// the input scale, and attrs.ints is {input zero point, QuantizedKernel}.
using enum detail::QuantizedInput;

// --- the op -------------------------------------------------------------------

// Buffers of one call, kept per thread so that repeated calls of a shape, and
// so a replayed graph, allocate only when a call needs more room than any
// earlier one on the same thread.
struct Scratch {
    std::vector<std::uint8_t> inputs;
    std::vector<std::int32_t> sums;
    detail::DequantizerBuffers dequantizer;
};

std::size_t leading_rows(const Shape& x) {
    std::size_t rows = 1;
    for (std::size_t d = 0; d + 1 < x.size(); ++d) {
        rows *= x[d];
    }
    return rows;
}

// Fills `sums` with the kernel that `kernel` and the environment select.
void multiply(QuantizedKernel kernel, const std::uint8_t* q_x, const std::int8_t* q_w,
              std::size_t rows, std::size_t in, std::size_t out, std::int32_t* sums) {
    const bool wants_onednn = kernel == QuantizedKernel::onednn ||
                              (kernel == QuantizedKernel::automatic &&
                               !detail::environment_selects_reference("quantized_linear") &&
                               onednn_int8_available());
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

void check_attrs(const OpAttrs& attrs) {
    const auto& ints = attrs.ints;
    if (ints.size() != 2) {
        throw value_error("quantized_linear: attrs.ints must be {input zero point, kernel}, got " +
                          std::to_string(ints.size()) + " values");
    }
    detail::check_quantization_params("quantized_linear", attrs.scalars[0], ints[0]);
    if (ints[1] < 0 || ints[1] > static_cast<std::int64_t>(QuantizedKernel::onednn)) {
        const std::string value = std::to_string(ints[1]);
        throw value_error(
            "quantized_linear: attrs.ints[1] must be a QuantizedKernel, "
            "0, 1 or 2, got " +
            value);
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
        const char* op = kInfo.name;
        detail::check_quantized_dtype(op, args, kX, Dtype::float32, "x");
        detail::check_quantized_dtype(op, args, kValues, Dtype::int8, "values");
        detail::check_quantized_dtype(op, args, kScales, Dtype::float32, "scales");
        detail::check_quantized_dtype(op, args, kRowSums, Dtype::int64, "row_sums");
        if (args.size() > kBias) {
            detail::check_quantized_dtype(op, args, kBias, Dtype::float32, "bias");
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
        detail::check_per_output(op, args, kScales, "scales");
        detail::check_per_output(op, args, kRowSums, "row_sums");
        if (args.size() > kBias) {
            detail::check_per_output(op, args, kBias, "bias");
        }
        const Shape& x = args.shape(kX);
        if (x.empty() || x.back() != values[1]) {
            throw shape_error("quantized_linear: x has shape " + shape_string(x) +
                              " but values has shape " + shape_string(values) +
                              "; the last dimension of x must be " + std::to_string(values[1]));
        }
        detail::check_weight_values(op, args, "in_features",
                                    "; compute row sums with weight_row_sums()");

        const auto kernel = static_cast<QuantizedKernel>(args.attrs().ints[1]);
        if (kernel == QuantizedKernel::onednn && !onednn_int8_available()) {
            throw not_implemented(
                "quantized_linear: the oneDNN kernel needs VNNI or AMX instructions, which "
                "oneDNN does not find on this CPU; use QuantizedKernel::automatic or reference");
        }
        if (kernel == QuantizedKernel::automatic) {
            // Throws here for an invalid setting.
            detail::environment_selects_reference("quantized_linear");
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
        const detail::Quantizer quantizer = detail::make_quantizer(input_scale, zero_point);
        detail::quantize_values(x.data(), rows * in, quantizer, q_x);

        std::int32_t* sums = grown(scratch.sums, rows * out);
        multiply(kernel, q_x, values.data(), rows, in, out, sums);

        const Dequantizer dequantizer =
            detail::make_dequantizer(args, input_scale, zero_point, scratch.dequantizer);
        detail::dequantize_rows(sums, rows, out, dequantizer, y);
    }

    static std::string describe(const OpAttrs& attrs) {
        if (attrs.ints.size() != 2) {
            return {};
        }
        std::string text = "input_scale=" + number_string(attrs.scalars[0]) +
                           ", input_zero_point=" + std::to_string(attrs.ints[0]);
        const auto kernel = static_cast<QuantizedKernel>(attrs.ints[1]);
        if (kernel != QuantizedKernel::automatic) {
            text += std::string(", kernel=") + detail::kernel_name(kernel);
        }
        return text;
    }
};

const OpDef& kQuantizedLinear = define_op<QuantizedLinear>();

// --- weights ------------------------------------------------------------------

// "[1, 0, 2]": the position of element `flat` in a row-major tensor of
// this shape, as error messages show it.
std::string position_string(const Shape& shape, std::size_t flat) {
    std::vector<std::size_t> index(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    std::string text = "[";
    for (std::size_t d = 0; d < index.size(); ++d) {
        text += (d > 0 ? ", " : "") + std::to_string(index[d]);
    }
    return text + "]";
}

// Quantizes each slice weight[n] (a row of a linear weight, all of an output
// channel's taps in a convolution weight) with its own scale.
template <class T>
QuantizedWeight quantize_weight_typed(const char* op, const xt::xarray<T>& weight) {
    const Shape shape(weight.shape().begin(), weight.shape().end());
    const std::size_t out = shape[0];
    const std::size_t in = out == 0 ? 0 : weight.size() / out;
    auto values = xt::xarray<std::int8_t>::from_shape(shape);
    auto scales = xt::xarray<float>::from_shape({out});
    auto row_sums = xt::xarray<std::int64_t>::from_shape({out});
    for (std::size_t n = 0; n < out; ++n) {
        const T* row = weight.data() + n * in;
        double max_abs = 0.0;
        for (std::size_t k = 0; k < in; ++k) {
            const auto value = static_cast<double>(row[k]);
            if (!std::isfinite(value)) {
                throw value_error(std::string(op) + ": weight" +
                                  position_string(shape, n * in + k) + " is " +
                                  number_string(value) + "; only finite weights can be quantized");
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
        return quantize_weight_typed("quantize_weight", weight.values<T>());
    });
}

QuantizedWeight quantize_conv_weight(const Tensor& weight) {
    check_defined("quantize_conv_weight", weight);
    if (weight.dim() != 4) {
        throw shape_error(
            "quantize_conv_weight: expected a weight of shape (C_out, C_in, kH, kW), got shape " +
            shape_string(weight.shape()));
    }
    return detail::visit_floating(weight.dtype(), "quantize_conv_weight", [&](auto zero) {
        using T = decltype(zero);
        return quantize_weight_typed("quantize_conv_weight", weight.values<T>());
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
    detail::check_quantization_params("quantize_uint8", params.scale, params.zero_point);
    if (x.dtype() != Dtype::float32) {
        throw value_error(std::string("quantize_uint8: x must be float32, got ") +
                          dtype_name(x.dtype()) + "; convert it with to_dtype()");
    }
    const auto& values = x.values<float>();
    auto codes = xt::xarray<std::uint8_t>::from_shape(values.shape());
    detail::quantize_values(values.data(), values.size(),
                            detail::make_quantizer(params.scale, params.zero_point),
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

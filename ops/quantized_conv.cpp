#include "xgrad/ops/quantized_conv.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/int8_conv.hpp"
#include "kernels/int8_matmul.hpp"
#include "kernels/int8_quantize.hpp"
#include "kernels/window2d.hpp"
#include "xgrad/op.hpp"

namespace xgrad {

namespace {

// Inputs of the op, in order (detail::QuantizedInput). attrs.scalars[0] is
// the input scale, and attrs.ints is {input zero point, QuantizedKernel,
// stride h, w, padding h, w, dilation h, w}.
using enum detail::QuantizedInput;
using detail::Window2d;

constexpr const char* kOp = "quantized_conv2d";
constexpr std::size_t kAttrCount = 8;

void check_attrs(const OpAttrs& attrs) {
    const auto& ints = attrs.ints;
    if (ints.size() != kAttrCount) {
        throw value_error(
            "quantized_conv2d: attrs.ints must be {input zero point, kernel, stride h, w, "
            "padding h, w, dilation h, w}, got " +
            std::to_string(ints.size()) + " values");
    }
    detail::check_quantization_params(kOp, attrs.scalars[0], ints[0]);
    if (ints[1] < 0 || ints[1] > static_cast<std::int64_t>(QuantizedKernel::onednn)) {
        throw value_error(
            "quantized_conv2d: attrs.ints[1] must be a QuantizedKernel, 0, 1 or 2, "
            "got " +
            std::to_string(ints[1]));
    }
}

// The window over x with the weight's kernel size, after checking the shapes
// of x and values.
Window2d quantized_window(const OpArgs& args) {
    const Shape& x = args.shape(kX);
    const Shape& values = args.shape(kValues);
    if (values.size() != 4) {
        throw shape_error("quantized_conv2d: values must have shape (C_out, C_in, kH, kW), got " +
                          shape_string(values));
    }
    if (x.size() != 4) {
        throw shape_error("quantized_conv2d: x must have shape (N, C_in, H, W), got " +
                          shape_string(x));
    }
    if (x[1] != values[1]) {
        throw shape_error("quantized_conv2d: x has shape " + shape_string(x) +
                          " but values has shape " + shape_string(values) + "; x must have " +
                          std::to_string(values[1]) + " channels (dimension 1)");
    }
    const auto& ints = args.attrs().ints;
    detail::WindowParams2d params;
    params.kernel = {static_cast<std::int64_t>(values[2]), static_cast<std::int64_t>(values[3])};
    params.stride = {ints[2], ints[3]};
    params.padding = {ints[4], ints[5]};
    params.dilation = {ints[6], ints[7]};
    return detail::make_window2d(kOp, x, params, detail::WindowKind::convolution);
}

// The kernels' view of the padded input: zero padding, since the op pads.
detail::Int8ConvShape padded_shape(const Window2d& w, std::size_t out_channels) {
    detail::Int8ConvShape shape;
    shape.batch = w.batch;
    shape.channels = w.channels;
    shape.height = w.height + 2 * w.pad_h;
    shape.width = w.width + 2 * w.pad_w;
    shape.out_channels = out_channels;
    shape.kernel_h = w.kernel_h;
    shape.kernel_w = w.kernel_w;
    shape.stride_h = w.stride_h;
    shape.stride_w = w.stride_w;
    shape.dilation_h = w.dilation_h;
    shape.dilation_w = w.dilation_w;
    shape.out_h = w.out_h;
    shape.out_w = w.out_w;
    return shape;
}

// The convolution runs on chunks of samples whose int32 sums take about
// kChunkBytes, so that the sums are still in cache when they are converted
// to float32. For the first fashion_cnn layer at batch 256, whose sums take
// 25 MB, the op took 7.8 ms in one pass over the batch and 4.0 ms in chunks
// (tests/bench/bench_quant_conv, on a 2-core Zen 4 machine).
constexpr std::size_t kChunkBytes = std::size_t(256) << 10;

std::size_t chunk_samples(std::size_t batch, std::size_t sums_per_sample) {
    const std::size_t fitting = kChunkBytes / std::max<std::size_t>(sums_per_sample * 4, 1);
    return std::clamp<std::size_t>(fitting, 1, std::max<std::size_t>(batch, 1));
}

// Buffers of one call, kept per thread as in quantized_linear.
struct Scratch {
    std::vector<std::uint8_t> sample;  // one sample's codes, NCHW
    std::vector<std::uint8_t> padded;  // all samples, padded, NHWC
    std::vector<std::int32_t> sums;    // a chunk's sums, NHWC
    detail::DequantizerBuffers dequantizer;
};

// Quantizes x (N, C, H, W) into `padded` (N, H + 2 pad_h, W + 2 pad_w, C):
// the codes of x inside, the zero point in the borders. Each sample goes
// through the shared vector quantizer first, in x's own order, and is then
// copied into place.
void quantize_padded(const Window2d& w, const float* x, detail::Quantizer quantizer,
                     Scratch& scratch, std::uint8_t* padded) {
    const std::size_t c_in = w.channels;
    const std::size_t padded_w = w.width + 2 * w.pad_w;
    const std::size_t padded_sample = (w.height + 2 * w.pad_h) * padded_w * c_in;
    const std::size_t sample_size = c_in * w.input_plane();
    std::uint8_t* codes = detail::grown(scratch.sample, sample_size);
    const auto zero_point = static_cast<std::uint8_t>(quantizer.zero_point);
    for (std::size_t n = 0; n < w.batch; ++n) {
        detail::quantize_values(x + n * sample_size, sample_size, quantizer, codes);
        std::uint8_t* target = padded + n * padded_sample;
        std::fill(target, target + padded_sample, zero_point);
        for (std::size_t h = 0; h < w.height; ++h) {
            std::uint8_t* row = target + ((h + w.pad_h) * padded_w + w.pad_w) * c_in;
            for (std::size_t col = 0; col < w.width; ++col) {
                for (std::size_t c = 0; c < c_in; ++c) {
                    row[col * c_in + c] = codes[(c * w.height + h) * w.width + col];
                }
            }
        }
    }
}

// Fills `sums` with the kernel that `kernel` and the environment select.
void convolve(QuantizedKernel kernel, const detail::Int8ConvShape& shape, const std::uint8_t* q_x,
              const std::int8_t* q_w, std::int32_t* sums) {
    const bool wants_onednn =
        kernel == QuantizedKernel::onednn ||
        (kernel == QuantizedKernel::automatic && !detail::environment_selects_reference(kOp) &&
         onednn_int8_available());
    const bool empty = shape.batch == 0 || shape.channels == 0 || shape.out_channels == 0 ||
                       shape.out_h == 0 || shape.out_w == 0;
    // An empty convolution needs no kernel; the reference writes zeros or
    // nothing.
    if (wants_onednn && !empty) {
        if (detail::int8_conv_onednn(shape, q_x, q_w, sums)) {
            return;
        }
        if (kernel == QuantizedKernel::onednn) {
            throw not_implemented(
                "quantized_conv2d: oneDNN cannot create an int8 convolution for input " +
                shape_string({shape.batch, shape.channels, shape.height, shape.width}) +
                " (padded) and weight " +
                shape_string({shape.out_channels, shape.channels, shape.kernel_h, shape.kernel_w}));
        }
    }
    detail::int8_conv_reference(shape, q_x, q_w, sums);
}

// y[o, p] = factors[o] * float32(sums[p, o] - offsets[o]) + bias[o] for one
// sample: the arithmetic of quantized_linear's conversion, reading the NHWC
// sums and writing NCHW. g++ contracts the multiply-add into one rounding
// where the target has FMA, as there. Blocks of kBlock positions keep the
// strided reads of the sums within a few cache lines per output channel.
void dequantize_transposed(const std::int32_t* __restrict sums, std::size_t plane,
                           std::size_t c_out, detail::Dequantizer d, float* __restrict y) {
    constexpr std::size_t kBlock = 16;
    for (std::size_t first = 0; first < plane; first += kBlock) {
        const std::size_t last = std::min(plane, first + kBlock);
        for (std::size_t o = 0; o < c_out; ++o) {
            const float factor = d.factors[o];
            const std::int32_t offset = d.offsets[o];
            const float shift = d.bias[o];
            float* y_row = y + o * plane;
            for (std::size_t p = first; p < last; ++p) {
                const auto value = static_cast<float>(sums[p * c_out + o] - offset);
                y_row[p] = value * factor + shift;
            }
        }
    }
}

struct QuantizedConv2d {
    static constexpr OpInfo kInfo{
        .name = "quantized_conv2d", .arity = kVariadic, .differentiable = false};

    static OutputSpec infer(const OpArgs& args) {
        if (args.size() < 4 || args.size() > 5) {
            throw value_error(
                "quantized_conv2d: expected x, values, scales, row_sums and an optional bias, "
                "got " +
                std::to_string(args.size()) + " tensors");
        }
        check_attrs(args.attrs());
        detail::check_quantized_dtype(kOp, args, kX, Dtype::float32, "x");
        detail::check_quantized_dtype(kOp, args, kValues, Dtype::int8, "values");
        detail::check_quantized_dtype(kOp, args, kScales, Dtype::float32, "scales");
        detail::check_quantized_dtype(kOp, args, kRowSums, Dtype::int64, "row_sums");
        if (args.size() > kBias) {
            detail::check_quantized_dtype(kOp, args, kBias, Dtype::float32, "bias");
        }

        const Window2d w = quantized_window(args);
        const Shape& values = args.shape(kValues);
        const std::size_t inputs = values[1] * values[2] * values[3];
        if (inputs > kMaxQuantizedConvInputs) {
            throw not_implemented("quantized_conv2d: C_in * kH * kW = " + std::to_string(inputs) +
                                  " for values of shape " + shape_string(values) + " exceeds " +
                                  std::to_string(kMaxQuantizedConvInputs) +
                                  ", the most whose sums are exact in int32");
        }
        detail::check_per_output(kOp, args, kScales, "scales");
        detail::check_per_output(kOp, args, kRowSums, "row_sums");
        if (args.size() > kBias) {
            detail::check_per_output(kOp, args, kBias, "bias");
        }
        detail::check_weight_values(kOp, args, "C_in * kH * kW =",
                                    "; compute row sums with quantize_conv_weight() or "
                                    "weight_row_sums() on values reshaped to (C_out, C_in kH kW)");

        const auto kernel = static_cast<QuantizedKernel>(args.attrs().ints[1]);
        if (kernel == QuantizedKernel::onednn && !onednn_int8_available()) {
            throw not_implemented(
                "quantized_conv2d: the oneDNN kernel needs VNNI or AMX instructions, which "
                "oneDNN does not find on this CPU; use QuantizedKernel::automatic or reference");
        }
        if (kernel == QuantizedKernel::automatic) {
            // Throws here for an invalid setting.
            detail::environment_selects_reference(kOp);
        }
        return {Shape{w.batch, values[0], w.out_h, w.out_w}, Dtype::float32};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        if constexpr (std::is_same_v<T, float>) {
            run(args, y.data());
        } else {
            throw std::logic_error("quantized_conv2d: the output must be float32");
        }
    }

    // Quantize and pad, then per chunk of samples convolve into NHWC int32
    // sums and convert them to float32 in NCHW order.
    static void run(const OpArgs& args, float* y) {
        const double input_scale = args.attrs().scalars[0];
        const std::int64_t zero_point = args.attrs().ints[0];
        const auto kernel = static_cast<QuantizedKernel>(args.attrs().ints[1]);
        const Window2d w = quantized_window(args);
        const std::size_t c_out = args.shape(kValues)[0];
        const detail::Int8ConvShape shape = padded_shape(w, c_out);

        thread_local Scratch scratch;
        std::uint8_t* padded = detail::grown(
            scratch.padded, shape.batch * shape.height * shape.width * shape.channels);
        quantize_padded(w, args.values<float>(kX).data(),
                        detail::make_quantizer(input_scale, zero_point), scratch, padded);

        const std::size_t plane = w.output_plane();
        const std::size_t chunk = chunk_samples(w.batch, c_out * plane);
        std::int32_t* sums = detail::grown(scratch.sums, chunk * c_out * plane);
        const std::int8_t* q_w = args.values<std::int8_t>(kValues).data();
        const detail::Dequantizer dequantizer =
            detail::make_dequantizer(args, input_scale, zero_point, scratch.dequantizer);
        const std::size_t padded_sample = shape.height * shape.width * shape.channels;
        for (std::size_t first = 0; first < w.batch; first += chunk) {
            detail::Int8ConvShape part = shape;
            part.batch = std::min(chunk, w.batch - first);
            convolve(kernel, part, padded + first * padded_sample, q_w, sums);
            for (std::size_t s = 0; s < part.batch; ++s) {
                dequantize_transposed(sums + s * plane * c_out, plane, c_out, dequantizer,
                                      y + (first + s) * c_out * plane);
            }
        }
    }

    static std::string describe(const OpAttrs& attrs) {
        const auto& ints = attrs.ints;
        if (ints.size() != kAttrCount) {
            return {};
        }
        std::string text = "input_scale=" + detail::number_string(attrs.scalars[0]) +
                           ", input_zero_point=" + std::to_string(ints[0]) +
                           ", stride=" + detail::pair_string(ints[2], ints[3]) +
                           ", padding=" + detail::pair_string(ints[4], ints[5]) +
                           ", dilation=" + detail::pair_string(ints[6], ints[7]);
        const auto kernel = static_cast<QuantizedKernel>(ints[1]);
        if (kernel != QuantizedKernel::automatic) {
            text += std::string(", kernel=") + detail::kernel_name(kernel);
        }
        return text;
    }
};

const OpDef& kQuantizedConv2d = define_op<QuantizedConv2d>();

}  // namespace

Tensor quantized_conv2d(const Tensor& x, const QuantizationParams& input,
                        const QuantizedWeight& weight, const Tensor& bias,
                        const Conv2dParams& params, QuantizedKernel kernel) {
    if (params.groups < 1) {
        throw value_error("quantized_conv2d: groups must be positive, got " +
                          std::to_string(params.groups));
    }
    if (params.groups != 1) {
        throw not_implemented("quantized_conv2d: groups = " + std::to_string(params.groups) +
                              " is not supported; only groups = 1 is");
    }
    OpAttrs attrs;
    attrs.scalars[0] = input.scale;
    attrs.ints = {input.zero_point,      static_cast<std::int64_t>(kernel),
                  params.stride.first,   params.stride.second,
                  params.padding.first,  params.padding.second,
                  params.dilation.first, params.dilation.second};
    if (bias.defined()) {
        const Tensor* inputs[] = {&x, &weight.values, &weight.scales, &weight.row_sums, &bias};
        return apply(kQuantizedConv2d, std::span<const Tensor* const>(inputs), attrs);
    }
    const Tensor* inputs[] = {&x, &weight.values, &weight.scales, &weight.row_sums};
    return apply(kQuantizedConv2d, std::span<const Tensor* const>(inputs), attrs);
}

}  // namespace xgrad

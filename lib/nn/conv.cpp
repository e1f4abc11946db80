#include "xgrad/nn/conv.hpp"

#include <cmath>

#include "kernels/window2d.hpp"

namespace xgrad::nn {

namespace {

std::array<std::int64_t, 2> to_array(const Size2d& pair) {
    return {pair.first, pair.second};
}

std::string size_string(const Size2d& pair) {
    return detail::pair_string(pair.first, pair.second);
}

// Checks pooling hyperparameters as the op's shape rule will, so that a bad
// module fails when it is built rather than at its first forward().
void check_pool(const char* module, const Size2d& kernel, const Size2d& stride,
                const Size2d& padding) {
    detail::WindowParams2d params;
    params.kernel = to_array(kernel);
    params.stride = to_array(stride);
    params.padding = to_array(padding);
    detail::check_window_params(module, params, detail::WindowKind::pooling);
}

}  // namespace

Conv2d::Conv2d(const Conv2dOptions& options) : Conv2d(options, default_generator()) {}

Conv2d::Conv2d(const Conv2dOptions& options, Generator& generator) : options_(options) {
    if (options.in_channels == 0 || options.out_channels == 0) {
        throw value_error("Conv2d: in_channels and out_channels must be positive, got in=" +
                          std::to_string(options.in_channels) +
                          ", out=" + std::to_string(options.out_channels));
    }
    if (!is_floating(options.dtype)) {
        throw value_error(std::string("Conv2d: dtype must be float32 or float64, got ") +
                          dtype_name(options.dtype));
    }
    detail::WindowParams2d params;
    params.kernel = to_array(options.kernel);
    params.stride = to_array(options.stride);
    params.padding = to_array(options.padding);
    params.dilation = to_array(options.dilation);
    detail::check_window_params("Conv2d", params, detail::WindowKind::convolution);

    const auto kernel_h = static_cast<std::size_t>(options.kernel.first);
    const auto kernel_w = static_cast<std::size_t>(options.kernel.second);
    const auto area = static_cast<double>(kernel_h * kernel_w);
    const double fan_in = static_cast<double>(options.in_channels) * area;
    const double fan_out = static_cast<double>(options.out_channels) * area;
    const double bound = options.init == Init::kaiming_uniform
                             ? std::sqrt(6.0 / fan_in)
                             : std::sqrt(6.0 / (fan_in + fan_out));
    weight = register_parameter(
        "weight", uniform({options.out_channels, options.in_channels, kernel_h, kernel_w}, -bound,
                          bound, generator, options.dtype));
    if (options.bias) {
        const double bias_bound = 1.0 / std::sqrt(fan_in);
        bias = register_parameter("bias", uniform({options.out_channels}, -bias_bound, bias_bound,
                                                  generator, options.dtype));
    }
}

Tensor Conv2d::forward(const Tensor& x) {
    if (x.defined() && x.dtype() != weight.dtype()) {
        throw value_error("Conv2d: the input is " + std::string(dtype_name(x.dtype())) +
                          " but the layer's weight is " + dtype_name(weight.dtype()) +
                          "; convert the input with to_dtype() or set Conv2dOptions::dtype");
    }
    return conv2d(
        x, weight, bias,
        {.stride = options_.stride, .padding = options_.padding, .dilation = options_.dilation});
}

std::string Conv2d::extra_repr() const {
    return "in=" + std::to_string(options_.in_channels) +
           ", out=" + std::to_string(options_.out_channels) +
           ", kernel=" + size_string(options_.kernel) + ", stride=" + size_string(options_.stride) +
           ", padding=" + size_string(options_.padding) +
           ", dilation=" + size_string(options_.dilation) +
           ", bias=" + (options_.bias ? "true" : "false");
}

MaxPool2d::MaxPool2d(const MaxPool2dParams& params) : params_(params) {
    check_pool("MaxPool2d", params.kernel, params.stride.value_or(params.kernel), params.padding);
}

Tensor MaxPool2d::forward(const Tensor& x) {
    return max_pool2d(x, params_);
}

std::string MaxPool2d::extra_repr() const {
    return "kernel=" + size_string(params_.kernel) +
           ", stride=" + size_string(params_.stride.value_or(params_.kernel)) +
           ", padding=" + size_string(params_.padding);
}

AvgPool2d::AvgPool2d(const AvgPool2dParams& params) : params_(params) {
    check_pool("AvgPool2d", params.kernel, params.stride.value_or(params.kernel), params.padding);
}

Tensor AvgPool2d::forward(const Tensor& x) {
    return avg_pool2d(x, params_);
}

std::string AvgPool2d::extra_repr() const {
    return "kernel=" + size_string(params_.kernel) +
           ", stride=" + size_string(params_.stride.value_or(params_.kernel)) +
           ", padding=" + size_string(params_.padding) +
           ", count_include_pad=" + (params_.count_include_pad ? "true" : "false");
}

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
    return global_avg_pool2d(x);
}

}  // namespace xgrad::nn

#include "kernels/window2d.hpp"

namespace xgrad::detail {

namespace {

std::string array_string(const std::array<std::int64_t, 2>& pair) {
    return pair_string(pair[0], pair[1]);
}

void check_all(const char* op, const char* what, const std::array<std::int64_t, 2>& pair,
               std::int64_t minimum, const char* requirement) {
    if (pair[0] < minimum || pair[1] < minimum) {
        throw value_error(std::string(op) + ": " + what + " must be " + requirement + ", got " +
                          array_string(pair));
    }
}

std::string size_pair_string(std::size_t height, std::size_t width) {
    return pair_string(static_cast<std::int64_t>(height), static_cast<std::int64_t>(width));
}

}  // namespace

std::string pair_string(std::int64_t height, std::int64_t width) {
    return "(" + std::to_string(height) + ", " + std::to_string(width) + ")";
}

void check_window_params(const char* op, const WindowParams2d& params, WindowKind kind) {
    check_all(op, "kernel size", params.kernel, 1, "positive");
    check_all(op, "stride", params.stride, 1, "positive");
    check_all(op, "dilation", params.dilation, 1, "positive");
    check_all(op, "padding", params.padding, 0, "non-negative");
    if (kind == WindowKind::pooling &&
        (2 * params.padding[0] > params.kernel[0] || 2 * params.padding[1] > params.kernel[1])) {
        throw value_error(std::string(op) + ": padding " + array_string(params.padding) +
                          " must be at most half the kernel size " + array_string(params.kernel));
    }
}

Window2d make_window2d(const char* op, const Shape& input, const WindowParams2d& params,
                       WindowKind kind) {
    if (input.size() != 4) {
        throw shape_error(std::string(op) + ": input must have shape (N, C, H, W), got " +
                          shape_string(input));
    }
    check_window_params(op, params, kind);

    Window2d w;
    w.batch = input[0];
    w.channels = input[1];
    w.height = input[2];
    w.width = input[3];
    w.kernel_h = static_cast<std::size_t>(params.kernel[0]);
    w.kernel_w = static_cast<std::size_t>(params.kernel[1]);
    w.stride_h = static_cast<std::size_t>(params.stride[0]);
    w.stride_w = static_cast<std::size_t>(params.stride[1]);
    w.pad_h = static_cast<std::size_t>(params.padding[0]);
    w.pad_w = static_cast<std::size_t>(params.padding[1]);
    w.dilation_h = static_cast<std::size_t>(params.dilation[0]);
    w.dilation_w = static_cast<std::size_t>(params.dilation[1]);

    const std::size_t span_h = w.dilation_h * (w.kernel_h - 1) + 1;
    const std::size_t span_w = w.dilation_w * (w.kernel_w - 1) + 1;
    const std::size_t padded_h = w.height + 2 * w.pad_h;
    const std::size_t padded_w = w.width + 2 * w.pad_w;
    if (span_h > padded_h || span_w > padded_w) {
        const bool dilated = w.dilation_h != 1 || w.dilation_w != 1;
        const std::string kernel = dilated ? "the kernel " + array_string(params.kernel) +
                                                 " with dilation " + array_string(params.dilation) +
                                                 " spans " + size_pair_string(span_h, span_w)
                                           : "the kernel is " + array_string(params.kernel);
        throw shape_error(std::string(op) +
                          ": the kernel is larger than the padded input: input "
                          "has shape " +
                          shape_string(input) + " and padding " + array_string(params.padding) +
                          ", so the padded height and width are " +
                          size_pair_string(padded_h, padded_w) + ", but " + kernel +
                          "; use a smaller kernel" + (dilated ? " or dilation" : "") +
                          ", or more padding");
    }
    w.out_h = (padded_h - span_h) / w.stride_h + 1;
    w.out_w = (padded_w - span_w) / w.stride_w + 1;
    return w;
}

}  // namespace xgrad::detail

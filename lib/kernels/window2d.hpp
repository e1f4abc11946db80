#pragma once

// Geometry of a two-dimensional window that slides over the height and width
// of an NCHW tensor, shared by conv2d and the pooling ops. Output sizes
// follow PyTorch's floor mode:
//   out = floor((in + 2 padding - dilation (kernel - 1) - 1) / stride) + 1.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "xgrad/op.hpp"

namespace xgrad::detail {

/// Window hyperparameters as (height, width) pairs, before validation.
struct WindowParams2d {
    std::array<std::int64_t, 2> kernel{1, 1};
    std::array<std::int64_t, 2> stride{1, 1};
    std::array<std::int64_t, 2> padding{0, 0};
    std::array<std::int64_t, 2> dilation{1, 1};
};

/// Kind of window, which selects the rules: a pooling window has no dilation,
/// and its padding may be at most half the kernel, as in PyTorch, so that
/// every window overlaps the input.
enum class WindowKind { convolution, pooling };

/// A validated window over an input of shape (batch, channels, height, width).
struct Window2d {
    std::size_t batch = 0;
    std::size_t channels = 0;
    std::size_t height = 0;
    std::size_t width = 0;
    std::size_t kernel_h = 1;
    std::size_t kernel_w = 1;
    std::size_t stride_h = 1;
    std::size_t stride_w = 1;
    std::size_t pad_h = 0;
    std::size_t pad_w = 0;
    std::size_t dilation_h = 1;
    std::size_t dilation_w = 1;
    std::size_t out_h = 0;
    std::size_t out_w = 0;

    std::size_t input_plane() const { return height * width; }
    std::size_t output_plane() const { return out_h * out_w; }
};

/// Throws value_error naming `op` unless kernel, stride and dilation are
/// positive and padding is non-negative. For pooling, the padding must also
/// be at most half the kernel.
void check_window_params(const char* op, const WindowParams2d& params, WindowKind kind);

/// Checks `params` and the input's shape, and returns the window with its
/// output size. Throws shape_error naming `op` when the input is not
/// four-dimensional or the (dilated) kernel is larger than the padded input.
Window2d make_window2d(const char* op, const Shape& input, const WindowParams2d& params,
                       WindowKind kind);

/// Formats a (height, width) pair as "(3, 2)", as shapes are formatted.
std::string pair_string(std::int64_t height, std::int64_t width);

/// The range [first, last) of output positions o whose input position
/// o * stride + offset lies in [0, extent). Positions outside it read padding.
struct ValidRange {
    std::size_t first = 0;
    std::size_t last = 0;
};

inline ValidRange valid_range(std::size_t out, std::size_t stride, std::int64_t offset,
                              std::size_t extent) {
    const auto step = static_cast<std::int64_t>(stride);
    // Smallest o with o * stride + offset >= 0.
    const std::int64_t first = offset >= 0 ? 0 : (-offset + step - 1) / step;
    // Largest o with o * stride + offset < extent, plus one.
    const std::int64_t room = static_cast<std::int64_t>(extent) - offset;
    const std::int64_t last = room <= 0 ? 0 : (room - 1) / step + 1;
    const auto clamp = [out](std::int64_t value) {
        return value < 0 ? std::size_t{0} : std::min(static_cast<std::size_t>(value), out);
    };
    ValidRange range{clamp(first), clamp(last)};
    if (range.last < range.first) {
        range.last = range.first;
    }
    return range;
}

}  // namespace xgrad::detail

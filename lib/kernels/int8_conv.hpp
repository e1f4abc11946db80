#pragma once

// Integer convolutions for quantized_conv2d, on an input that the op has
// already padded with the zero point's code:
//
//   sums[n, i, j, o] = sum over c, p, q of
//       q_w[o, c, p, q] * q_x[n, i * s_h + p * d_h, j * s_w + q * d_w, c]
//
// with q_x uint8 of shape (N, H_padded, W_padded, C_in) (NHWC), q_w int8 of
// shape (C_out, C_in, kH, kW) (OIHW) and int32 sums of shape
// (N, H_out, W_out, C_out) (NHWC). No tap reads outside q_x.

#include <cstddef>
#include <cstdint>

namespace xgrad::detail {

/// Sizes of one integer convolution. height and width are those of the
/// padded input.
struct Int8ConvShape {
    std::size_t batch = 0;
    std::size_t channels = 0;
    std::size_t height = 0;
    std::size_t width = 0;
    std::size_t out_channels = 0;
    std::size_t kernel_h = 0;
    std::size_t kernel_w = 0;
    std::size_t stride_h = 1;
    std::size_t stride_w = 1;
    std::size_t dilation_h = 1;
    std::size_t dilation_w = 1;
    std::size_t out_h = 0;
    std::size_t out_w = 0;

    bool operator==(const Int8ConvShape&) const = default;
};

/// Per sample, gathers each output position's C_in kH kW inputs into a row
/// (in the weight's (c, p, q) order) and multiplies the rows with
/// int8_matmul_reference(). Runs anywhere.
void int8_conv_reference(const Int8ConvShape& shape, const std::uint8_t* q_x,
                         const std::int8_t* q_w, std::int32_t* sums);

/// oneDNN's u8 x s8 -> s32 convolution on the calling thread alone, with a
/// per-thread cache of primitives. Reorders the weight into oneDNN's layout
/// at every call. Returns false, leaving `sums` untouched, when oneDNN
/// cannot create the primitives for the shape. Call it only when
/// onednn_has_int8_dot_product(), as for int8_matmul_onednn().
bool int8_conv_onednn(const Int8ConvShape& shape, const std::uint8_t* q_x, const std::int8_t* q_w,
                      std::int32_t* sums);

}  // namespace xgrad::detail

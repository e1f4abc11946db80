#include "xgrad/ops/conv.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/conv_onednn.hpp"
#include "kernels/gemm.hpp"
#include "kernels/reduce.hpp"
#include "kernels/window2d.hpp"
#include "xgrad/op.hpp"

namespace xgrad {

namespace {

using detail::Window2d;

// Per-thread scratch matrices, kept between calls so that a replayed graph
// allocates nothing after its first step. Ops never call other ops, so one
// buffer per thread, dtype and Slot is never in use twice.
// NOTE: each buffer keeps its largest size until the thread exits: the
// im2col matrix of a chunk (at most kChunkBytes unless a single sample needs
// more) and the chunk's output or output gradient.
enum class Slot { columns, product };

template <class T, Slot slot>
T* scratch_buffer(std::size_t size) {
    thread_local std::vector<T> buffer;
    if (buffer.size() < size) {
        buffer.resize(size);
    }
    return buffer.data();
}

// A chunk contains enough samples to give its matrix products about
// kChunkColumns columns (C_out rows and C_in kH kW inner size). One product
// per chunk replaces per-sample products that are too narrow for OpenBLAS to
// run at full speed. Per sample, the 64 x 49 x 576 products of a 7x7 layer
// at batch 128 took about twice as long as the same work in products 400 to
// 1,600 columns wide (measured on 2 cores with OpenBLAS 0.3.21, see the
// Convolution section of docs/benchmarks.md). Wider products gained little
// there. The chunk's im2col matrix also stays below kChunkBytes.
constexpr std::size_t kChunkColumns = 1024;
constexpr std::size_t kChunkBytes = std::size_t(4) << 20;

// Samples per chunk, at least one.
std::size_t chunk_samples(std::size_t batch, std::size_t plane, std::size_t bytes_per_column) {
    const std::size_t target = kChunkColumns / std::max<std::size_t>(plane, 1);
    const std::size_t fitting = kChunkBytes / std::max<std::size_t>(plane * bytes_per_column, 1);
    return std::clamp<std::size_t>(std::min(target, fitting), 1, std::max<std::size_t>(batch, 1));
}

// A 1x1 kernel with stride 1 and no padding reads each sample (C_in, H, W)
// as its own im2col matrix, so no copy is needed.
bool is_pointwise(const Window2d& w) {
    return w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 &&
           w.pad_h == 0 && w.pad_w == 0;
}

std::int64_t tap_offset(std::size_t tap, std::size_t dilation, std::size_t pad) {
    return static_cast<std::int64_t>(tap * dilation) - static_cast<std::int64_t>(pad);
}

// Returns the input position that output position `o` reads for one kernel
// tap. Callers pass only positions in the valid range, where it is >= 0.
std::size_t input_index(std::size_t o, std::size_t stride, std::int64_t offset) {
    return static_cast<std::size_t>(static_cast<std::int64_t>(o * stride) + offset);
}

// Calls visit(row, input_row, offset, columns) for each output row i of each
// channel c and kernel tap (p, q) of one sample. The sample's im2col matrix
// starts at `matrix` and its rows are `ld` elements apart, so that the
// matrices of several samples can sit side by side. `row` is the part of
// im2col row (c, p, q) that belongs to output row i. `input_row` is the
// input row that tap p reads there, or nullptr when that row lies in the
// padding.
// Output column j reads input column j * stride + offset, which lies inside
// the input for j in `columns`. im2col and col2im share this walk, so they
// stay exact adjoints of each other.
template <class Matrix, class Input, class Visit>
void for_each_tap_row(const Window2d& w, Input* x, Matrix* matrix, std::size_t ld, Visit visit) {
    for (std::size_t c = 0; c < w.channels; ++c) {
        Input* channel = x + c * w.input_plane();
        for (std::size_t p = 0; p < w.kernel_h; ++p) {
            const std::int64_t offset_h = tap_offset(p, w.dilation_h, w.pad_h);
            const detail::ValidRange rows =
                detail::valid_range(w.out_h, w.stride_h, offset_h, w.height);
            for (std::size_t q = 0; q < w.kernel_w; ++q) {
                const std::int64_t offset_w = tap_offset(q, w.dilation_w, w.pad_w);
                const detail::ValidRange columns =
                    detail::valid_range(w.out_w, w.stride_w, offset_w, w.width);
                Matrix* row = matrix + ((c * w.kernel_h + p) * w.kernel_w + q) * ld;
                for (std::size_t i = 0; i < w.out_h; ++i) {
                    Input* input_row = nullptr;
                    if (i >= rows.first && i < rows.last) {
                        input_row = channel + input_index(i, w.stride_h, offset_h) * w.width;
                    }
                    visit(row + i * w.out_w, input_row, offset_w, columns);
                }
            }
        }
    }
}

// With stride 1 and an output as wide as the input (such as a 3x3 kernel
// with padding 1), output position t of the im2col row of tap (p, q) reads
// input position t + shift in its channel, with shift = offset_h W +
// offset_w. The valid outputs of a tap then form one contiguous block,
// apart from the padding columns at the ends of its rows, so one block copy
// per tap replaces a short copy per output row.
bool has_shifted_rows(const Window2d& w) {
    return w.stride_h == 1 && w.stride_w == 1 && w.out_w == w.width;
}

// The part of an im2col row that one block covers under has_shifted_rows:
// positions [begin, end) of the row, where the padding columns of each
// output row (outside `columns`) still need separate treatment.
struct TapBlock {
    std::size_t begin = 0;
    std::size_t end = 0;
    std::int64_t shift = 0;
    detail::ValidRange rows;
    detail::ValidRange columns;
};

// Calls visit(row, channel, block) for each channel c and kernel tap (p, q)
// of one sample, under has_shifted_rows. `row` is im2col row (c, p, q),
// `channel` the input channel, and `block` is empty (begin == end) when the
// tap reads only padding.
template <class Matrix, class Input, class Visit>
void for_each_tap_block(const Window2d& w, Input* x, Matrix* matrix, std::size_t ld, Visit visit) {
    for (std::size_t c = 0; c < w.channels; ++c) {
        for (std::size_t p = 0; p < w.kernel_h; ++p) {
            const std::int64_t offset_h = tap_offset(p, w.dilation_h, w.pad_h);
            for (std::size_t q = 0; q < w.kernel_w; ++q) {
                const std::int64_t offset_w = tap_offset(q, w.dilation_w, w.pad_w);
                TapBlock block;
                block.rows = detail::valid_range(w.out_h, 1, offset_h, w.height);
                block.columns = detail::valid_range(w.out_w, 1, offset_w, w.width);
                block.shift = offset_h * static_cast<std::int64_t>(w.width) + offset_w;
                if (block.rows.first < block.rows.last &&
                    block.columns.first < block.columns.last) {
                    block.begin = block.rows.first * w.out_w + block.columns.first;
                    block.end = (block.rows.last - 1) * w.out_w + block.columns.last;
                }
                visit(matrix + ((c * w.kernel_h + p) * w.kernel_w + q) * ld,
                      x + c * w.input_plane(), block);
            }
        }
    }
}

// Sets the padding columns of each output row inside `block` to zero.
template <class T>
void zero_padding_columns(const Window2d& w, const TapBlock& block, T* row) {
    for (std::size_t i = block.rows.first; i < block.rows.last; ++i) {
        T* output_row = row + i * w.out_w;
        for (std::size_t j = 0; j < block.columns.first; ++j) {
            output_row[j] = T(0);
        }
        for (std::size_t j = block.columns.last; j < w.out_w; ++j) {
            output_row[j] = T(0);
        }
    }
}

// im2col under has_shifted_rows: one block copy per tap. Inside the block,
// the padding columns first receive values of the neighbouring input rows
// and are then set to zero.
template <class T>
void im2col_shifted(const Window2d& w, const T* x, T* columns, std::size_t ld) {
    const std::size_t plane = w.output_plane();
    for_each_tap_block(w, x, columns, ld, [&w, plane](T* row, const T* channel, TapBlock block) {
        std::fill(row, row + block.begin, T(0));
        const T* source = channel + (static_cast<std::int64_t>(block.begin) + block.shift);
        std::copy(source, source + (block.end - block.begin), row + block.begin);
        std::fill(row + block.end, row + plane, T(0));
        zero_padding_columns(w, block, row);
    });
}

// col2im under has_shifted_rows: one block addition per tap. The padding
// columns inside the block are set to zero in `columns` first, so that the
// block adds nothing to the neighbouring input rows.
template <class T>
void col2im_shifted(const Window2d& w, T* columns, std::size_t ld, T* x) {
    for_each_tap_block(w, x, columns, ld, [&w](T* row, T* channel, TapBlock block) {
        zero_padding_columns(w, block, row);
        T* target = channel + (static_cast<std::int64_t>(block.begin) + block.shift);
        const T* source = row + block.begin;
        for (std::size_t t = 0; t < block.end - block.begin; ++t) {
            target[t] += source[t];
        }
    });
}

// Writes sample x (C_in, H, W) as the matrix `columns` with C_in kH kW rows
// and H_out W_out columns, rows `ld` elements apart. Row (c, p, q) contains
// the input value under kernel tap (p, q) at every output position, and zero
// where the tap reads padding.
template <class T>
void im2col(const Window2d& w, const T* x, T* columns, std::size_t ld) {
    if (has_shifted_rows(w)) {
        im2col_shifted(w, x, columns, ld);
        return;
    }
    const std::size_t stride = w.stride_w;
    const std::size_t out_w = w.out_w;
    for_each_tap_row(
        w, x, columns, ld,
        [stride, out_w](T* target, const T* source, std::int64_t offset, detail::ValidRange valid) {
            if (source == nullptr || valid.first == valid.last) {
                std::fill(target, target + out_w, T(0));
                return;
            }
            std::fill(target, target + valid.first, T(0));
            if (stride == 1) {
                const T* first = source + input_index(valid.first, 1, offset);
                std::copy(first, first + (valid.last - valid.first), target + valid.first);
            } else {
                for (std::size_t j = valid.first; j < valid.last; ++j) {
                    target[j] = source[input_index(j, stride, offset)];
                }
            }
            std::fill(target + valid.last, target + out_w, T(0));
        });
}

// The adjoint of im2col: adds each entry of `columns` into the input
// position it was read from. `x` must hold zeros (or values to add to).
// May set the entries of `columns` that im2col reads from padding to zero.
template <class T>
void col2im(const Window2d& w, T* columns, std::size_t ld, T* x) {
    if (has_shifted_rows(w)) {
        col2im_shifted(w, columns, ld, x);
        return;
    }
    const std::size_t stride = w.stride_w;
    for_each_tap_row(
        w, x, columns, ld,
        [stride](const T* source, T* target, std::int64_t offset, detail::ValidRange valid) {
            if (target == nullptr || valid.first == valid.last) {
                return;
            }
            if (stride == 1) {
                T* first = target + input_index(valid.first, 1, offset);
                for (std::size_t j = valid.first; j < valid.last; ++j) {
                    first[j - valid.first] += source[j];
                }
                return;
            }
            for (std::size_t j = valid.first; j < valid.last; ++j) {
                target[input_index(j, stride, offset)] += source[j];
            }
        });
}

// XGRAD_CONV_KERNEL=onednn moves the float32 forward to oneDNN's
// convolution on the calling thread; unset or im2col keeps im2col plus BLAS.
// It is read at every call, so a benchmark can switch it within a process.
bool environment_selects_onednn() {
    const char* value = std::getenv("XGRAD_CONV_KERNEL");
    if (value == nullptr || *value == '\0' || std::strcmp(value, "im2col") == 0) {
        return false;
    }
    if (std::strcmp(value, "onednn") == 0) {
        return true;
    }
    throw value_error(std::string("conv2d: XGRAD_CONV_KERNEL is '") + value +
                      "'; expected 'im2col' or 'onednn'");
}

Window2d conv_window(const OpArgs& args) {
    const Shape& input = args.shape(0);
    const Shape& weight = args.shape(1);
    if (input.size() != 4) {
        throw shape_error("conv2d: input must have shape (N, C_in, H, W), got " +
                          shape_string(input));
    }
    if (weight.size() != 4) {
        throw shape_error("conv2d: weight must have shape (C_out, C_in, kH, kW), got " +
                          shape_string(weight));
    }
    if (input[1] != weight[1]) {
        throw shape_error("conv2d: input has shape " + shape_string(input) +
                          " but weight has shape " + shape_string(weight) +
                          "; the input must have " + std::to_string(weight[1]) +
                          " channels (dimension 1)");
    }
    if (args.size() == 3 && args.shape(2) != Shape{weight[0]}) {
        throw shape_error("conv2d: bias has shape " + shape_string(args.shape(2)) +
                          " but weight has shape " + shape_string(weight) +
                          "; expected bias of shape (" + std::to_string(weight[0]) + ")");
    }
    const auto& ints = args.attrs().ints;
    XGRAD_ASSERT(ints.size() == 6);
    detail::WindowParams2d params;
    params.kernel = {static_cast<std::int64_t>(weight[2]), static_cast<std::int64_t>(weight[3])};
    params.stride = {ints[0], ints[1]};
    params.padding = {ints[2], ints[3]};
    params.dilation = {ints[4], ints[5]};
    const Window2d w =
        detail::make_window2d("conv2d", input, params, detail::WindowKind::convolution);

    // The matrix products pass these sizes to BLAS as 32-bit integers.
    const std::size_t rows = w.channels * w.kernel_h * w.kernel_w;
    for (std::size_t extent : {rows, w.output_plane(), weight[0]}) {
        if (extent > static_cast<std::size_t>(INT_MAX)) {
            throw not_implemented("conv2d: a matrix dimension exceeds the 32-bit BLAS limit");
        }
    }
    return w;
}

// Inputs: x (N, C_in, H, W), weight (C_out, C_in, kH, kW) and optionally
// bias (C_out). attrs.ints contains stride (h, w), padding (h, w) and
// dilation (h, w). The kernel size comes from the weight.
struct Conv2d {
    static constexpr OpInfo kInfo{
        .name = "conv2d", .arity = kVariadic, .saved_inputs = kSaveInput0 | kSaveInput1};

    static OutputSpec infer(const OpArgs& args) {
        if (args.size() < 2 || args.size() > 3) {
            throw value_error("conv2d: expected input, weight and an optional bias, got " +
                              std::to_string(args.size()) + " tensors");
        }
        check_same_dtype(args);
        if (!is_floating(args.dtype(0))) {
            detail::throw_not_floating("conv2d", args.dtype(0));
        }
        const Window2d w = conv_window(args);
        return {Shape{w.batch, args.shape(1)[0], w.out_h, w.out_w}, args.dtype(0)};
    }

    // y_n = W X_n per sample, computed for a chunk of samples at once as
    // W [X_n1 ... X_nk] and then copied from (C_out, k H_out W_out) into NCHW
    // order, with the bias added in that copy.
    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const Window2d w = conv_window(args);
        const std::size_t c_out = args.shape(1)[0];
        const std::size_t k = w.channels * w.kernel_h * w.kernel_w;
        const std::size_t plane = w.output_plane();
        const T* x = args.values<T>(0).data();
        const T* weight = args.values<T>(1).data();
        const T* bias = args.size() == 3 ? args.values<T>(2).data() : nullptr;
        if (is_pointwise(w)) {
            pointwise_forward(w, c_out, x, weight, bias, y.data());
            return;
        }
        // NOTE: the oneDNN kernel is opt-in. Measured on 2 cores shared with
        // another job, it was about 5 times slower than im2col on a 1-channel
        // input and did not clearly speed up a training step. An idle machine
        // may rank them differently (docs/benchmarks.md, "im2col plus BLAS
        // or oneDNN").
        if constexpr (std::is_same_v<T, float>) {
            if (environment_selects_onednn() &&
                detail::conv2d_forward_onednn(w, c_out, x, weight, bias, y.data())) {
                return;
            }
        }

        const std::size_t chunk = chunk_samples(w.batch, plane, k * sizeof(T));
        T* columns = scratch_buffer<T, Slot::columns>(k * chunk * plane);
        T* product = chunk > 1 ? scratch_buffer<T, Slot::product>(c_out * chunk * plane) : nullptr;
        for (std::size_t first = 0; first < w.batch; first += chunk) {
            const std::size_t count = std::min(chunk, w.batch - first);
            const std::size_t ld = count * plane;
            for (std::size_t s = 0; s < count; ++s) {
                im2col(w, x + (first + s) * w.channels * w.input_plane(), columns + s * plane, ld);
            }
            if (count == 1) {
                // The product of a single sample is already in NCHW order.
                T* y_n = y.data() + first * c_out * plane;
                fill_bias(bias, c_out, plane, y_n);
                detail::gemm<T>(false, false, c_out, plane, k, T(1), weight, k, columns, plane,
                                bias != nullptr ? T(1) : T(0), y_n, plane);
                continue;
            }
            detail::gemm<T>(false, false, c_out, ld, k, T(1), weight, k, columns, ld, T(0), product,
                            ld);
            for (std::size_t s = 0; s < count; ++s) {
                for (std::size_t o = 0; o < c_out; ++o) {
                    const T* source = product + o * ld + s * plane;
                    T* target = y.data() + ((first + s) * c_out + o) * plane;
                    const T shift = bias != nullptr ? bias[o] : T(0);
                    for (std::size_t j = 0; j < plane; ++j) {
                        target[j] = source[j] + shift;
                    }
                }
            }
        }
    }

    // Sets y_n (C_out, plane) to the bias broadcast over its rows, or leaves
    // it alone without a bias, for a product that then adds to it.
    template <class T>
    static void fill_bias(const T* bias, std::size_t c_out, std::size_t plane, T* y_n) {
        if (bias == nullptr) {
            return;
        }
        for (std::size_t o = 0; o < c_out; ++o) {
            std::fill(y_n + o * plane, y_n + (o + 1) * plane, bias[o]);
        }
    }

    // A pointwise kernel needs no im2col copy: each sample is its own
    // matrix, so the product goes straight into y_n, starting from the bias.
    template <class T>
    static void pointwise_forward(const Window2d& w, std::size_t c_out, const T* x, const T* weight,
                                  const T* bias, T* y) {
        const std::size_t k = w.channels;
        const std::size_t plane = w.output_plane();
        for (std::size_t n = 0; n < w.batch; ++n) {
            T* y_n = y + n * c_out * plane;
            fill_bias(bias, c_out, plane, y_n);
            detail::gemm<T>(false, false, c_out, plane, k, T(1), weight, k, x + n * k * plane,
                            plane, bias != nullptr ? T(1) : T(0), y_n, plane);
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const Window2d w = conv_window(args);
        auto* grad_x = args.grad<T>(0);
        auto* grad_w = args.grad<T>(1);
        if (grad_x != nullptr || grad_w != nullptr) {
            input_and_weight_grads(args, w, grad_x, grad_w);
        }
        if (args.size() == 3) {
            if (auto* grad_b = args.grad<T>(2)) {
                bias_grad(w, args.grad_output<T>(), *grad_b);
            }
        }
    }

    // dW = sum_n dy_n X_n^T and dX_n = col2im(W^T dy_n), computed for a chunk
    // of samples at once: dy of the chunk is copied into one (C_out,
    // k H_out W_out) matrix D, then dW += D [X_n1 ... X_nk]^T and
    // [dX_n1 ... dX_nk] = W^T D. X_n is rebuilt from the saved input instead
    // of being saved, so the tape keeps no im2col matrices. Either gradient
    // may be null when no input needs it.
    template <class T>
    static void input_and_weight_grads(const VjpArgs& args, const Window2d& w,
                                       xt::xarray<T>* grad_x, xt::xarray<T>* grad_w) {
        const std::size_t c_out = args.shape(1)[0];
        const std::size_t k = w.channels * w.kernel_h * w.kernel_w;
        const std::size_t plane = w.output_plane();
        const T* x = args.values<T>(0).data();
        const T* weight = args.values<T>(1).data();
        const T* grad_y = args.grad_output<T>().data();
        const bool pointwise = is_pointwise(w);
        if (grad_x != nullptr) {
            grad_x->resize(args.shape(0));
            if (!pointwise) {
                grad_x->fill(T(0));  // col2im adds into it
            }
        }
        if (grad_w != nullptr) {
            grad_w->resize(args.shape(1));
            grad_w->fill(T(0));
        }
        if (pointwise) {
            pointwise_grads(w, c_out, x, weight, grad_y, grad_x, grad_w);
            return;
        }

        const std::size_t chunk = chunk_samples(w.batch, plane, k * sizeof(T));
        T* columns = scratch_buffer<T, Slot::columns>(k * chunk * plane);
        T* dy_matrix =
            chunk > 1 ? scratch_buffer<T, Slot::product>(c_out * chunk * plane) : nullptr;
        for (std::size_t first = 0; first < w.batch; first += chunk) {
            const std::size_t count = std::min(chunk, w.batch - first);
            const std::size_t ld = count * plane;
            // The gradient of a single sample is already a (C_out, plane) matrix.
            const T* dy = count == 1 ? grad_y + first * c_out * plane : dy_matrix;
            for (std::size_t s = 0; count > 1 && s < count; ++s) {
                for (std::size_t o = 0; o < c_out; ++o) {
                    const T* source = grad_y + ((first + s) * c_out + o) * plane;
                    std::copy(source, source + plane, dy_matrix + o * ld + s * plane);
                }
            }
            if (grad_w != nullptr) {
                for (std::size_t s = 0; s < count; ++s) {
                    im2col(w, x + (first + s) * w.channels * w.input_plane(), columns + s * plane,
                           ld);
                }
                detail::gemm<T>(false, true, c_out, k, ld, T(1), dy, ld, columns, ld, T(1),
                                grad_w->data(), k);
            }
            if (grad_x != nullptr) {
                detail::gemm<T>(true, false, k, ld, c_out, T(1), weight, k, dy, ld, T(0), columns,
                                ld);
                for (std::size_t s = 0; s < count; ++s) {
                    col2im(w, columns + s * plane, ld,
                           grad_x->data() + (first + s) * w.channels * w.input_plane());
                }
            }
        }
    }

    // Per sample, with X_n the sample itself: dW += dy_n X_n^T and
    // dX_n = W^T dy_n.
    template <class T>
    static void pointwise_grads(const Window2d& w, std::size_t c_out, const T* x, const T* weight,
                                const T* grad_y, xt::xarray<T>* grad_x, xt::xarray<T>* grad_w) {
        const std::size_t k = w.channels;
        const std::size_t plane = w.output_plane();
        for (std::size_t n = 0; n < w.batch; ++n) {
            const T* dy_n = grad_y + n * c_out * plane;
            if (grad_w != nullptr) {
                detail::gemm<T>(false, true, c_out, k, plane, T(1), dy_n, plane, x + n * k * plane,
                                plane, T(1), grad_w->data(), k);
            }
            if (grad_x != nullptr) {
                detail::gemm<T>(true, false, k, plane, c_out, T(1), weight, k, dy_n, plane, T(0),
                                grad_x->data() + n * k * plane, plane);
            }
        }
    }

    // db[o] = sum of dy[:, o, :, :], accumulated in double.
    template <class T>
    static void bias_grad(const Window2d& w, const xt::xarray<T>& grad_y, xt::xarray<T>& grad_b) {
        const std::size_t c_out = grad_y.shape()[1];
        const std::size_t plane = w.output_plane();
        grad_b.resize(Shape{c_out});
        for (std::size_t o = 0; o < c_out; ++o) {
            double total = 0.0;
            for (std::size_t n = 0; n < w.batch; ++n) {
                total += detail::sum_contiguous(grad_y.data() + (n * c_out + o) * plane, plane);
            }
            grad_b.data()[o] = static_cast<T>(total);
        }
    }

    static std::string describe(const OpAttrs& attrs) {
        const auto& ints = attrs.ints;
        return "stride=" + detail::pair_string(ints[0], ints[1]) +
               ", padding=" + detail::pair_string(ints[2], ints[3]) +
               ", dilation=" + detail::pair_string(ints[4], ints[5]);
    }
};

const OpDef& kConv2d = define_op<Conv2d>();

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
              const Conv2dParams& params) {
    if (params.groups < 1) {
        throw value_error("conv2d: groups must be positive, got " + std::to_string(params.groups));
    }
    if (params.groups != 1) {
        throw not_implemented("conv2d: groups = " + std::to_string(params.groups) +
                              " is not supported; only groups = 1 is");
    }
    OpAttrs attrs;
    attrs.ints = {params.stride.first,   params.stride.second,  params.padding.first,
                  params.padding.second, params.dilation.first, params.dilation.second};
    if (bias.defined()) {
        return apply(kConv2d, input, weight, bias, attrs);
    }
    const Tensor* inputs[] = {&input, &weight};
    return apply(kConv2d, std::span<const Tensor* const>(inputs), attrs);
}

}  // namespace xgrad

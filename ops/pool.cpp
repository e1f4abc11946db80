#include "xgrad/ops/pool.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/reduce.hpp"
#include "kernels/window2d.hpp"
#include "xgrad/op.hpp"

namespace xgrad {

namespace {

using detail::Window2d;

// attrs.ints contains kernel (h, w), stride (h, w) and padding (h, w).
Window2d pool_window(const OpArgs& args) {
    const auto& ints = args.attrs().ints;
    XGRAD_ASSERT(ints.size() == 6);
    detail::WindowParams2d params;
    params.kernel = {ints[0], ints[1]};
    params.stride = {ints[2], ints[3]};
    params.padding = {ints[4], ints[5]};
    return detail::make_window2d(args.op(), args.shape(0), params, detail::WindowKind::pooling);
}

OutputSpec pool_spec(const OpArgs& args) {
    if (!is_floating(args.dtype(0))) {
        detail::throw_not_floating(args.op(), args.dtype(0));
    }
    const Window2d w = pool_window(args);
    return {Shape{w.batch, w.channels, w.out_h, w.out_w}, args.dtype(0)};
}

std::string describe_pool(const OpAttrs& attrs) {
    const auto& ints = attrs.ints;
    return "kernel=" + detail::pair_string(ints[0], ints[1]) +
           ", stride=" + detail::pair_string(ints[2], ints[3]) +
           ", padding=" + detail::pair_string(ints[4], ints[5]);
}

// The input rows (or columns) [first, last) that window `o` covers, with the
// padding cut off. The padding limit of half the kernel keeps it non-empty.
struct Span {
    std::size_t first = 0;
    std::size_t last = 0;

    std::size_t size() const { return last - first; }
};

Span window_span(std::size_t o, std::size_t stride, std::size_t pad, std::size_t kernel,
                 std::size_t extent) {
    const std::size_t start = o * stride;  // in padded coordinates
    const Span span{start < pad ? 0 : start - pad, std::min(start + kernel, extent + pad) - pad};
    XGRAD_ASSERT(span.first < span.last);
    return span;
}

// Calls visit(plane, rows, columns, output) for every window of every (n, c)
// plane, where `output` is the window's flat index in the output.
template <class Visit>
void for_each_window(const Window2d& w, Visit visit) {
    std::size_t output = 0;
    for (std::size_t plane = 0; plane < w.batch * w.channels; ++plane) {
        for (std::size_t i = 0; i < w.out_h; ++i) {
            const Span rows = window_span(i, w.stride_h, w.pad_h, w.kernel_h, w.height);
            for (std::size_t j = 0; j < w.out_w; ++j) {
                const Span columns = window_span(j, w.stride_w, w.pad_w, w.kernel_w, w.width);
                visit(plane, rows, columns, output++);
            }
        }
    }
}

// Whether `value` replaces `best` as a window's maximum in a row-major scan.
// A NaN beats every number, and a later NaN beats an earlier one, which
// matches PyTorch's CPU max_pool2d kernel. Written without && or || so that
// the compiler can use selects: on random data a branch here mispredicts
// about every other window.
template <class T>
[[gnu::always_inline]] inline bool beats(T value, T best) {
    return (value > best) | std::isnan(value);
}

// Returns the offset, within its plane, of the first maximum of a window in
// row-major order, under the rule of beats().
template <class T>
std::size_t window_argmax(const T* plane, std::size_t width, Span rows, Span columns) {
    std::size_t best = rows.first * width + columns.first;
    T best_value = plane[best];
    for (std::size_t r = rows.first; r < rows.last; ++r) {
        for (std::size_t c = columns.first; c < columns.last; ++c) {
            const std::size_t at = r * width + c;
            const T value = plane[at];
            const bool take = beats(value, best_value);
            best = take ? at : best;
            best_value = take ? value : best_value;
        }
    }
    return best;
}

// The common 2x2 window with stride 2 and no padding. Its windows tile the
// input, so each input value belongs to at most one window.
bool is_2x2_stride_2(const Window2d& w) {
    return w.kernel_h == 2 && w.kernel_w == 2 && w.stride_h == 2 && w.stride_w == 2 &&
           w.pad_h == 0 && w.pad_w == 0;
}

// The maximum of a 2x2 window under the rule of beats(), scanned in the same
// order as window_argmax. `wins` is 1 << k when the value at row-major
// position k is the maximum. Straight-line selects let the compiler
// vectorize the loops that call it once it is inlined.
template <class T>
struct WindowMax {
    T value;
    int wins;
};

template <class T>
[[gnu::always_inline]] inline WindowMax<T> max_2x2(T top_left, T top_right, T bottom_left,
                                                   T bottom_right) {
    WindowMax<T> best{top_left, 1};
    const bool second = beats(top_right, best.value);
    best.value = second ? top_right : best.value;
    best.wins = second ? 2 : best.wins;
    const bool third = beats(bottom_left, best.value);
    best.value = third ? bottom_left : best.value;
    best.wins = third ? 4 : best.wins;
    const bool fourth = beats(bottom_right, best.value);
    best.value = fourth ? bottom_right : best.value;
    best.wins = fourth ? 8 : best.wins;
    return best;
}

// max_pool2d's forward for is_2x2_stride_2 windows, one output row at a time.
template <class T>
void max_pool_2x2(const Window2d& w, const T* x, T* y) {
    for (std::size_t plane = 0; plane < w.batch * w.channels; ++plane) {
        for (std::size_t i = 0; i < w.out_h; ++i) {
            const T* top = x + plane * w.input_plane() + 2 * i * w.width;
            const T* bottom = top + w.width;
            T* out = y + plane * w.output_plane() + i * w.out_w;
            for (std::size_t j = 0; j < w.out_w; ++j) {
                out[j] =
                    max_2x2(top[2 * j], top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1]).value;
            }
        }
    }
}

// max_pool2d's VJP for is_2x2_stride_2 windows: writes every element of dx
// that a window covers, the window's gradient at its maximum and zero
// elsewhere, so dx needs a zero fill only for an odd height or width.
template <class T>
void max_pool_2x2_vjp(const Window2d& w, const T* x, const T* grad_y, T* dx) {
    const bool uncovered = w.height % 2 != 0 || w.width % 2 != 0;  // a last row or column
    for (std::size_t plane = 0; plane < w.batch * w.channels; ++plane) {
        if (uncovered) {
            std::fill(dx + plane * w.input_plane(), dx + (plane + 1) * w.input_plane(), T(0));
        }
        for (std::size_t i = 0; i < w.out_h; ++i) {
            const std::size_t row = plane * w.input_plane() + 2 * i * w.width;
            const T* top = x + row;
            const T* bottom = top + w.width;
            const T* dy = grad_y + plane * w.output_plane() + i * w.out_w;
            T* dx_top = dx + row;
            T* dx_bottom = dx_top + w.width;
            for (std::size_t j = 0; j < w.out_w; ++j) {
                const int wins =
                    max_2x2(top[2 * j], top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1]).wins;
                const T grad = dy[j];
                dx_top[2 * j] = (wins & 1) != 0 ? grad : T(0);
                dx_top[2 * j + 1] = (wins & 2) != 0 ? grad : T(0);
                dx_bottom[2 * j] = (wins & 4) != 0 ? grad : T(0);
                dx_bottom[2 * j + 1] = (wins & 8) != 0 ? grad : T(0);
            }
        }
    }
}

// attrs: see pool_window.
struct MaxPool2d {
    static constexpr OpInfo kInfo{.name = "max_pool2d", .saved_inputs = kSaveInput0};

    static OutputSpec infer(const OpArgs& args) { return pool_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const Window2d w = pool_window(args);
        const T* x = args.values<T>(0).data();
        T* out = y.data();
        if (is_2x2_stride_2(w)) {
            max_pool_2x2(w, x, out);
            return;
        }
        for_each_window(w, [&w, x, out](std::size_t plane, Span rows, Span columns, std::size_t o) {
            const T* input = x + plane * w.input_plane();
            out[o] = input[window_argmax(input, w.width, rows, columns)];
        });
    }

    // The VJP finds each argmax again in the saved input, so the op stores no
    // index tensor. Forward and VJP run the same search and agree on ties.
    template <class T>
    static void vjp(const VjpArgs& args) {
        const Window2d w = pool_window(args);
        const T* x = args.values<T>(0).data();
        const T* grad_y = args.grad_output<T>().data();
        auto* grad_x = args.grad<T>(0);
        grad_x->resize(args.shape(0));
        T* dx = grad_x->data();
        if (is_2x2_stride_2(w)) {
            max_pool_2x2_vjp(w, x, grad_y, dx);
            return;
        }
        grad_x->fill(T(0));
        for_each_window(
            w, [&w, x, grad_y, dx](std::size_t plane, Span rows, Span columns, std::size_t o) {
                const std::size_t offset = plane * w.input_plane();
                dx[offset + window_argmax(x + offset, w.width, rows, columns)] += grad_y[o];
            });
    }

    static std::string describe(const OpAttrs& attrs) { return describe_pool(attrs); }
};

// attrs: see pool_window; attrs.flag is count_include_pad.
struct AvgPool2d {
    static constexpr OpInfo kInfo{.name = "avg_pool2d"};

    static OutputSpec infer(const OpArgs& args) { return pool_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const Window2d w = pool_window(args);
        const bool count_include_pad = args.attrs().flag;
        const T* x = args.values<T>(0).data();
        T* out = y.data();
        for_each_window(w, [&w, count_include_pad, x, out](std::size_t plane, Span rows,
                                                           Span columns, std::size_t o) {
            const T* input = x + plane * w.input_plane();
            T total = T(0);
            for (std::size_t r = rows.first; r < rows.last; ++r) {
                for (std::size_t c = columns.first; c < columns.last; ++c) {
                    total += input[r * w.width + c];
                }
            }
            out[o] = total / divisor<T>(w, count_include_pad, rows, columns);
        });
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const Window2d w = pool_window(args);
        const bool count_include_pad = args.attrs().flag;
        const T* grad_y = args.grad_output<T>().data();
        auto* grad_x = args.grad<T>(0);
        grad_x->resize(args.shape(0));
        grad_x->fill(T(0));
        T* dx = grad_x->data();
        for_each_window(w, [&w, count_include_pad, grad_y, dx](std::size_t plane, Span rows,
                                                               Span columns, std::size_t o) {
            T* input = dx + plane * w.input_plane();
            const T share = grad_y[o] / divisor<T>(w, count_include_pad, rows, columns);
            for (std::size_t r = rows.first; r < rows.last; ++r) {
                for (std::size_t c = columns.first; c < columns.last; ++c) {
                    input[r * w.width + c] += share;
                }
            }
        });
    }

    // In floor mode every window lies inside the padded input, so counting
    // the padding gives the full kernel area, as in PyTorch.
    template <class T>
    static T divisor(const Window2d& w, bool count_include_pad, Span rows, Span columns) {
        const std::size_t count =
            count_include_pad ? w.kernel_h * w.kernel_w : rows.size() * columns.size();
        return static_cast<T>(count);
    }

    static std::string describe(const OpAttrs& attrs) {
        return describe_pool(attrs) + ", count_include_pad=" + (attrs.flag ? "true" : "false");
    }
};

struct GlobalAvgPool2d {
    static constexpr OpInfo kInfo{.name = "global_avg_pool2d"};

    static OutputSpec infer(const OpArgs& args) {
        if (!is_floating(args.dtype(0))) {
            detail::throw_not_floating("global_avg_pool2d", args.dtype(0));
        }
        const Shape& x = args.shape(0);
        if (x.size() != 4) {
            throw shape_error("global_avg_pool2d: input must have shape (N, C, H, W), got " +
                              shape_string(x));
        }
        if (x[2] * x[3] == 0) {
            throw shape_error("global_avg_pool2d: input has shape " + shape_string(x) +
                              "; its height and width must be positive");
        }
        return {Shape{x[0], x[1]}, args.dtype(0)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto& x = args.values<T>(0);
        const std::size_t area = x.shape()[2] * x.shape()[3];
        const T* input = x.data();
        for (std::size_t plane = 0; plane < y.size(); ++plane) {
            const double total = detail::sum_contiguous(input + plane * area, area);
            y.data()[plane] = static_cast<T>(total / static_cast<double>(area));
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const Shape& shape = args.shape(0);
        const std::size_t area = shape[2] * shape[3];
        const T* grad_y = args.grad_output<T>().data();
        auto* grad_x = args.grad<T>(0);
        grad_x->resize(shape);
        T* dx = grad_x->data();
        for (std::size_t plane = 0; plane < shape[0] * shape[1]; ++plane) {
            std::fill(dx + plane * area, dx + (plane + 1) * area,
                      grad_y[plane] / static_cast<T>(area));
        }
    }
};

const OpDef& kMaxPool2d = define_op<MaxPool2d>();
const OpDef& kAvgPool2d = define_op<AvgPool2d>();
const OpDef& kGlobalAvgPool2d = define_op<GlobalAvgPool2d>();

OpAttrs pool_attrs(const Size2d& kernel, const std::optional<Size2d>& stride,
                   const Size2d& padding) {
    const Size2d step = stride.value_or(kernel);
    OpAttrs attrs;
    attrs.ints = {kernel.first, kernel.second, step.first,
                  step.second,  padding.first, padding.second};
    return attrs;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const MaxPool2dParams& params) {
    return apply(kMaxPool2d, x, pool_attrs(params.kernel, params.stride, params.padding));
}

Tensor avg_pool2d(const Tensor& x, const AvgPool2dParams& params) {
    OpAttrs attrs = pool_attrs(params.kernel, params.stride, params.padding);
    attrs.flag = params.count_include_pad;
    return apply(kAvgPool2d, x, attrs);
}

Tensor global_avg_pool2d(const Tensor& x) {
    return apply(kGlobalAvgPool2d, x);
}

}  // namespace xgrad

#include "xgrad/ops/index.hpp"

#include <algorithm>

#include "xgrad/op.hpp"

namespace xgrad {

namespace {

// Sizes around an axis of a row-major tensor: `outer` blocks, each holding
// `extent` rows of `inner` contiguous elements.
struct AxisSplit {
    std::size_t outer = 1;
    std::size_t extent = 1;
    std::size_t inner = 1;
};

AxisSplit split_at(const Shape& shape, std::size_t axis) {
    AxisSplit split;
    for (std::size_t d = 0; d < axis; ++d) {
        split.outer *= shape[d];
    }
    split.extent = shape[axis];
    for (std::size_t d = axis + 1; d < shape.size(); ++d) {
        split.inner *= shape[d];
    }
    return split;
}

void check_index_tensor(const OpArgs& args, std::size_t input) {
    if (args.dtype(input) != Dtype::int64) {
        throw value_error(std::string(args.op()) + ": the index must be an int64 tensor, got " +
                          dtype_name(args.dtype(input)));
    }
}

void check_index_range(const char* op, const xt::xarray<std::int64_t>& index, std::size_t extent) {
    for (std::size_t i = 0; i < index.size(); ++i) {
        const std::int64_t value = index.flat(i);
        if (value < 0 || static_cast<std::size_t>(value) >= extent) {
            throw value_error(std::string(op) + ": index " + std::to_string(value) + " at position " +
                              std::to_string(i) + " is out of range for an axis of extent " +
                              std::to_string(extent));
        }
    }
}

// attrs.ints = {axis, start, stop, step}, resolved by slice(): 0 <= start,
// stop <= extent and step > 0.
struct Slice {
    static constexpr OpInfo kInfo{.name = "slice", .supports_int64 = true};

    static std::size_t count(const OpAttrs& attrs) {
        const std::int64_t start = attrs.ints[1];
        const std::int64_t stop = attrs.ints[2];
        const std::int64_t step = attrs.ints[3];
        // (stop - start - 1) / step + 1 cannot overflow, unlike the rounded-up
        // (stop - start + step - 1) / step for a huge step.
        return stop > start ? static_cast<std::size_t>((stop - start - 1) / step + 1) : 0;
    }

    static OutputSpec infer(const OpArgs& args) {
        Shape out = args.shape(0);
        out[static_cast<std::size_t>(args.attrs().ints[0])] = count(args.attrs());
        return {out, args.dtype(0)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto& attrs = args.attrs();
        const AxisSplit split = split_at(args.shape(0), static_cast<std::size_t>(attrs.ints[0]));
        const std::size_t selected = count(attrs);
        const T* x = args.values<T>(0).data();
        for (std::size_t o = 0; o < split.outer; ++o) {
            for (std::size_t j = 0; j < selected; ++j) {
                const auto row = static_cast<std::size_t>(attrs.ints[1] + static_cast<std::int64_t>(j) * attrs.ints[3]);
                std::copy_n(x + (o * split.extent + row) * split.inner, split.inner,
                            y.data() + (o * selected + j) * split.inner);
            }
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& attrs = args.attrs();
        const AxisSplit split = split_at(args.shape(0), static_cast<std::size_t>(attrs.ints[0]));
        const std::size_t selected = count(attrs);
        const T* grad_out = args.grad_output<T>().data();
        xt::xarray<T>& grad_x = *args.grad<T>(0);
        grad_x.resize(args.shape(0));
        grad_x.fill(T(0));
        for (std::size_t o = 0; o < split.outer; ++o) {
            for (std::size_t j = 0; j < selected; ++j) {
                const auto row = static_cast<std::size_t>(attrs.ints[1] + static_cast<std::int64_t>(j) * attrs.ints[3]);
                std::copy_n(grad_out + (o * selected + j) * split.inner, split.inner,
                            grad_x.data() + (o * split.extent + row) * split.inner);
            }
        }
    }

    static std::string describe(const OpAttrs& attrs) {
        return "axis=" + std::to_string(attrs.ints[0]) + ", start=" + std::to_string(attrs.ints[1]) +
               ", stop=" + std::to_string(attrs.ints[2]) + ", step=" + std::to_string(attrs.ints[3]);
    }
};

// Inputs: x, index. attrs.ints[0] is the normalised axis.
struct IndexSelect {
    static constexpr OpInfo kInfo{
        .name = "index_select", .arity = 2, .saved_inputs = kSaveInput1, .supports_int64 = true};

    static OutputSpec infer(const OpArgs& args) {
        check_index_tensor(args, 1);
        if (args.shape(1).size() != 1) {
            throw shape_error("index_select: the index must be one-dimensional, got shape " +
                              shape_string(args.shape(1)));
        }
        const auto axis = static_cast<std::size_t>(args.attrs().ints[0]);
        check_index_range("index_select", args.values<std::int64_t>(1), args.shape(0)[axis]);
        Shape out = args.shape(0);
        out[axis] = args.shape(1)[0];
        return {out, args.dtype(0)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const AxisSplit split = split_at(args.shape(0), static_cast<std::size_t>(args.attrs().ints[0]));
        const auto& index = args.values<std::int64_t>(1);
        const T* x = args.values<T>(0).data();
        for (std::size_t o = 0; o < split.outer; ++o) {
            for (std::size_t j = 0; j < index.size(); ++j) {
                const auto row = static_cast<std::size_t>(index.flat(j));
                std::copy_n(x + (o * split.extent + row) * split.inner, split.inner,
                            y.data() + (o * index.size() + j) * split.inner);
            }
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const AxisSplit split = split_at(args.shape(0), static_cast<std::size_t>(args.attrs().ints[0]));
        const auto& index = args.values<std::int64_t>(1);
        const T* grad_out = args.grad_output<T>().data();
        xt::xarray<T>& grad_x = *args.grad<T>(0);
        grad_x.resize(args.shape(0));
        grad_x.fill(T(0));
        for (std::size_t o = 0; o < split.outer; ++o) {
            for (std::size_t j = 0; j < index.size(); ++j) {
                const auto row = static_cast<std::size_t>(index.flat(j));
                T* target = grad_x.data() + (o * split.extent + row) * split.inner;
                const T* source = grad_out + (o * index.size() + j) * split.inner;
                for (std::size_t i = 0; i < split.inner; ++i) {
                    target[i] += source[i];
                }
            }
        }
    }

    static std::string describe(const OpAttrs& attrs) { return "axis=" + std::to_string(attrs.ints[0]); }
};

// Inputs: x, index. attrs.ints[0] is the normalised axis.
struct Gather {
    static constexpr OpInfo kInfo{
        .name = "gather", .arity = 2, .saved_inputs = kSaveInput1, .supports_int64 = true};

    static OutputSpec infer(const OpArgs& args) {
        check_index_tensor(args, 1);
        const Shape& shape = args.shape(0);
        const Shape& index_shape = args.shape(1);
        const auto axis = static_cast<std::size_t>(args.attrs().ints[0]);
        bool fits = index_shape.size() == shape.size();
        for (std::size_t d = 0; fits && d < shape.size(); ++d) {
            fits = d == axis || index_shape[d] <= shape[d];
        }
        if (!fits) {
            throw shape_error("gather: the index has shape " + shape_string(index_shape) +
                              ", but x has shape " + shape_string(shape) +
                              "; the index needs x's rank and no larger extent outside axis " +
                              std::to_string(axis));
        }
        check_index_range("gather", args.values<std::int64_t>(1), shape[axis]);
        return {index_shape, args.dtype(0)};
    }

    // Calls visit(position in index, offset in x) for every index element.
    template <class Visit>
    static void for_each_offset(const OpArgs& args, Visit visit) {
        const Shape& shape = args.shape(0);
        const auto& index = args.values<std::int64_t>(1);
        const Shape& index_shape = index.shape();
        const auto axis = static_cast<std::size_t>(args.attrs().ints[0]);
        const std::size_t rank = shape.size();
        Shape strides(rank);
        std::size_t stride = 1;
        for (std::size_t d = rank; d-- > 0;) {
            strides[d] = stride;
            stride *= shape[d];
        }
        Shape position(rank, 0);
        std::size_t base = 0;  // offset in x of `position`, without the axis term
        for (std::size_t i = 0; i < index.size(); ++i) {
            visit(i, base + static_cast<std::size_t>(index.flat(i)) * strides[axis]);
            for (std::size_t d = rank; d-- > 0;) {
                const std::size_t step = d == axis ? 0 : strides[d];
                base += step;
                if (++position[d] < index_shape[d]) {
                    break;
                }
                base -= step * index_shape[d];
                position[d] = 0;
            }
        }
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const T* x = args.values<T>(0).data();
        for_each_offset(args, [&](std::size_t i, std::size_t offset) { y.flat(i) = x[offset]; });
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& grad_out = args.grad_output<T>();
        xt::xarray<T>& grad_x = *args.grad<T>(0);
        grad_x.resize(args.shape(0));
        grad_x.fill(T(0));
        for_each_offset(args, [&](std::size_t i, std::size_t offset) {
            grad_x.data()[offset] += grad_out.flat(i);
        });
    }

    static std::string describe(const OpAttrs& attrs) { return "axis=" + std::to_string(attrs.ints[0]); }
};

const OpDef& kSlice = define_op<Slice>();
const OpDef& kIndexSelect = define_op<IndexSelect>();
const OpDef& kGather = define_op<Gather>();

OpAttrs axis_attrs(const char* op, const Tensor& x, std::int64_t axis) {
    if (!x.defined()) {
        throw value_error(std::string(op) + ": input 0 is an undefined tensor");
    }
    OpAttrs attrs;
    attrs.ints.push_back(static_cast<std::int64_t>(normalize_axis(op, axis, x.dim())));
    return attrs;
}

}  // namespace

Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t stop,
             std::int64_t step) {
    OpAttrs attrs = axis_attrs("slice", x, axis);
    if (step <= 0) {
        throw value_error("slice: step must be positive, got " + std::to_string(step));
    }
    const auto extent = static_cast<std::int64_t>(x.shape()[static_cast<std::size_t>(attrs.ints[0])]);
    auto resolve = [extent](std::int64_t bound) {
        if (bound < 0) {
            bound += extent;
        }
        return std::clamp<std::int64_t>(bound, 0, extent);
    };
    attrs.ints.push_back(resolve(start));
    attrs.ints.push_back(resolve(stop));
    attrs.ints.push_back(step);
    return apply(kSlice, x, attrs);
}

Tensor index_select(const Tensor& x, std::int64_t axis, const Tensor& index) {
    return apply(kIndexSelect, x, index, axis_attrs("index_select", x, axis));
}

Tensor gather(const Tensor& x, std::int64_t axis, const Tensor& index) {
    return apply(kGather, x, index, axis_attrs("gather", x, axis));
}

}  // namespace xgrad

#include "xgrad/ops/shape.hpp"

#include <algorithm>
#include <vector>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xnoalias.hpp>

#include "xgrad/op.hpp"

namespace xgrad {

namespace {

std::size_t product(const Shape& shape, std::size_t begin, std::size_t end) {
    std::size_t result = 1;
    for (std::size_t d = begin; d < end; ++d) {
        result *= shape[d];
    }
    return result;
}

std::string describe_ints(const char* name, const OpAttrs& attrs) {
    std::string text = std::string(name) + "=(";
    for (std::size_t i = 0; i < attrs.ints.size(); ++i) {
        text += (i > 0 ? ", " : "") + std::to_string(attrs.ints[i]);
    }
    return text + ")";
}

// attrs.shape is the target shape, with any -1 already resolved.
struct Reshape {
    static constexpr OpInfo kInfo{.name = "reshape", .supports_int64 = true};

    static OutputSpec infer(const OpArgs& args) {
        const Shape& target = args.attrs().shape;
        if (shape_size(target) != shape_size(args.shape(0))) {
            throw shape_error("reshape: cannot reshape a tensor of shape " +
                              shape_string(args.shape(0)) + " (" +
                              std::to_string(shape_size(args.shape(0))) + " elements) into shape " +
                              shape_string(target) + " (" + std::to_string(shape_size(target)) +
                              " elements)");
        }
        return {target, args.dtype(0)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto& x = args.values<T>(0);
        std::copy(x.data(), x.data() + x.size(), y.data());
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        xt::xarray<T>& grad_x = *args.grad<T>(0);
        grad_x = args.grad_output<T>();
        grad_x.reshape(args.shape(0));
    }

    static std::string describe(const OpAttrs& attrs) { return "shape=" + shape_string(attrs.shape); }
};

// attrs.ints is the permutation, normalised to non-negative axes.
struct Permute {
    static constexpr OpInfo kInfo{.name = "permute", .supports_int64 = true};

    static OutputSpec infer(const OpArgs& args) {
        const Shape& shape = args.shape(0);
        const auto& axes = args.attrs().ints;
        std::vector<bool> seen(shape.size(), false);
        if (axes.size() != shape.size()) {
            throw value_error("permute: expected " + std::to_string(shape.size()) +
                              " axes for a tensor of shape " + shape_string(shape) + ", got " +
                              std::to_string(axes.size()));
        }
        Shape out(shape.size());
        for (std::size_t i = 0; i < axes.size(); ++i) {
            const auto axis = static_cast<std::size_t>(axes[i]);
            if (axes[i] < 0 || axis >= shape.size()) {
                throw value_error("permute: axis " + std::to_string(axes[i]) +
                                  " is out of range for a tensor of shape " + shape_string(shape));
            }
            if (seen[axis]) {
                throw value_error("permute: axis " + std::to_string(axis) +
                                  " appears twice; the axes must be a permutation");
            }
            seen[axis] = true;
            out[i] = shape[axis];
        }
        return {out, args.dtype(0)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = xt::transpose(args.values<T>(0), permutation(args.attrs()));
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const Shape forward_axes = permutation(args.attrs());
        Shape inverse(forward_axes.size());
        for (std::size_t i = 0; i < forward_axes.size(); ++i) {
            inverse[forward_axes[i]] = i;
        }
        xt::noalias(*args.grad<T>(0)) = xt::transpose(args.grad_output<T>(), inverse);
    }

    static Shape permutation(const OpAttrs& attrs) {
        return Shape(attrs.ints.begin(), attrs.ints.end());
    }

    static std::string describe(const OpAttrs& attrs) { return describe_ints("axes", attrs); }
};

// attrs.ints[0] is the normalised axis. Copies slabs: for each index over the
// dimensions before the axis, input i contributes extent_i * inner elements.
struct Concat {
    static constexpr OpInfo kInfo{.name = "concat", .arity = kVariadic, .supports_int64 = true};

    static OutputSpec infer(const OpArgs& args) {
        check_same_dtype(args);
        const auto axis = static_cast<std::size_t>(args.attrs().ints[0]);
        Shape out = args.shape(0);
        for (std::size_t i = 1; i < args.size(); ++i) {
            const Shape& shape = args.shape(i);
            bool fits = shape.size() == out.size();
            for (std::size_t d = 0; fits && d < shape.size(); ++d) {
                fits = d == axis || shape[d] == out[d];
            }
            if (!fits) {
                throw shape_error("concat: input " + std::to_string(i) + " has shape " +
                                  shape_string(shape) + ", which differs from input 0's shape " +
                                  shape_string(args.shape(0)) + " outside axis " +
                                  std::to_string(axis));
            }
            out[axis] += shape[axis];
        }
        return {out, args.dtype(0)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto axis = static_cast<std::size_t>(args.attrs().ints[0]);
        const std::size_t outer = product(y.shape(), 0, axis);
        const std::size_t row = product(y.shape(), axis, y.dimension());
        std::size_t column = 0;
        for (std::size_t i = 0; i < args.size(); ++i) {
            const auto& x = args.values<T>(i);
            const std::size_t slab = product(x.shape(), axis, x.dimension());
            for (std::size_t o = 0; o < outer; ++o) {
                std::copy_n(x.data() + o * slab, slab, y.data() + o * row + column);
            }
            column += slab;
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto axis = static_cast<std::size_t>(args.attrs().ints[0]);
        const auto& grad_out = args.grad_output<T>();
        const std::size_t outer = product(grad_out.shape(), 0, axis);
        const std::size_t row = product(grad_out.shape(), axis, grad_out.dimension());
        std::size_t column = 0;
        for (std::size_t i = 0; i < args.size(); ++i) {
            const Shape& shape = args.shape(i);
            const std::size_t slab = product(shape, axis, shape.size());
            if (auto* grad_x = args.grad<T>(i)) {
                grad_x->resize(shape);
                for (std::size_t o = 0; o < outer; ++o) {
                    std::copy_n(grad_out.data() + o * row + column, slab, grad_x->data() + o * slab);
                }
            }
            column += slab;
        }
    }

    static std::string describe(const OpAttrs& attrs) { return "axis=" + std::to_string(attrs.ints[0]); }
};

// attrs.ints[0] is the normalised position of the new axis.
struct Stack {
    static constexpr OpInfo kInfo{.name = "stack", .arity = kVariadic, .supports_int64 = true};

    static OutputSpec infer(const OpArgs& args) {
        check_same_dtype(args);
        for (std::size_t i = 1; i < args.size(); ++i) {
            if (args.shape(i) != args.shape(0)) {
                throw shape_error("stack: input " + std::to_string(i) + " has shape " +
                                  shape_string(args.shape(i)) + ", but input 0 has shape " +
                                  shape_string(args.shape(0)) + "; stacked tensors need one shape");
            }
        }
        const Shape& shape = args.shape(0);
        const auto axis = static_cast<std::size_t>(args.attrs().ints[0]);
        Shape out(shape.begin(), shape.begin() + static_cast<std::ptrdiff_t>(axis));
        out.push_back(args.size());
        out.insert(out.end(), shape.begin() + static_cast<std::ptrdiff_t>(axis), shape.end());
        return {out, args.dtype(0)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto axis = static_cast<std::size_t>(args.attrs().ints[0]);
        const Shape& shape = args.shape(0);
        const std::size_t outer = product(shape, 0, axis);
        const std::size_t inner = product(shape, axis, shape.size());
        const std::size_t count = args.size();
        for (std::size_t i = 0; i < count; ++i) {
            const T* x = args.values<T>(i).data();
            for (std::size_t o = 0; o < outer; ++o) {
                std::copy_n(x + o * inner, inner, y.data() + (o * count + i) * inner);
            }
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto axis = static_cast<std::size_t>(args.attrs().ints[0]);
        const Shape& shape = args.shape(0);
        const std::size_t outer = product(shape, 0, axis);
        const std::size_t inner = product(shape, axis, shape.size());
        const std::size_t count = args.size();
        const T* grad_out = args.grad_output<T>().data();
        for (std::size_t i = 0; i < count; ++i) {
            if (auto* grad_x = args.grad<T>(i)) {
                grad_x->resize(shape);
                for (std::size_t o = 0; o < outer; ++o) {
                    std::copy_n(grad_out + (o * count + i) * inner, inner, grad_x->data() + o * inner);
                }
            }
        }
    }

    static std::string describe(const OpAttrs& attrs) { return "axis=" + std::to_string(attrs.ints[0]); }
};

const OpDef& kReshape = define_op<Reshape>();
const OpDef& kPermute = define_op<Permute>();
const OpDef& kConcat = define_op<Concat>();
const OpDef& kStack = define_op<Stack>();

}  // namespace

Tensor reshape(const Tensor& x, const Axes& shape) {
    check_defined("reshape", x);
    const std::size_t total = x.numel();
    std::size_t known = 1;
    std::ptrdiff_t inferred = -1;
    OpAttrs attrs;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == -1 && inferred < 0) {
            inferred = static_cast<std::ptrdiff_t>(d);
            attrs.shape.push_back(1);
            continue;
        }
        if (shape[d] < 0) {
            throw value_error("reshape: invalid extent " + std::to_string(shape[d]) +
                              " at dimension " + std::to_string(d) +
                              "; extents must be non-negative, with at most one -1");
        }
        known *= static_cast<std::size_t>(shape[d]);
        attrs.shape.push_back(static_cast<std::size_t>(shape[d]));
    }
    if (inferred >= 0) {
        if (known == 0 || total % known != 0) {
            throw shape_error("reshape: cannot infer the -1 extent: " + std::to_string(total) +
                              " elements of shape " + shape_string(x.shape()) +
                              " do not divide into the other extents (product " +
                              std::to_string(known) + ")");
        }
        attrs.shape[static_cast<std::size_t>(inferred)] = total / known;
    }
    return apply(kReshape, x, attrs);
}

Tensor flatten(const Tensor& x, std::int64_t start_axis) {
    check_defined("flatten", x);
    const Shape& shape = x.shape();
    if (shape.empty()) {
        return reshape(x, {1});
    }
    const std::size_t start = normalize_axis("flatten", start_axis, shape.size());
    Axes target;
    for (std::size_t d = 0; d < start; ++d) {
        target.push_back(static_cast<std::int64_t>(shape[d]));
    }
    target.push_back(static_cast<std::int64_t>(product(shape, start, shape.size())));
    return reshape(x, target);
}

Tensor permute(const Tensor& x, const Axes& axes) {
    check_defined("permute", x);
    OpAttrs attrs;
    for (std::int64_t axis : axes) {
        attrs.ints.push_back(static_cast<std::int64_t>(normalize_axis("permute", axis, x.dim())));
    }
    return apply(kPermute, x, attrs);
}

Tensor transpose(const Tensor& x, std::int64_t axis0, std::int64_t axis1) {
    check_defined("transpose", x);
    const std::size_t rank = x.dim();
    const std::size_t first = normalize_axis("transpose", axis0, rank);
    const std::size_t second = normalize_axis("transpose", axis1, rank);
    Axes axes;
    for (std::size_t d = 0; d < rank; ++d) {
        axes.push_back(static_cast<std::int64_t>(d));
    }
    std::swap(axes[first], axes[second]);
    return permute(x, axes);
}

Tensor concat(const std::vector<Tensor>& tensors, std::int64_t axis) {
    if (tensors.empty() || !tensors[0].defined()) {
        throw value_error("concat: expected at least one defined tensor");
    }
    if (tensors[0].dim() == 0) {
        throw shape_error("concat: zero-dimensional tensors cannot be concatenated; use stack");
    }
    OpAttrs attrs;
    attrs.ints.push_back(static_cast<std::int64_t>(normalize_axis("concat", axis, tensors[0].dim())));
    return apply(kConcat, tensors, attrs);
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t axis) {
    if (tensors.empty() || !tensors[0].defined()) {
        throw value_error("stack: expected at least one defined tensor");
    }
    OpAttrs attrs;
    attrs.ints.push_back(
        static_cast<std::int64_t>(normalize_axis("stack", axis, tensors[0].dim() + 1)));
    return apply(kStack, tensors, attrs);
}

}  // namespace xgrad

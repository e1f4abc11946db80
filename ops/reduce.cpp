#include "xgrad/ops/reduce.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <xtensor/xbroadcast.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

#include "kernels/reduce.hpp"
#include "xgrad/op.hpp"

namespace xgrad {

namespace {

// attrs.ints holds the reduced axes, normalised, sorted and unique (every
// axis when the caller passed none); attrs.flag is keepdims.

Shape kept_shape(const OpArgs& args) {
    return detail::keepdims_shape(args.shape(0), args.attrs().ints);
}

OutputSpec reduce_spec(const OpArgs& args) {
    if (!is_floating(args.dtype(0))) {
        detail::throw_not_floating(args.op(), args.dtype(0));
    }
    const Shape& shape = args.shape(0);
    if (args.attrs().flag) {
        return {kept_shape(args), args.dtype(0)};
    }
    Shape reduced;
    const auto& axes = args.attrs().ints;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (std::find(axes.begin(), axes.end(), static_cast<std::int64_t>(d)) == axes.end()) {
            reduced.push_back(shape[d]);
        }
    }
    return {reduced, args.dtype(0)};
}

std::size_t reduced_count(const OpArgs& args) {
    std::size_t count = 1;
    for (std::int64_t axis : args.attrs().ints) {
        count *= args.shape(0)[static_cast<std::size_t>(axis)];
    }
    return count;
}

// Reshapes a reduction's output (or its gradient) to the keepdims shape, so
// that it broadcasts against the input.
template <class T>
xt::xarray<T> as_kept(const xt::xarray<T>& values, const Shape& kept) {
    xt::xarray<T> reshaped = values;
    reshaped.reshape(kept);
    return reshaped;
}

std::string describe_reduction(const OpAttrs& attrs) {
    std::string text = "axes=(";
    for (std::size_t i = 0; i < attrs.ints.size(); ++i) {
        text += (i > 0 ? ", " : "") + std::to_string(attrs.ints[i]);
    }
    return text + ")" + (attrs.flag ? ", keepdims" : "");
}

struct Sum {
    static constexpr OpInfo kInfo{.name = "sum"};

    static OutputSpec infer(const OpArgs& args) { return reduce_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const Shape& shape = y.shape();
        const Shape out_shape(shape.begin(), shape.end());
        detail::sum_into(args.values<T>(0), kept_shape(args), y);
        y.reshape(out_shape);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto kept = as_kept(args.grad_output<T>(), kept_shape(args));
        xt::noalias(*args.grad<T>(0)) = xt::broadcast(kept, args.shape(0));
    }

    static std::string describe(const OpAttrs& attrs) { return describe_reduction(attrs); }
};

struct Mean {
    static constexpr OpInfo kInfo{.name = "mean"};

    static OutputSpec infer(const OpArgs& args) { return reduce_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const Shape out_shape(y.shape().begin(), y.shape().end());
        detail::sum_into(args.values<T>(0), kept_shape(args), y);
        y /= static_cast<T>(reduced_count(args));
        y.reshape(out_shape);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto kept = as_kept(args.grad_output<T>(), kept_shape(args));
        const auto count = static_cast<T>(reduced_count(args));
        xt::noalias(*args.grad<T>(0)) = xt::broadcast(kept / count, args.shape(0));
    }

    static std::string describe(const OpAttrs& attrs) { return describe_reduction(attrs); }
};

// max (kIsMax) and min: ties share the gradient evenly.
template <bool kIsMax>
struct Extreme {
    static constexpr OpInfo kInfo{.name = kIsMax ? "max" : "min",
                                  .saved_inputs = kSaveInput0,
                                  .saves_output = true};

    static OutputSpec infer(const OpArgs& args) {
        if (reduced_count(args) == 0) {
            throw value_error(std::string(args.op()) + ": cannot reduce over zero elements (input "
                                                       "shape " + shape_string(args.shape(0)) + ")");
        }
        return reduce_spec(args);
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const Shape out_shape(y.shape().begin(), y.shape().end());
        constexpr T kInit = kIsMax ? -std::numeric_limits<T>::infinity()
                                   : std::numeric_limits<T>::infinity();
        // NaN propagates: once the accumulator is NaN it stays NaN.
        detail::reduce_into<T>(args.values<T>(0), kept_shape(args), y, kInit, [](T best, T x) {
            if (std::isnan(best) || std::isnan(x)) {
                return std::numeric_limits<T>::quiet_NaN();
            }
            return (kIsMax ? x > best : x < best) ? x : best;
        });
        y.reshape(out_shape);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const Shape kept = kept_shape(args);
        const auto& x = args.values<T>(0);
        const xt::xarray<T> winners = xt::cast<T>(xt::equal(x, as_kept(args.output<T>(), kept)));
        xt::xarray<T> ties;
        detail::sum_into(winners, kept, ties);
        xt::noalias(*args.grad<T>(0)) = winners * (as_kept(args.grad_output<T>(), kept) / ties);
    }

    static std::string describe(const OpAttrs& attrs) { return describe_reduction(attrs); }
};

const OpDef& kSum = define_op<Sum>();
const OpDef& kMean = define_op<Mean>();
const OpDef& kMax = define_op<Extreme<true>>();
const OpDef& kMin = define_op<Extreme<false>>();

Tensor reduce(const OpDef& op, const Tensor& x, const Axes& axes, bool keepdims) {
    check_defined(op.info.name, x);
    OpAttrs attrs;
    attrs.flag = keepdims;
    const std::size_t rank = x.dim();
    if (axes.empty()) {
        for (std::size_t d = 0; d < rank; ++d) {
            attrs.ints.push_back(static_cast<std::int64_t>(d));
        }
    } else {
        for (std::int64_t axis : axes) {
            attrs.ints.push_back(
                static_cast<std::int64_t>(normalize_axis(op.info.name, axis, rank)));
        }
        std::sort(attrs.ints.begin(), attrs.ints.end());
        if (std::adjacent_find(attrs.ints.begin(), attrs.ints.end()) != attrs.ints.end()) {
            throw value_error(std::string(op.info.name) + ": an axis appears twice in the axes list");
        }
    }
    return apply(op, x, attrs);
}

}  // namespace

Tensor sum(const Tensor& x, const Axes& axes, bool keepdims) { return reduce(kSum, x, axes, keepdims); }
Tensor mean(const Tensor& x, const Axes& axes, bool keepdims) { return reduce(kMean, x, axes, keepdims); }
Tensor max(const Tensor& x, const Axes& axes, bool keepdims) { return reduce(kMax, x, axes, keepdims); }
Tensor min(const Tensor& x, const Axes& axes, bool keepdims) { return reduce(kMin, x, axes, keepdims); }

Tensor argmax(const Tensor& x, std::int64_t axis) {
    check_defined("argmax", x);
    if (x.dim() == 0) {
        throw shape_error("argmax: expected a tensor with at least one dimension, got a scalar");
    }
    const Shape& shape = x.shape();
    const std::size_t dim = normalize_axis("argmax", axis, shape.size());
    if (shape[dim] == 0) {
        throw value_error("argmax: axis " + std::to_string(axis) + " has extent 0");
    }
    std::size_t outer = 1;
    std::size_t inner = 1;
    for (std::size_t d = 0; d < dim; ++d) {
        outer *= shape[d];
    }
    for (std::size_t d = dim + 1; d < shape.size(); ++d) {
        inner *= shape[d];
    }
    Shape out_shape = shape;
    out_shape.erase(out_shape.begin() + static_cast<std::ptrdiff_t>(dim));
    xt::xarray<std::int64_t> result(out_shape);

    detail::visit_dtype(x.dtype(), [&](auto zero) {
        using T = decltype(zero);
        const T* values = x.values<T>().data();
        const std::size_t extent = shape[dim];
        for (std::size_t o = 0; o < outer; ++o) {
            for (std::size_t i = 0; i < inner; ++i) {
                const T* line = values + o * extent * inner + i;
                // The first NaN wins, as in NumPy; otherwise the first maximum.
                std::size_t best = 0;
                for (std::size_t k = 1; k < extent && !std::isnan(line[best * inner]); ++k) {
                    const T value = line[k * inner];
                    if (std::isnan(value) || value > line[best * inner]) {
                        best = k;
                    }
                }
                result.flat(o * inner + i) = static_cast<std::int64_t>(best);
            }
        }
    });
    return Tensor(std::move(result));
}

}  // namespace xgrad

#include "xgrad/ops/activation.hpp"

#include <cmath>
#include <numbers>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

#include "kernels/elementwise.hpp"
#include "kernels/reduce.hpp"
#include "xgrad/op.hpp"

namespace xgrad {

namespace {

// The softmax family reduces along one axis, kept as extent 1 so that the
// result broadcasts against the input.
template <class T>
xt::xarray<T> max_along(const xt::xarray<T>& x, std::size_t axis) {
    xt::xarray<T> result;
    const Shape kept = detail::keepdims_shape(x.shape(), std::array{axis});
    detail::reduce_into<T>(x, kept, result, -std::numeric_limits<T>::infinity(),
                        [](T best, T value) { return value > best ? value : best; });
    return result;
}

template <class T>
xt::xarray<T> sum_along(const xt::xarray<T>& x, std::size_t axis) {
    xt::xarray<T> result;
    const Shape kept = detail::keepdims_shape(x.shape(), std::array{axis});
    detail::sum_into(x, kept, result);
    return result;
}

std::size_t softmax_axis(const OpArgs& args) {
    return normalize_axis(args.op(), args.attrs().ints[0], args.shape(0).size());
}

OutputSpec softmax_spec(const OpArgs& args) {
    if (args.shape(0).empty()) {
        throw shape_error(std::string(args.op()) + ": expected a tensor with at least one "
                                                   "dimension, got a scalar");
    }
    softmax_axis(args);
    return elementwise_spec(args);
}

std::string describe_axis(const OpAttrs& attrs) { return "axis=" + std::to_string(attrs.ints[0]); }

struct Tanh {
    static constexpr OpInfo kInfo{.name = "tanh", .saves_output = true};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = xt::tanh(args.values<T>(0));
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& y = args.output<T>();
        xt::noalias(*args.grad<T>(0)) = args.grad_output<T>() * (T(1) - y * y);
    }
};

struct Sigmoid {
    static constexpr OpInfo kInfo{.name = "sigmoid", .saves_output = true};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    // Each branch exponentiates a non-positive number, so nothing overflows.
    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        detail::map_into(args.values<T>(0), y, [](T x) {
            if (x >= T(0)) {
                return T(1) / (T(1) + std::exp(-x));
            }
            const T e = std::exp(x);
            return e / (T(1) + e);
        });
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& y = args.output<T>();
        xt::noalias(*args.grad<T>(0)) = args.grad_output<T>() * y * (T(1) - y);
    }
};

struct Relu {
    static constexpr OpInfo kInfo{.name = "relu", .saves_output = true};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        // x < 0 rather than x > 0, so that NaN passes through as in PyTorch.
        detail::map_into(args.values<T>(0), y, [](T x) { return x < T(0) ? T(0) : x; });
    }

    // y > 0 exactly where x > 0, so the saved output gives the mask.
    template <class T>
    static void vjp(const VjpArgs& args) {
        detail::zip_into(args.output<T>(), args.grad_output<T>(), *args.grad<T>(0),
                         [](T y, T dy) { return y > T(0) ? dy : T(0); });
    }
};

// attrs.scalars[0] is the negative slope.
struct LeakyRelu {
    static constexpr OpInfo kInfo{.name = "leaky_relu", .saved_inputs = kSaveInput0};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto slope = static_cast<T>(args.attrs().scalars[0]);
        detail::map_into(args.values<T>(0), y, [slope](T x) { return x > T(0) ? x : slope * x; });
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto slope = static_cast<T>(args.attrs().scalars[0]);
        detail::zip_into(args.values<T>(0), args.grad_output<T>(), *args.grad<T>(0),
                         [slope](T x, T dy) { return x > T(0) ? dy : slope * dy; });
    }

    static std::string describe(const OpAttrs& attrs) {
        return "negative_slope=" + std::to_string(attrs.scalars[0]);
    }
};

// attrs.flag selects the tanh approximation.
struct Gelu {
    static constexpr OpInfo kInfo{.name = "gelu", .saved_inputs = kSaveInput0};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        if (args.attrs().flag) {
            detail::map_into(args.values<T>(0), y, [](T x) {
                return T(0.5) * x * (T(1) + std::tanh(inner(x)));
            });
        } else {
            detail::map_into(args.values<T>(0), y, [](T x) { return x * cdf(x); });
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        if (args.attrs().flag) {
            // d/dx of 0.5 x (1 + tanh(u)) with u = c (x + k x^3).
            detail::zip_into(args.values<T>(0), args.grad_output<T>(), *args.grad<T>(0),
                             [](T x, T dy) {
                                 const T t = std::tanh(inner(x));
                                 const T du = kSqrt2OverPi<T> * (T(1) + T(3) * kCubic<T> * x * x);
                                 return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
                             });
        } else {
            // d/dx of x Phi(x) is Phi(x) + x phi(x).
            detail::zip_into(args.values<T>(0), args.grad_output<T>(), *args.grad<T>(0),
                             [](T x, T dy) {
                                 const T pdf = std::exp(T(-0.5) * x * x) * kInvSqrt2Pi<T>;
                                 return dy * (cdf(x) + x * pdf);
                             });
        }
    }

    static std::string describe(const OpAttrs& attrs) {
        return attrs.flag ? "approximate=tanh" : "";
    }

    template <class T>
    static constexpr T kSqrt2OverPi = T(0.7978845608028654);  // sqrt(2 / pi)
    template <class T>
    static constexpr T kInvSqrt2Pi = T(0.3989422804014327);  // 1 / sqrt(2 pi)
    template <class T>
    static constexpr T kCubic = T(0.044715);

    template <class T>
    static T cdf(T x) {
        return T(0.5) * (T(1) + std::erf(x * T(std::numbers::sqrt2 / 2)));
    }

    template <class T>
    static T inner(T x) {
        return kSqrt2OverPi<T> * (x + kCubic<T> * x * x * x);
    }
};

// attrs.scalars holds the bounds (min, max).
struct Clamp {
    static constexpr OpInfo kInfo{.name = "clamp", .saved_inputs = kSaveInput0};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto low = static_cast<T>(args.attrs().scalars[0]);
        const auto high = static_cast<T>(args.attrs().scalars[1]);
        detail::map_into(args.values<T>(0), y,
                         [low, high](T x) { return x < low ? low : (x > high ? high : x); });
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto low = static_cast<T>(args.attrs().scalars[0]);
        const auto high = static_cast<T>(args.attrs().scalars[1]);
        detail::zip_into(args.values<T>(0), args.grad_output<T>(), *args.grad<T>(0),
                         [low, high](T x, T dy) { return (x >= low && x <= high) ? dy : T(0); });
    }

    static std::string describe(const OpAttrs& attrs) {
        return "min=" + std::to_string(attrs.scalars[0]) +
               ", max=" + std::to_string(attrs.scalars[1]);
    }
};

// attrs.ints[0] is the axis.
struct Softmax {
    static constexpr OpInfo kInfo{.name = "softmax", .saves_output = true};

    static OutputSpec infer(const OpArgs& args) { return softmax_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const std::size_t axis = softmax_axis(args);
        const auto& x = args.values<T>(0);
        xt::noalias(y) = xt::exp(x - max_along(x, axis));
        y /= sum_along(y, axis);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const std::size_t axis = softmax_axis(args);
        const auto& y = args.output<T>();
        const auto& grad_out = args.grad_output<T>();
        const xt::xarray<T> weighted = grad_out * y;
        xt::noalias(*args.grad<T>(0)) = y * (grad_out - sum_along(weighted, axis));
    }

    static std::string describe(const OpAttrs& attrs) { return describe_axis(attrs); }
};

// attrs.ints[0] is the axis.
struct LogSoftmax {
    static constexpr OpInfo kInfo{.name = "log_softmax", .saves_output = true};

    static OutputSpec infer(const OpArgs& args) { return softmax_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const std::size_t axis = softmax_axis(args);
        const auto& x = args.values<T>(0);
        xt::noalias(y) = x - max_along(x, axis);
        const xt::xarray<T> exponentials = xt::exp(y);
        y -= xt::log(sum_along(exponentials, axis));
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const std::size_t axis = softmax_axis(args);
        const auto& grad_out = args.grad_output<T>();
        xt::noalias(*args.grad<T>(0)) = grad_out - xt::exp(args.output<T>()) * sum_along(grad_out, axis);
    }

    static std::string describe(const OpAttrs& attrs) { return describe_axis(attrs); }
};

const OpDef& kTanh = define_op<Tanh>();
const OpDef& kSigmoid = define_op<Sigmoid>();
const OpDef& kRelu = define_op<Relu>();
const OpDef& kLeakyRelu = define_op<LeakyRelu>();
const OpDef& kGelu = define_op<Gelu>();
const OpDef& kClamp = define_op<Clamp>();
const OpDef& kSoftmax = define_op<Softmax>();
const OpDef& kLogSoftmax = define_op<LogSoftmax>();

OpAttrs axis_attrs(std::int64_t axis) {
    OpAttrs attrs;
    attrs.ints.push_back(axis);
    return attrs;
}

}  // namespace

Tensor tanh(const Tensor& x) { return apply(kTanh, x); }
Tensor sigmoid(const Tensor& x) { return apply(kSigmoid, x); }
Tensor relu(const Tensor& x) { return apply(kRelu, x); }

Tensor leaky_relu(const Tensor& x, double negative_slope) {
    OpAttrs attrs;
    attrs.scalars[0] = negative_slope;
    return apply(kLeakyRelu, x, attrs);
}

Tensor gelu(const Tensor& x, bool approximate) {
    OpAttrs attrs;
    attrs.flag = approximate;
    return apply(kGelu, x, attrs);
}

Tensor clamp(const Tensor& x, double min, double max) {
    if (std::isnan(min) || std::isnan(max) || min > max) {
        throw value_error("clamp: min (" + std::to_string(min) + ") must not exceed max (" +
                          std::to_string(max) + "), and neither may be NaN");
    }
    OpAttrs attrs;
    attrs.scalars = {min, max};
    return apply(kClamp, x, attrs);
}

Tensor softmax(const Tensor& x, std::int64_t axis) { return apply(kSoftmax, x, axis_attrs(axis)); }

Tensor log_softmax(const Tensor& x, std::int64_t axis) {
    return apply(kLogSoftmax, x, axis_attrs(axis));
}

}  // namespace xgrad

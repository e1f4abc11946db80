#include "xgrad/ops/binary.hpp"

#include <limits>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

#include "xgrad/op.hpp"
#include "xgrad/ops/unary.hpp"

namespace xgrad {

namespace {

// Each VJP computes the full broadcast gradient, then sum_to_shape reduces it
// to the input's shape (a no-op when the input was not broadcast).

struct Add {
    static constexpr OpInfo kInfo{.name = "add", .arity = 2};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = args.values<T>(0) + args.values<T>(1);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& grad_out = args.grad_output<T>();
        if (auto* grad_a = args.grad<T>(0)) {
            assign_sum_to_shape<T>(*grad_a, grad_out, args.shape(0));
        }
        if (auto* grad_b = args.grad<T>(1)) {
            assign_sum_to_shape<T>(*grad_b, grad_out, args.shape(1));
        }
    }
};

struct Sub {
    static constexpr OpInfo kInfo{.name = "sub", .arity = 2};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = args.values<T>(0) - args.values<T>(1);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& grad_out = args.grad_output<T>();
        if (auto* grad_a = args.grad<T>(0)) {
            assign_sum_to_shape<T>(*grad_a, grad_out, args.shape(0));
        }
        if (auto* grad_b = args.grad<T>(1)) {
            assign_sum_to_shape<T>(*grad_b, -grad_out, args.shape(1));
        }
    }
};

struct Mul {
    static constexpr OpInfo kInfo{.name = "mul", .arity = 2, .saved_inputs = kSaveAllInputs};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = args.values<T>(0) * args.values<T>(1);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& grad_out = args.grad_output<T>();
        if (auto* grad_a = args.grad<T>(0)) {
            assign_sum_to_shape<T>(*grad_a, grad_out * args.values<T>(1), args.shape(0));
        }
        if (auto* grad_b = args.grad<T>(1)) {
            assign_sum_to_shape<T>(*grad_b, grad_out * args.values<T>(0), args.shape(1));
        }
    }
};

struct Div {
    static constexpr OpInfo kInfo{.name = "div", .arity = 2, .saved_inputs = kSaveAllInputs};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = args.values<T>(0) / args.values<T>(1);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& grad_out = args.grad_output<T>();
        const auto& a = args.values<T>(0);
        const auto& b = args.values<T>(1);
        if (auto* grad_a = args.grad<T>(0)) {
            assign_sum_to_shape<T>(*grad_a, grad_out / b, args.shape(0));
        }
        if (auto* grad_b = args.grad<T>(1)) {
            assign_sum_to_shape<T>(*grad_b, -grad_out * a / (b * b), args.shape(1));
        }
    }
};

// maximum (kIsMax) and minimum share one definition: the winner takes dy and
// a tie splits it in half, PyTorch's convention.
template <bool kIsMax>
struct Extremum {
    static constexpr OpInfo kInfo{.name = kIsMax ? "maximum" : "minimum",
                                  .arity = 2,
                                  .saved_inputs = kSaveAllInputs};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        // NaN in either input gives NaN, in either argument order, as in
        // PyTorch; std::max alone would depend on the order.
        const auto& a = args.values<T>(0);
        const auto& b = args.values<T>(1);
        const T nan = std::numeric_limits<T>::quiet_NaN();
        if constexpr (kIsMax) {
            xt::noalias(y) = xt::where(xt::isnan(a) || xt::isnan(b), nan, xt::maximum(a, b));
        } else {
            xt::noalias(y) = xt::where(xt::isnan(a) || xt::isnan(b), nan, xt::minimum(a, b));
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& grad_out = args.grad_output<T>();
        const auto& a = args.values<T>(0);
        const auto& b = args.values<T>(1);
        // share_a is 1 where a wins, 1/2 at a tie and 0 where b wins.
        const auto a_wins = kIsMax ? xt::xarray<bool>(a > b) : xt::xarray<bool>(a < b);
        const xt::xarray<T> share_a = xt::where(a_wins, T(1), xt::where(xt::equal(a, b), T(0.5), T(0)));
        if (auto* grad_a = args.grad<T>(0)) {
            assign_sum_to_shape<T>(*grad_a, grad_out * share_a, args.shape(0));
        }
        if (auto* grad_b = args.grad<T>(1)) {
            assign_sum_to_shape<T>(*grad_b, grad_out * (T(1) - share_a), args.shape(1));
        }
    }
};

// Inputs: condition, a, b. The output dtype is that of a and b.
struct Where {
    static constexpr OpInfo kInfo{.name = "where", .arity = 3, .saved_inputs = kSaveInput0};

    static OutputSpec infer(const OpArgs& args) {
        if (args.dtype(1) != args.dtype(2)) {
            throw value_error(std::string("where: a is ") + dtype_name(args.dtype(1)) +
                              " but b is " + dtype_name(args.dtype(2)) +
                              "; convert one with to_dtype()");
        }
        if (!is_floating(args.dtype(1))) {
            detail::throw_not_floating("where", args.dtype(1));
        }
        Shape shape = broadcast_shapes("where", args.shape(1), args.shape(2));
        shape = broadcast_shapes("where", args.shape(0), shape);
        return {shape, args.dtype(1)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = xt::where(condition_mask(args), args.values<T>(1), args.values<T>(2));
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& grad_out = args.grad_output<T>();
        const xt::xarray<bool> mask = condition_mask(args);
        // A float condition that requires grad gets zero: the selection is
        // piecewise constant in it.
        if (args.needs_grad(0)) {
            detail::visit_floating(args.dtype(0), "where", [&](auto zero) {
                using C = decltype(zero);
                xt::xarray<C>& grad_condition = *args.grad<C>(0);
                grad_condition.resize(args.shape(0));
                grad_condition.fill(C(0));
            });
        }
        if (auto* grad_a = args.grad<T>(1)) {
            assign_sum_to_shape<T>(*grad_a, xt::where(mask, grad_out, T(0)), args.shape(1));
        }
        if (auto* grad_b = args.grad<T>(2)) {
            assign_sum_to_shape<T>(*grad_b, xt::where(mask, T(0), grad_out), args.shape(2));
        }
    }

    static xt::xarray<bool> condition_mask(const OpArgs& args) {
        return detail::visit_dtype(args.dtype(0), [&](auto zero) {
            using C = decltype(zero);
            return xt::xarray<bool>(xt::not_equal(args.values<C>(0), C(0)));
        });
    }
};

const OpDef& kAdd = define_op<Add>();
const OpDef& kSub = define_op<Sub>();
const OpDef& kMul = define_op<Mul>();
const OpDef& kDiv = define_op<Div>();
const OpDef& kMaximum = define_op<Extremum<true>>();
const OpDef& kMinimum = define_op<Extremum<false>>();
const OpDef& kWhere = define_op<Where>();

Tensor scalar_like(double value, const Tensor& like) { return scalar(value, like.dtype()); }

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return apply(kAdd, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return apply(kSub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return apply(kMul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return apply(kDiv, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return apply(kMaximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return apply(kMinimum, a, b); }

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
    return apply(kWhere, condition, a, b);
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }

Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(a, b), b); }

}  // namespace xgrad

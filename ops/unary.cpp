#include "xgrad/ops/unary.hpp"

#include <cmath>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

#include "xgrad/op.hpp"

namespace xgrad {

namespace {

struct Neg {
    static constexpr OpInfo kInfo{.name = "neg"};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = -args.values<T>(0);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        xt::noalias(*args.grad<T>(0)) = -args.grad_output<T>();
    }
};

struct Exp {
    static constexpr OpInfo kInfo{.name = "exp", .saves_output = true};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = xt::exp(args.values<T>(0));
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        xt::noalias(*args.grad<T>(0)) = args.grad_output<T>() * args.output<T>();
    }
};

struct Log {
    static constexpr OpInfo kInfo{.name = "log", .saved_inputs = kSaveInput0};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = xt::log(args.values<T>(0));
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        xt::noalias(*args.grad<T>(0)) = args.grad_output<T>() / args.values<T>(0);
    }
};

struct Sqrt {
    static constexpr OpInfo kInfo{.name = "sqrt", .saves_output = true};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = xt::sqrt(args.values<T>(0));
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        xt::noalias(*args.grad<T>(0)) = args.grad_output<T>() / (T(2) * args.output<T>());
    }
};

struct Abs {
    static constexpr OpInfo kInfo{.name = "abs", .saved_inputs = kSaveInput0};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = xt::abs(args.values<T>(0));
    }

    // xt::sign(0) is 0, which gives PyTorch's gradient of 0 at the kink.
    template <class T>
    static void vjp(const VjpArgs& args) {
        xt::noalias(*args.grad<T>(0)) = args.grad_output<T>() * xt::sign(args.values<T>(0));
    }
};

// attrs.scalars[0] is the exponent.
struct Pow {
    static constexpr OpInfo kInfo{.name = "pow", .saved_inputs = kSaveInput0};

    static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto exponent = static_cast<T>(args.attrs().scalars[0]);
        xt::noalias(y) = xt::pow(args.values<T>(0), exponent);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto exponent = static_cast<T>(args.attrs().scalars[0]);
        xt::xarray<T>& grad_x = *args.grad<T>(0);
        if (exponent == T(0)) {
            // x^0 is constant, including at x = 0 where the formula gives 0 * inf.
            grad_x.resize(args.shape(0));
            grad_x.fill(T(0));
            return;
        }
        xt::noalias(grad_x) =
            args.grad_output<T>() * exponent * xt::pow(args.values<T>(0), exponent - T(1));
    }

    static std::string describe(const OpAttrs& attrs) {
        return "exponent=" + std::to_string(attrs.scalars[0]);
    }
};

// attrs.ints[0] is the target Dtype.
struct ToDtype {
    static constexpr OpInfo kInfo{.name = "to_dtype"};

    static OutputSpec infer(const OpArgs& args) {
        const auto target = static_cast<Dtype>(args.attrs().ints[0]);
        if (!is_floating(target)) {
            throw not_implemented(std::string("to_dtype: conversion to ") + dtype_name(target) +
                                  " is not supported; only float32 and float64 are targets");
        }
        return {args.shape(0), target};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        xt::noalias(y) = args.input(0).cast(dtype_of<T>()).template get<T>();
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        detail::visit_floating(args.dtype(0), "to_dtype", [&](auto zero) {
            using Input = decltype(zero);
            xt::noalias(*args.grad<Input>(0)) = xt::cast<Input>(args.grad_output<T>());
        });
    }

    static std::string describe(const OpAttrs& attrs) {
        return std::string("dtype=") + dtype_name(static_cast<Dtype>(attrs.ints[0]));
    }
};

const OpDef& kNeg = define_op<Neg>();
const OpDef& kExp = define_op<Exp>();
const OpDef& kLog = define_op<Log>();
const OpDef& kSqrt = define_op<Sqrt>();
const OpDef& kAbs = define_op<Abs>();
const OpDef& kPow = define_op<Pow>();
const OpDef& kToDtype = define_op<ToDtype>();

}  // namespace

Tensor neg(const Tensor& x) { return apply(kNeg, x); }
Tensor exp(const Tensor& x) { return apply(kExp, x); }
Tensor log(const Tensor& x) { return apply(kLog, x); }
Tensor sqrt(const Tensor& x) { return apply(kSqrt, x); }
Tensor abs(const Tensor& x) { return apply(kAbs, x); }

Tensor pow(const Tensor& x, double exponent) {
    OpAttrs attrs;
    attrs.scalars[0] = exponent;
    return apply(kPow, x, attrs);
}

Tensor to_dtype(const Tensor& x, Dtype dtype) {
    OpAttrs attrs;
    attrs.ints.push_back(static_cast<std::int64_t>(dtype));
    return apply(kToDtype, x, attrs);
}

}  // namespace xgrad

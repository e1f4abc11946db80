#pragma once

// Defining an op. Every op, built in or user-written, is one struct with four
// parts side by side:
//
//   struct Tanh {
//       // y = tanh(x); dx = dy * (1 - y^2), computed from the saved output
//       static constexpr OpInfo kInfo{.name = "tanh", .saves_output = true};
//
//       static OutputSpec infer(const OpArgs& args) { return elementwise_spec(args); }
//
//       template <class T>
//       static void forward(const OpArgs& args, xt::xarray<T>& y) {
//           y = xt::tanh(args.values<T>(0));
//       }
//
//       template <class T>
//       static void vjp(const VjpArgs& args) {
//           const auto& y = args.output<T>();
//           *args.grad<T>(0) = args.grad_output<T>() * (T(1) - y * y);
//       }
//   };
//   const OpDef& kTanh = define_op<Tanh>();
//   Tensor tanh(const Tensor& x) { return apply(kTanh, x); }
//
// infer() checks the inputs and returns the output's shape and dtype (the
// shape rule). forward() fills the output, which arrives allocated with that
// shape. vjp() assigns each requested input gradient from the output
// gradient. T is the output's dtype: float or double, and also std::int64_t
// for ops whose OpInfo sets supports_int64. The eager tape, the
// gradient checker and printing all run these same functions.

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <algorithm>

#include <xtensor/xarray.hpp>
#include <xtensor/xnoalias.hpp>

#include "xgrad/detail/array.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad {

/// The non-tensor arguments of one op call, kept in its tape record so that
/// backward and printing see exactly what forward saw. Each op documents
/// which fields it uses.
struct OpAttrs {
    std::array<double, 2> scalars{};    ///< real parameters: an exponent, a slope, bounds
    xt::svector<std::int64_t, 4> ints;  ///< integer parameters: axes, a permutation, slice bounds
    Shape shape;                        ///< a target shape
    bool flag = false;                  ///< a boolean option such as keepdims
};

/// Shape and dtype of an op's output, as returned by its shape rule.
struct OutputSpec {
    Shape shape;
    Dtype dtype;
};

/// Inputs and attributes of one op call, as the shape rule and forward see them.
class OpArgs {
public:
    OpArgs(const char* op, std::span<const detail::Array* const> inputs, const OpAttrs& attrs)
        : op_(op), inputs_(inputs), attrs_(attrs) {}

    const char* op() const { return op_; }
    std::size_t size() const { return inputs_.size(); }
    const detail::Array& input(std::size_t i) const { return *inputs_[i]; }
    const Shape& shape(std::size_t i) const { return inputs_[i]->shape(); }
    Dtype dtype(std::size_t i) const { return inputs_[i]->dtype(); }
    const OpAttrs& attrs() const { return attrs_; }

    /// Input i's values. Throws value_error naming the op when T is not its dtype.
    template <class T>
    const xt::xarray<T>& values(std::size_t i) const {
        return inputs_[i]->get<T>(op_);
    }

private:
    const char* op_;
    std::span<const detail::Array* const> inputs_;
    const OpAttrs& attrs_;
};

/// What a VJP sees: the inputs, the output, the output's gradient and one
/// gradient slot per input.
class VjpArgs : public OpArgs {
public:
    VjpArgs(const char* op, std::span<const detail::Array* const> inputs, const OpAttrs& attrs,
            const detail::Array* output, const detail::Array& grad_output,
            std::span<detail::Array* const> grads)
        : OpArgs(op, inputs, attrs), output_(output), grad_output_(grad_output), grads_(grads) {}

    /// The output's values; available when the op's OpInfo sets saves_output.
    template <class T>
    const xt::xarray<T>& output() const {
        XGRAD_ASSERT(output_ != nullptr);
        return output_->get<T>(op());
    }

    template <class T>
    const xt::xarray<T>& grad_output() const {
        return grad_output_.get<T>(op());
    }

    Dtype grad_output_dtype() const { return grad_output_.dtype(); }

    /// True when backward needs input i's gradient.
    bool needs_grad(std::size_t i) const { return grads_[i] != nullptr; }

    /// The slot for input i's gradient, or nullptr when none is needed.
    /// Assign a value of input i's shape and dtype; the tape checks both.
    template <class T>
    xt::xarray<T>* grad(std::size_t i) const {
        detail::Array* slot = grads_[i];
        if (slot == nullptr) {
            return nullptr;
        }
        if (slot->empty()) {
            *slot = detail::Array(xt::xarray<T>());
        }
        return &slot->get<T>(op());
    }

private:
    const detail::Array* output_;
    const detail::Array& grad_output_;
    std::span<detail::Array* const> grads_;
};

/// Number of inputs of an op that takes a list (concat, stack).
inline constexpr std::size_t kVariadic = std::numeric_limits<std::size_t>::max();

/// Bit masks for OpInfo::saved_inputs.
inline constexpr std::uint32_t kSaveInput0 = 1u << 0;
inline constexpr std::uint32_t kSaveInput1 = 1u << 1;
inline constexpr std::uint32_t kSaveInput2 = 1u << 2;
inline constexpr std::uint32_t kSaveAllInputs = ~0u;

/// Static facts about an op.
struct OpInfo {
    const char* name;
    std::size_t arity = 1;          ///< number of tensor inputs, or kVariadic
    std::uint32_t saved_inputs = 0; ///< bit i set: the VJP reads input i's values
    bool saves_output = false;      ///< the VJP reads the output's values
    bool differentiable = true;     ///< false: backward never passes through this op
    bool supports_int64 = false;    ///< forward also runs on int64 outputs (no gradient)
};

/// An op's definition as the engine sees it: its facts and its functions.
struct OpDef {
    OpInfo info;
    OutputSpec (*infer)(const OpArgs&);
    void (*forward)(const OpArgs&, detail::Array& out);
    void (*vjp)(const VjpArgs&);
    std::string (*describe)(const OpAttrs&);
};

namespace detail {

void register_op(const OpDef* op);

template <class Op>
void forward_thunk(const OpArgs& args, Array& out) {
    auto run = [&](auto zero) {
        using T = decltype(zero);
        Op::template forward<T>(args, out.get<T>());
    };
    if constexpr (Op::kInfo.supports_int64) {
        visit_dtype(out.dtype(), run);
    } else {
        visit_floating(out.dtype(), Op::kInfo.name, run);
    }
}

template <class Op>
void vjp_thunk(const VjpArgs& args) {
    visit_floating(args.grad_output_dtype(), Op::kInfo.name, [&](auto zero) {
        using T = decltype(zero);
        Op::template vjp<T>(args);
    });
}

template <class Op>
std::string describe_thunk(const OpAttrs& attrs) {
    if constexpr (requires { Op::describe(attrs); }) {
        return Op::describe(attrs);
    } else {
        return {};
    }
}

}  // namespace detail

/// Builds the OpDef for an op struct (see the top of this file) and adds it
/// to the registry that registered_ops() lists. Call it once per op, at
/// namespace scope, and keep the returned reference.
template <class Op>
const OpDef& define_op() {
    static const OpDef def = [] {
        OpDef made{Op::kInfo, &Op::infer, &detail::forward_thunk<Op>, nullptr,
                   &detail::describe_thunk<Op>};
        if constexpr (Op::kInfo.differentiable) {
            made.vjp = &detail::vjp_thunk<Op>;
        }
        return made;
    }();
    static const bool registered = (detail::register_op(&def), true);
    (void)registered;
    return def;
}

/// Every op defined so far, built in and user-written.
const std::vector<const OpDef*>& registered_ops();

/// Runs an op: checks the inputs with its shape rule, computes the output,
/// and records the call on this thread's tape when grad mode is on and an
/// input requires grad.
Tensor apply(const OpDef& op, std::span<const Tensor* const> inputs, const OpAttrs& attrs = {});

inline Tensor apply(const OpDef& op, const Tensor& x, const OpAttrs& attrs = {}) {
    const Tensor* inputs[] = {&x};
    return apply(op, std::span<const Tensor* const>(inputs), attrs);
}

inline Tensor apply(const OpDef& op, const Tensor& a, const Tensor& b, const OpAttrs& attrs = {}) {
    const Tensor* inputs[] = {&a, &b};
    return apply(op, std::span<const Tensor* const>(inputs), attrs);
}

inline Tensor apply(const OpDef& op, const Tensor& a, const Tensor& b, const Tensor& c,
                    const OpAttrs& attrs = {}) {
    const Tensor* inputs[] = {&a, &b, &c};
    return apply(op, std::span<const Tensor* const>(inputs), attrs);
}

Tensor apply(const OpDef& op, const std::vector<Tensor>& inputs, const OpAttrs& attrs = {});

// --- helpers for shape rules and VJPs ----------------------------------------

/// Shape rule of an elementwise op: one float input gives its shape and
/// dtype; several inputs must share a float dtype and broadcast together as
/// in NumPy. Throws shape_error or value_error naming the op.
OutputSpec elementwise_spec(const OpArgs& args);

/// The NumPy broadcast of two shapes. Throws shape_error naming `op` and both
/// shapes when a dimension pair is neither equal nor 1.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

/// Sums a gradient over the dimensions that broadcasting added or stretched,
/// so that it takes `shape`, the shape of the input it belongs to.
template <class T>
xt::xarray<T> sum_to_shape(xt::xarray<T> grad, const Shape& shape);

/// Assigns `grad`, the gradient of a broadcast result, to `target` summed
/// down to `shape`. When no broadcasting happened it writes in place, so a
/// replayed graph allocates nothing; otherwise it goes through sum_to_shape.
template <class T, class E>
void assign_sum_to_shape(xt::xarray<T>& target, const E& grad, const Shape& shape) {
    const auto& grad_shape = grad.shape();
    if (std::equal(grad_shape.begin(), grad_shape.end(), shape.begin(), shape.end())) {
        xt::noalias(target) = grad;
    } else {
        target = sum_to_shape<T>(xt::xarray<T>(grad), shape);
    }
}

/// Maps an axis in [-rank, rank) to [0, rank). Throws value_error naming the op.
std::size_t normalize_axis(const char* op, std::int64_t axis, std::size_t rank);

/// Throws value_error naming `op` when `x` is undefined; for public op
/// functions that read a tensor's shape before calling apply().
void check_defined(const char* op, const Tensor& x);

/// Checks that every input has the same dtype. Throws value_error naming the
/// op and both dtypes otherwise.
void check_same_dtype(const OpArgs& args);

}  // namespace xgrad

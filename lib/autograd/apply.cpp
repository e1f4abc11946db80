// apply(): the one call through which every op runs, and the helpers that
// op definitions share.

#include <string>

#include "autograd/anomaly.hpp"
#include "autograd/tape.hpp"
#include "kernels/reduce.hpp"
#include "xgrad/autograd.hpp"
#include "xgrad/op.hpp"

namespace xgrad {

namespace {

std::vector<const OpDef*>& op_registry() {
    static std::vector<const OpDef*> registry;
    return registry;
}

void check_arity(const OpDef& op, std::size_t count) {
    const std::size_t arity = op.info.arity;
    if (arity == kVariadic && count == 0) {
        throw value_error(std::string(op.info.name) + ": expected at least one input tensor");
    }
    if (arity != kVariadic && count != arity) {
        throw value_error(std::string(op.info.name) + ": expected " + std::to_string(arity) +
                          " input tensors, got " + std::to_string(count));
    }
}

}  // namespace

void detail::register_op(const OpDef* op) { op_registry().push_back(op); }

const std::vector<const OpDef*>& registered_ops() { return op_registry(); }

Tensor apply(const OpDef& op, std::span<const Tensor* const> inputs, const OpAttrs& attrs) {
    check_arity(op, inputs.size());

    xt::svector<const detail::Array*, 4> values;
    bool any_requires_grad = false;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& input = *inputs[i];
        if (!input.defined()) {
            throw value_error(std::string(op.info.name) + ": input " + std::to_string(i) +
                              " is an undefined tensor");
        }
        values.push_back(&input.impl()->storage->values);
        any_requires_grad = any_requires_grad || input.impl()->requires_grad;
    }

    OpArgs args(op.info.name, values, attrs);
    const OutputSpec spec = op.infer(args);
    auto storage = std::make_shared<detail::Storage>();
    storage->values = detail::Array::uninitialized(spec.dtype, spec.shape);
    op.forward(args, storage->values);
    if (storage->values.shape() != spec.shape) {
        throw std::logic_error(std::string(op.info.name) + ": forward produced shape " +
                               shape_string(storage->values.shape()) + " but the shape rule gave " +
                               shape_string(spec.shape));
    }
    if (detail::anomaly_enabled()) {
        const std::uint64_t position = detail::next_anomaly_op();
        if (detail::has_non_finite(storage->values)) {
            throw anomaly_error(std::string(op.info.name) + ": the output contains NaN or infinity (op " +
                                std::to_string(position) +
                                " since anomaly detection was turned on); input shapes " +
                                detail::shapes_string(values) + detail::non_finite_input_note(values));
        }
    }

    auto output = std::make_shared<detail::TensorImpl>(std::move(storage));
    const bool tracks_grad = any_requires_grad && op.info.differentiable && is_grad_enabled();
    if (tracks_grad || detail::is_capturing()) {
        detail::Tape& tape = detail::current_tape();
        for (const Tensor* input : inputs) {
            const detail::Tape* owner = input->impl()->tape;
            if (owner != nullptr && owner != &tape) {
                throw autograd_error(std::string(op.info.name) +
                                     ": an input was recorded on another thread's tape; "
                                     "detach() it before passing it to this thread");
            }
        }
        output->requires_grad = tracks_grad;
        tape.append(op, attrs, inputs, *output);
    }
    return Tensor(std::move(output));
}

Tensor apply(const OpDef& op, const std::vector<Tensor>& inputs, const OpAttrs& attrs) {
    xt::svector<const Tensor*, 4> pointers;
    for (const Tensor& input : inputs) {
        pointers.push_back(&input);
    }
    return apply(op, std::span<const Tensor* const>(pointers.data(), pointers.size()), attrs);
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
    const std::size_t rank = std::max(a.size(), b.size());
    Shape result(rank);
    for (std::size_t i = 0; i < rank; ++i) {
        // Align trailing dimensions; missing leading ones count as 1.
        const std::size_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
        const std::size_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
        if (da != db && da != 1 && db != 1) {
            throw shape_error(std::string(op) + ": shapes cannot be broadcast together: a has shape " +
                              shape_string(a) + ", b has shape " + shape_string(b) +
                              " (dimension " + std::to_string(i) + " of the result would be both " +
                              std::to_string(da) + " and " + std::to_string(db) + ")");
        }
        result[i] = da == 1 ? db : da;
    }
    return result;
}

void check_defined(const char* op, const Tensor& x) {
    if (!x.defined()) {
        throw value_error(std::string(op) + ": input 0 is an undefined tensor");
    }
}

void check_same_dtype(const OpArgs& args) {
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args.dtype(i) != args.dtype(0)) {
            throw value_error(std::string(args.op()) + ": inputs have different dtypes: input 0 is " +
                              dtype_name(args.dtype(0)) + ", input " + std::to_string(i) + " is " +
                              dtype_name(args.dtype(i)) + "; convert one with to_dtype()");
        }
    }
}

OutputSpec elementwise_spec(const OpArgs& args) {
    check_same_dtype(args);
    if (!is_floating(args.dtype(0))) {
        detail::throw_not_floating(args.op(), args.dtype(0));
    }
    Shape shape = args.shape(0);
    for (std::size_t i = 1; i < args.size(); ++i) {
        shape = broadcast_shapes(args.op(), shape, args.shape(i));
    }
    return {shape, args.dtype(0)};
}

std::size_t normalize_axis(const char* op, std::int64_t axis, std::size_t rank) {
    const auto signed_rank = static_cast<std::int64_t>(rank);
    if (axis < -signed_rank || axis >= signed_rank) {
        throw value_error(std::string(op) + ": axis " + std::to_string(axis) +
                          " is out of range for a tensor of rank " + std::to_string(rank) +
                          " (valid: " + std::to_string(-signed_rank) + " to " +
                          std::to_string(signed_rank - 1) + ")");
    }
    return static_cast<std::size_t>(axis < 0 ? axis + signed_rank : axis);
}

template <class T>
xt::xarray<T> sum_to_shape(xt::xarray<T> grad, const Shape& shape) {
    if (grad.shape() == shape) {
        return grad;
    }
    // Sum over the leading dimensions that broadcasting added, and over the
    // dimensions where the input had extent 1: the input's shape, padded with
    // leading 1s to the gradient's rank, is the kept shape of that reduction.
    XGRAD_ASSERT(grad.dimension() >= shape.size());
    Shape kept(grad.dimension() - shape.size(), 1);
    kept.insert(kept.end(), shape.begin(), shape.end());
    xt::xarray<T> summed;
    detail::sum_into(grad, kept, summed);
    summed.reshape(shape);
    return summed;
}

template xt::xarray<float> sum_to_shape(xt::xarray<float>, const Shape&);
template xt::xarray<double> sum_to_shape(xt::xarray<double>, const Shape&);

}  // namespace xgrad

#include "xgrad/tensor.hpp"

#include <atomic>
#include <ostream>
#include <sstream>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xio.hpp>

#include "autograd/tape.hpp"
#include "xgrad/autograd.hpp"

namespace xgrad {

namespace {

std::atomic<std::size_t> tensor_count{0};

std::shared_ptr<detail::TensorImpl> make_impl(detail::Array values) {
    auto storage = std::make_shared<detail::Storage>();
    storage->values = std::move(values);
    return std::make_shared<detail::TensorImpl>(std::move(storage));
}

void check_defined(const Tensor& tensor, const char* function) {
    if (!tensor.defined()) {
        throw value_error(std::string(function) + ": the tensor is undefined (default-constructed, "
                                                  "or the grad() of a tensor without a gradient)");
    }
}

}  // namespace

namespace detail {

TensorImpl::TensorImpl(std::shared_ptr<Storage> values) : storage(std::move(values)) {
    tensor_count.fetch_add(1, std::memory_order_relaxed);
}

TensorImpl::~TensorImpl() {
    tensor_count.fetch_sub(1, std::memory_order_relaxed);
    if (tape != nullptr) {
        tape->on_output_destroyed(record);
    }
}

}  // namespace detail

std::size_t live_tensors() { return tensor_count.load(std::memory_order_relaxed); }

Tensor::Tensor(xt::xarray<float> values) : impl_(make_impl(detail::Array(std::move(values)))) {}
Tensor::Tensor(xt::xarray<double> values) : impl_(make_impl(detail::Array(std::move(values)))) {}
Tensor::Tensor(xt::xarray<std::int64_t> values)
    : impl_(make_impl(detail::Array(std::move(values)))) {}
Tensor::Tensor(xt::xarray<std::int8_t> values) : impl_(make_impl(detail::Array(std::move(values)))) {}
Tensor::Tensor(xt::xarray<std::uint8_t> values)
    : impl_(make_impl(detail::Array(std::move(values)))) {}
Tensor::Tensor(detail::Array values) : impl_(make_impl(std::move(values))) {}

detail::Storage& Tensor::storage() const {
    check_defined(*this, "Tensor");
    return *impl_->storage;
}

Dtype Tensor::dtype() const { return storage().values.dtype(); }
const Shape& Tensor::shape() const { return storage().values.shape(); }
std::size_t Tensor::numel() const { return storage().values.size(); }
std::uint64_t Tensor::version() const { return storage().version; }

double Tensor::item() const {
    if (numel() != 1) {
        throw shape_error("item: expected a tensor with one element, got shape " +
                          shape_string(shape()));
    }
    return detail::visit_dtype(dtype(), [&](auto zero) {
        return static_cast<double>(*values<decltype(zero)>().data());
    });
}

bool Tensor::requires_grad() const { return defined() && impl_->requires_grad; }

Tensor& Tensor::requires_grad_(bool enabled) {
    check_defined(*this, "requires_grad_");
    if (!is_leaf()) {
        throw value_error(
            "requires_grad_: only leaf tensors can change the flag; this tensor was produced "
            "by a recorded op (call detach() first to make a leaf)");
    }
    if (enabled && !is_floating(dtype())) {
        throw value_error(std::string("requires_grad_: only float32 and float64 tensors can "
                                      "require grad, got ") +
                          dtype_name(dtype()));
    }
    impl_->requires_grad = enabled;
    return *this;
}

bool Tensor::is_leaf() const { return defined() && impl_->tape == nullptr; }

Tensor Tensor::grad() const {
    check_defined(*this, "grad");
    return impl_->grad;
}

void Tensor::zero_grad() {
    check_defined(*this, "zero_grad");
    impl_->grad = Tensor();
}

void Tensor::set_grad(const Tensor& gradient) {
    check_defined(*this, "set_grad");
    if (gradient.defined() && (gradient.dtype() != dtype() || gradient.shape() != shape())) {
        throw shape_error(std::string("set_grad: the gradient has shape ") +
                          shape_string(gradient.shape()) + " and dtype " +
                          dtype_name(gradient.dtype()) + ", but the tensor has shape " +
                          shape_string(shape()) + " and dtype " + dtype_name(dtype()));
    }
    impl_->grad = gradient;
}

Tensor Tensor::detach() const {
    check_defined(*this, "detach");
    return Tensor(std::make_shared<detail::TensorImpl>(impl_->storage));
}

Tensor Tensor::clone() const {
    check_defined(*this, "clone");
    return Tensor(storage().values.cast(dtype()));
}

void Tensor::check_mutable() const {
    check_defined(*this, "mutable_values");
    if (impl_->requires_grad && is_grad_enabled()) {
        throw autograd_error(
            "mutable_values: the tensor requires grad, so an in-place change would not be "
            "recorded; make the change under NoGradGuard (as optimizers do) or on a detach()ed "
            "tensor");
    }
}

void Tensor::backward() const {
    check_defined(*this, "backward");
    if (numel() != 1) {
        throw shape_error("backward: without a gradient argument the output must have one "
                          "element, but it has shape " +
                          shape_string(shape()) +
                          "; reduce it (for example with sum or mean) or pass a gradient of "
                          "that shape");
    }
    backward(Tensor(detail::Array::full(dtype(), shape(), 1.0)));
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
    check_defined(*this, "backward");
    check_defined(grad_output, "backward");
    if (!requires_grad()) {
        throw autograd_error(
            "backward: the tensor does not require grad and has no recorded history; was it "
            "computed under NoGradGuard, or from tensors without requires_grad_()?");
    }
    if (grad_output.shape() != shape() || grad_output.dtype() != dtype()) {
        throw shape_error("backward: the gradient has shape " + shape_string(grad_output.shape()) +
                          " and dtype " + dtype_name(grad_output.dtype()) +
                          ", but the output has shape " + shape_string(shape()) + " and dtype " +
                          dtype_name(dtype()));
    }
    detail::Array seed = grad_output.storage().values.cast(dtype());
    if (is_leaf()) {
        Tensor gradient(std::move(seed));
        if (impl_->grad.defined()) {
            impl_->grad.storage().values.accumulate(std::move(gradient.storage().values));
            ++impl_->grad.storage().version;
        } else {
            impl_->grad = gradient;
        }
        return;
    }
    if (impl_->tape != &detail::current_tape()) {
        throw autograd_error(
            "backward: the tensor was recorded on another thread's tape; run backward on the "
            "thread that computed it");
    }
    impl_->tape->backward(*impl_, std::move(seed), retain_graph);
}

Tensor zeros(const Shape& shape, Dtype dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, Dtype dtype) { return full(shape, 1.0, dtype); }

Tensor full(const Shape& shape, double value, Dtype dtype) {
    return Tensor(detail::Array::full(dtype, shape, value));
}

Tensor zeros_like(const Tensor& like) { return zeros(like.shape(), like.dtype()); }
Tensor ones_like(const Tensor& like) { return ones(like.shape(), like.dtype()); }

Tensor scalar(double value, Dtype dtype) { return full(Shape{}, value, dtype); }

Tensor arange(std::size_t n, Dtype dtype) {
    return detail::visit_dtype(dtype, [&](auto zero) {
        using T = decltype(zero);
        return Tensor(xt::xarray<T>(xt::arange<T>(static_cast<T>(n))));
    });
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) {
    if (!tensor.defined()) {
        return out << "Tensor(undefined)";
    }
    out << "Tensor(" << dtype_name(tensor.dtype()) << ", shape " << shape_string(tensor.shape());
    if (tensor.requires_grad()) {
        out << ", requires_grad";
    }
    out << ")\n";
    detail::visit_dtype(tensor.dtype(), [&](auto zero) {
        using T = decltype(zero);
        if constexpr (sizeof(T) == 1) {
            // Streams print 8-bit integers as characters; print numbers.
            out << xt::xarray<int>(xt::cast<int>(tensor.values<T>()));
        } else {
            out << tensor.values<T>();
        }
    });
    return out;
}

std::string to_string(const Tensor& tensor) {
    std::ostringstream out;
    out << tensor;
    return out.str();
}

}  // namespace xgrad

#pragma once

// Tensor: the value type of xgrad. A tensor is a cheap handle to values held
// in an xtensor container (float32, float64 or int64, any rank), plus the
// autograd state: a requires-grad flag, a gradient slot, and a link to the
// tape record that produced it.
//
// Values are immutable through ops: every op returns a new tensor. The one
// way to change values in place is mutable_values(), which bumps a version
// counter so that the tape can detect a value changed behind its back.

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>

#include <xtensor/xarray.hpp>

#include "xgrad/detail/array.hpp"
#include "xgrad/dtype.hpp"
#include "xgrad/error.hpp"

namespace xgrad {

namespace detail {
class Tape;
struct TensorImpl;

/// Values shared by a tensor and the tensors detached from it, with a
/// counter of in-place changes.
struct Storage {
    Array values;
    std::uint64_t version = 0;
};
}  // namespace detail

class Tensor {
public:
    /// An undefined tensor: no values. Ops reject it; grad() returns one when
    /// no gradient has been computed yet.
    Tensor() = default;

    /// Takes the values over without copying them.
    Tensor(xt::xarray<float> values);         // NOLINT(google-explicit-constructor)
    Tensor(xt::xarray<double> values);        // NOLINT(google-explicit-constructor)
    Tensor(xt::xarray<std::int64_t> values);  // NOLINT(google-explicit-constructor)
    Tensor(xt::xarray<std::int8_t> values);   // NOLINT(google-explicit-constructor)
    Tensor(xt::xarray<std::uint8_t> values);  // NOLINT(google-explicit-constructor)

    /// Wraps values already in an Array; used by ops and the tape.
    explicit Tensor(detail::Array values);

    bool defined() const { return impl_ != nullptr; }
    Dtype dtype() const;
    const Shape& shape() const;
    std::size_t dim() const { return shape().size(); }
    std::size_t numel() const;

    /// The values, read-only and without a copy. Throws value_error when T is
    /// not the tensor's dtype.
    template <class T>
    const xt::xarray<T>& values() const& {
        return storage().values.get<T>("Tensor::values");
    }

    /// On a temporary tensor, such as the result of argmax(x), a reference
    /// would dangle once the tensor is destroyed, so this returns a copy.
    template <class T>
    xt::xarray<T> values() const&& {
        return static_cast<const Tensor&>(*this).values<T>();
    }

    /// A copy of the values as an xarray of T, converting the dtype if needed.
    template <class T>
    xt::xarray<T> to_xarray() const {
        if (dtype() == dtype_of<T>()) {
            return values<T>();
        }
        return storage().values.cast(dtype_of<T>()).template get<T>();
    }

    /// The values for an in-place change. Bumps the version counter, so a
    /// tape record that saved these values throws autograd_error in backward
    /// instead of computing a wrong gradient. Allowed on a tensor that
    /// requires grad only while grad mode is off (as optimizers run), because
    /// an in-place change of a recorded leaf would otherwise go unrecorded.
    /// Do not keep the reference across later ops: only changes made before
    /// the next op are guaranteed to be detected.
    template <class T>
    xt::xarray<T>& mutable_values() {
        check_mutable();
        detail::Storage& target = storage();
        ++target.version;
        return target.values.get<T>("Tensor::mutable_values");
    }

    /// The value of a one-element tensor as a double.
    double item() const;

    /// Number of in-place changes made to these values so far.
    std::uint64_t version() const;

    // --- autograd ---------------------------------------------------------

    bool requires_grad() const;

    /// Marks a leaf tensor as a parameter whose gradient backward() computes.
    /// Only float32 and float64 tensors can require grad, and only leaves
    /// (tensors not produced by a recorded op) can change the flag.
    Tensor& requires_grad_(bool enabled = true);

    /// True for a tensor that no recorded op produced.
    bool is_leaf() const;

    /// The accumulated gradient, or an undefined tensor if none was computed.
    Tensor grad() const;

    /// Drops the accumulated gradient, as PyTorch's zero_grad(set_to_none=True).
    void zero_grad();

    /// Sets the gradient slot; `gradient` must have this tensor's shape and
    /// dtype. The handle is kept, not copied, so a later backward() adds into
    /// `gradient` in place, as in PyTorch.
    void set_grad(const Tensor& gradient);

    /// A tensor that shares these values (and their version counter) but has
    /// no autograd history and does not require grad.
    Tensor detach() const;

    /// A deep copy of the values with no autograd history.
    Tensor clone() const;

    /// Runs the reverse sweep from this tensor, which must hold one element,
    /// and releases the tape records it used.
    void backward() const;

    /// Runs the reverse sweep with `grad_output` (this tensor's shape and
    /// dtype) as the gradient of this tensor. With retain_graph the tape
    /// records are kept, so backward can run through them again.
    void backward(const Tensor& grad_output, bool retain_graph = false) const;

    /// Identity of the underlying tensor object; equal only for handles to
    /// the same tensor, never for two tensors that merely hold equal values.
    const void* id() const { return impl_.get(); }

    // Engine access. Not part of the stable API.
    const std::shared_ptr<detail::TensorImpl>& impl() const { return impl_; }
    explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) : impl_(std::move(impl)) {}
    detail::Storage& storage() const;

private:
    void check_mutable() const;

    std::shared_ptr<detail::TensorImpl> impl_;
};

namespace detail {

/// State behind a Tensor handle. `tape` and `record` locate the tape record
/// that produced this tensor; a leaf has no tape.
struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Tensor grad;
    bool requires_grad = false;
    Tape* tape = nullptr;
    std::size_t record = 0;

    explicit TensorImpl(std::shared_ptr<Storage> values);
    TensorImpl(const TensorImpl&) = delete;
    TensorImpl& operator=(const TensorImpl&) = delete;
    ~TensorImpl();
};

}  // namespace detail

// --- factories --------------------------------------------------------------

Tensor zeros(const Shape& shape, Dtype dtype = Dtype::float32);
Tensor ones(const Shape& shape, Dtype dtype = Dtype::float32);
Tensor full(const Shape& shape, double value, Dtype dtype = Dtype::float32);
Tensor zeros_like(const Tensor& like);
Tensor ones_like(const Tensor& like);

/// A zero-dimensional tensor holding `value`.
Tensor scalar(double value, Dtype dtype = Dtype::float32);

/// The integers 0, 1, ..., n - 1 as a one-dimensional tensor.
Tensor arange(std::size_t n, Dtype dtype = Dtype::float32);

/// Prints dtype, shape, the requires-grad flag and the values.
std::ostream& operator<<(std::ostream& out, const Tensor& tensor);
std::string to_string(const Tensor& tensor);

}  // namespace xgrad

#pragma once

// Array: an xtensor container of one of xgrad's dtypes, chosen at run time.
// Tensors, tape records and gradients all store their values in one.

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include <xtensor/xarray.hpp>

#include "xgrad/dtype.hpp"
#include "xgrad/error.hpp"

namespace xgrad::detail {

class Array {
public:
    /// An empty array: no dtype, no shape. Gradient slots start like this.
    Array() = default;

    template <class T>
    explicit Array(xt::xarray<T> values) : values_(std::move(values)) {}

    /// An array of the given dtype and shape whose elements are not initialised.
    static Array uninitialized(Dtype dtype, const Shape& shape);
    static Array zeros(Dtype dtype, const Shape& shape);
    static Array full(Dtype dtype, const Shape& shape, double value);

    bool empty() const { return values_.index() == 0; }
    void reset() { values_ = std::monostate{}; }

    /// The dtype; must not be called on an empty array.
    Dtype dtype() const {
        XGRAD_ASSERT(!empty());
        return static_cast<Dtype>(values_.index() - 1);
    }

    const Shape& shape() const;
    std::size_t size() const;

    /// The values as an xarray of T. Throws value_error when T is not the
    /// array's dtype; `context` names the op or function for that message.
    template <class T>
    xt::xarray<T>& get(const char* context = "tensor") {
        if (auto* values = std::get_if<xt::xarray<T>>(&values_)) {
            return *values;
        }
        throw_dtype_mismatch(context, dtype_of<T>());
    }

    template <class T>
    const xt::xarray<T>& get(const char* context = "tensor") const {
        return const_cast<Array*>(this)->get<T>(context);
    }

    /// Adds `other` (same dtype and shape) into this array, or takes it over
    /// when this array is empty.
    void accumulate(Array&& other);

    /// Converts to another dtype (a copy, even when the dtype is the same).
    Array cast(Dtype dtype) const;

private:
    [[noreturn]] void throw_dtype_mismatch(const char* context, Dtype requested) const;

    // The order of the alternatives follows Dtype, so dtype() is index() - 1.
    std::variant<std::monostate, xt::xarray<float>, xt::xarray<double>, xt::xarray<std::int64_t>,
                 xt::xarray<std::int8_t>, xt::xarray<std::uint8_t>>
        values_;
};

/// Calls `body(T{})` with T the C++ type of `dtype` (float, double, int64_t,
/// int8_t or uint8_t).
template <class F>
decltype(auto) visit_dtype(Dtype dtype, F&& body) {
    switch (dtype) {
        case Dtype::float32:
            return body(float{});
        case Dtype::float64:
            return body(double{});
        case Dtype::int8:
            return body(std::int8_t{});
        case Dtype::uint8:
            return body(std::uint8_t{});
        case Dtype::int64:
            break;
    }
    return body(std::int64_t{});
}

[[noreturn]] void throw_not_floating(const char* context, Dtype dtype);

/// Like visit_dtype, for float32 and float64 only; throws value_error naming
/// `context` for int64.
template <class F>
decltype(auto) visit_floating(Dtype dtype, const char* context, F&& body) {
    if (dtype == Dtype::float32) {
        return body(float{});
    }
    if (dtype != Dtype::float64) {
        throw_not_floating(context, dtype);
    }
    return body(double{});
}

}  // namespace xgrad::detail

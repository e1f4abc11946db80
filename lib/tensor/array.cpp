#include "xgrad/detail/array.hpp"

#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xnoalias.hpp>

namespace xgrad {

const char* dtype_name(Dtype dtype) {
    switch (dtype) {
        case Dtype::float32:
            return "float32";
        case Dtype::float64:
            return "float64";
        case Dtype::int64:
            return "int64";
        case Dtype::int8:
            return "int8";
        case Dtype::uint8:
            return "uint8";
    }
    return "unknown";
}

std::string shape_string(const Shape& shape) {
    std::string text = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) {
            text += ", ";
        }
        text += std::to_string(shape[i]);
    }
    return text + ")";
}

std::size_t shape_size(const Shape& shape) {
    // The product of the nonzero extents must fit in a signed 64-bit
    // integer even when another extent is 0, because xtensor computes
    // strides in that type for every shape.
    std::int64_t nonzero = 1;
    bool empty = false;
    for (std::size_t extent : shape) {
        if (extent == 0) {
            empty = true;
        } else if (extent > static_cast<std::size_t>(INT64_MAX) ||
                   __builtin_mul_overflow(nonzero, static_cast<std::int64_t>(extent), &nonzero)) {
            throw value_error("shape " + shape_string(shape) +
                              " has more elements than a 64-bit count can hold");
        }
    }
    return empty ? 0 : static_cast<std::size_t>(nonzero);
}

}  // namespace xgrad

namespace xgrad::detail {

Array Array::uninitialized(Dtype dtype, const Shape& shape) {
    shape_size(shape);  // throws for a shape whose element count overflows
    return visit_dtype(dtype, [&](auto zero) { return Array(xt::xarray<decltype(zero)>(shape)); });
}

Array Array::zeros(Dtype dtype, const Shape& shape) {
    return full(dtype, shape, 0.0);
}

Array Array::full(Dtype dtype, const Shape& shape, double value) {
    shape_size(shape);  // throws for a shape whose element count overflows
    const auto [low, high] = [&]() -> std::pair<double, double> {
        switch (dtype) {
            case Dtype::int64:
                return {-0x1p63, 0x1p63};
            case Dtype::int8:
                return {-128.0, 128.0};
            case Dtype::uint8:
                return {0.0, 256.0};
            default:
                return {-INFINITY, INFINITY};
        }
    }();
    if (!is_floating(dtype) && !(value >= low && value < high && value == std::trunc(value))) {
        throw value_error("full: " + std::to_string(value) + " is not representable as " +
                          dtype_name(dtype));
    }
    return visit_dtype(dtype, [&](auto zero) {
        using T = decltype(zero);
        return Array(xt::xarray<T>(shape, static_cast<T>(value)));
    });
}

const Shape& Array::shape() const {
    XGRAD_ASSERT(!empty());
    return std::visit(
        [](const auto& values) -> const Shape& {
            if constexpr (std::is_same_v<std::decay_t<decltype(values)>, std::monostate>) {
                static const Shape kNoShape;
                return kNoShape;
            } else {
                return values.shape();
            }
        },
        values_);
}

std::size_t Array::size() const { return empty() ? 0 : shape_size(shape()); }

void Array::accumulate(Array&& other) {
    XGRAD_ASSERT(!other.empty());
    if (empty()) {
        *this = std::move(other);
        return;
    }
    XGRAD_ASSERT(dtype() == other.dtype() && shape() == other.shape());
    visit_dtype(dtype(), [&](auto zero) {
        using T = decltype(zero);
        xt::noalias(get<T>()) += other.get<T>();
    });
}

Array Array::cast(Dtype target) const {
    return visit_dtype(dtype(), [&](auto from) {
        using From = decltype(from);
        const auto& source = get<From>();
        return visit_dtype(target, [&](auto to) {
            using To = decltype(to);
            return Array(xt::xarray<To>(xt::cast<To>(source)));
        });
    });
}

void Array::throw_dtype_mismatch(const char* context, Dtype requested) const {
    throw value_error(std::string(context) + ": expected a " + dtype_name(requested) +
                      " tensor, got " + (empty() ? std::string("an empty one") : dtype_name(dtype())));
}

void throw_not_floating(const char* context, Dtype dtype) {
    throw value_error(std::string(context) + ": expected a float32 or float64 tensor, got " +
                      dtype_name(dtype));
}

}  // namespace xgrad::detail

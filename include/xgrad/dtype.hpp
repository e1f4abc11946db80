#pragma once

// Element types and shapes shared by tensors, ops and the tape.

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include <xtensor/xstorage.hpp>

namespace xgrad {

/// Element type of a tensor. Gradients flow through float32 and float64 only;
/// int64 tensors carry labels and indices, and int8 and uint8 tensors carry
/// quantized values.
enum class Dtype : std::uint8_t { float32, float64, int64, int8, uint8 };

/// Dimensions of a tensor, outermost first. Up to four dimensions are stored
/// inline, so small shapes cost no heap allocation.
using Shape = xt::svector<std::size_t, 4>;

/// Returns "float32", "float64", "int64", "int8" or "uint8".
const char* dtype_name(Dtype dtype);

/// Formats a shape as "(2, 3)"; a scalar's empty shape is "()".
std::string shape_string(const Shape& shape);

/// Returns the number of elements of a tensor of this shape (1 for a scalar).
std::size_t shape_size(const Shape& shape);

/// Element type of a C++ type: float, double, std::int64_t, std::int8_t or
/// std::uint8_t.
template <class T>
constexpr Dtype dtype_of() {
    if constexpr (std::is_same_v<T, float>) {
        return Dtype::float32;
    } else if constexpr (std::is_same_v<T, double>) {
        return Dtype::float64;
    } else if constexpr (std::is_same_v<T, std::int8_t>) {
        return Dtype::int8;
    } else if constexpr (std::is_same_v<T, std::uint8_t>) {
        return Dtype::uint8;
    } else {
        static_assert(std::is_same_v<T, std::int64_t>,
                      "xgrad holds float, double, int64_t, int8_t or uint8_t");
        return Dtype::int64;
    }
}

/// True for float32 and float64, the dtypes that carry gradients.
constexpr bool is_floating(Dtype dtype) { return dtype == Dtype::float32 || dtype == Dtype::float64; }

}  // namespace xgrad

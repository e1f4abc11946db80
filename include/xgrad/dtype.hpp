#pragma once

// Element types and shapes shared by tensors, ops and the tape.

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include <xtensor/xstorage.hpp>

namespace xgrad {

/// Element type of a tensor. Gradients flow through float32 and float64 only;
/// int64 tensors carry labels and indices.
enum class Dtype : std::uint8_t { float32, float64, int64 };

/// Dimensions of a tensor, outermost first. Up to four dimensions are stored
/// inline, so small shapes cost no heap allocation.
using Shape = xt::svector<std::size_t, 4>;

/// Returns "float32", "float64" or "int64".
const char* dtype_name(Dtype dtype);

/// Formats a shape as "(2, 3)"; a scalar's empty shape is "()".
std::string shape_string(const Shape& shape);

/// Returns the number of elements of a tensor of this shape (1 for a scalar).
std::size_t shape_size(const Shape& shape);

/// Element type of a C++ type: float, double or std::int64_t.
template <class T>
constexpr Dtype dtype_of() {
    if constexpr (std::is_same_v<T, float>) {
        return Dtype::float32;
    } else if constexpr (std::is_same_v<T, double>) {
        return Dtype::float64;
    } else {
        static_assert(std::is_same_v<T, std::int64_t>, "xgrad holds float, double or int64_t");
        return Dtype::int64;
    }
}

/// True for float32 and float64, the dtypes that carry gradients.
constexpr bool is_floating(Dtype dtype) { return dtype != Dtype::int64; }

}  // namespace xgrad

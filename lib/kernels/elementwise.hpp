#pragma once

// Loops over the elements of contiguous arrays, for ops whose formula is
// easier to state per element than as an xtensor expression.

#include <cstddef>

#include <xtensor/xarray.hpp>

namespace xgrad::detail {

/// out[i] = f(in[i]); `out` must already have the input's size.
template <class T, class F>
void map_into(const xt::xarray<T>& in, xt::xarray<T>& out, F f) {
    const T* source = in.data();
    T* target = out.data();
    const std::size_t n = in.size();
    for (std::size_t i = 0; i < n; ++i) {
        target[i] = f(source[i]);
    }
}

/// out[i] = f(a[i], b[i]) for two arrays of one shape; resizes `out`.
template <class T, class F>
void zip_into(const xt::xarray<T>& a, const xt::xarray<T>& b, xt::xarray<T>& out, F f) {
    out.resize(a.shape());
    const T* left = a.data();
    const T* right = b.data();
    T* target = out.data();
    const std::size_t n = a.size();
    for (std::size_t i = 0; i < n; ++i) {
        target[i] = f(left[i], right[i]);
    }
}

}  // namespace xgrad::detail

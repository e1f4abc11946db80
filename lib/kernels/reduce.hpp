#pragma once

// Reduction over any set of axes of a row-major array, the kernel behind
// sum, mean, max, min and sum_to_shape. Written out rather than taken from
// xtensor's reducers, which do not accept the small-vector axes used here and
// cost more per call on the small tensors of a tape.

#include <cstddef>

#include <xtensor/xarray.hpp>

#include "xgrad/dtype.hpp"

namespace xgrad::detail {

/// Reduces `input` into `out`, whose shape is `kept` (the input's shape with
/// extent 1 on each reduced axis, so of equal rank). Each output element
/// starts at `init` and folds in its inputs with `combine(accumulator, x)`.
template <class T, class Combine>
void reduce_into(const xt::xarray<T>& input, const Shape& kept, xt::xarray<T>& out, T init,
                 Combine combine) {
    const Shape& shape = input.shape();
    const std::size_t rank = shape.size();
    out.resize(kept);
    out.fill(init);
    if (input.size() == 0) {
        return;
    }
    if (rank == 0) {
        out.flat(0) = combine(init, input.flat(0));
        return;
    }

    // Output stride per input dimension; 0 on a reduced axis.
    Shape out_strides(rank);
    std::size_t stride = 1;
    for (std::size_t d = rank; d-- > 0;) {
        out_strides[d] = (kept[d] == 1) ? 0 : stride;
        stride *= kept[d];
    }

    const std::size_t inner = shape[rank - 1];
    const std::size_t inner_stride = out_strides[rank - 1];
    const T* in = input.data();
    T* result = out.data();
    Shape index(rank, 0);
    std::size_t base = 0;
    for (std::size_t done = 0; done < input.size(); done += inner) {
        if (inner_stride == 0) {
            T accumulator = result[base];
            for (std::size_t j = 0; j < inner; ++j) {
                accumulator = combine(accumulator, in[done + j]);
            }
            result[base] = accumulator;
        } else {
            for (std::size_t j = 0; j < inner; ++j) {
                result[base + j] = combine(result[base + j], in[done + j]);
            }
        }
        // Advance the multi-index over the outer dimensions, carrying.
        for (std::size_t d = rank - 1; d-- > 0;) {
            base += out_strides[d];
            if (++index[d] < shape[d]) {
                break;
            }
            base -= out_strides[d] * shape[d];
            index[d] = 0;
        }
    }
}

/// `shape` with extent 1 on each axis in `axes` (which must be valid).
template <class Axes>
Shape keepdims_shape(const Shape& shape, const Axes& axes) {
    Shape kept = shape;
    for (auto axis : axes) {
        kept[static_cast<std::size_t>(axis)] = 1;
    }
    return kept;
}

}  // namespace xgrad::detail

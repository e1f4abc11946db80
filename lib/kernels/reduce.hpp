#pragma once

// Reduction over any set of axes of a row-major array, the kernel behind
// sum, mean, max, min and sum_to_shape. Written out rather than taken from
// xtensor's reducers, which do not accept the small-vector axes used here and
// cost more per call on the small tensors of a tape.

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>

#include "xgrad/dtype.hpp"

namespace xgrad::detail {

/// Reduces `input` into `out`, whose shape is `kept` (the input's shape with
/// extent 1 on each reduced axis, so of equal rank). Each output element
/// starts at `init` and folds in its inputs with `combine(accumulator, x)`,
/// carried in type Acc and converted to T at the end. Summing float32 in a
/// double accumulator (see sum_into) keeps large sums exact: a float32 running
/// total stops growing near 2^24 = 16,777,216.
template <class Acc, class T, class Combine>
void reduce_into(const xt::xarray<T>& input, const Shape& kept, xt::xarray<T>& out, Acc init,
                 Combine combine) {
    const Shape& shape = input.shape();
    const std::size_t rank = shape.size();
    out.resize(kept);
    const std::size_t out_size = out.size();

    // The accumulators: the output itself when Acc is T, otherwise a
    // per-thread scratch buffer that keeps its memory between calls.
    thread_local std::vector<Acc> scratch;
    Acc* result = nullptr;
    if constexpr (std::is_same_v<Acc, T>) {
        result = out.data();
    } else {
        scratch.resize(out_size);
        result = scratch.data();
    }
    std::fill(result, result + out_size, init);

    if (input.size() != 0 && rank == 0) {
        result[0] = combine(init, static_cast<Acc>(input.flat(0)));
    } else if (input.size() != 0) {
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
        Shape index(rank, 0);
        std::size_t base = 0;
        for (std::size_t done = 0; done < input.size(); done += inner) {
            if (inner_stride == 0) {
                Acc accumulator = result[base];
                for (std::size_t j = 0; j < inner; ++j) {
                    accumulator = combine(accumulator, static_cast<Acc>(in[done + j]));
                }
                result[base] = accumulator;
            } else {
                for (std::size_t j = 0; j < inner; ++j) {
                    result[base + j] = combine(result[base + j], static_cast<Acc>(in[done + j]));
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

    if constexpr (!std::is_same_v<Acc, T>) {
        T* target = out.data();
        for (std::size_t i = 0; i < out_size; ++i) {
            target[i] = static_cast<T>(result[i]);
        }
    }
}

/// Sums `input` into `out` (shape `kept`, as for reduce_into), accumulating
/// in double for both float32 and float64.
template <class T>
void sum_into(const xt::xarray<T>& input, const Shape& kept, xt::xarray<T>& out) {
    reduce_into<double>(input, kept, out, 0.0, [](double total, double x) { return total + x; });
}

/// The sum of n contiguous values, accumulated in double as in sum_into.
/// Four partial sums let consecutive additions run in parallel instead of
/// each waiting for the previous one.
template <class T>
double sum_contiguous(const T* values, std::size_t n) {
    double partial[4] = {0.0, 0.0, 0.0, 0.0};
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (std::size_t lane = 0; lane < 4; ++lane) {
            partial[lane] += static_cast<double>(values[i + lane]);
        }
    }
    double total = (partial[0] + partial[1]) + (partial[2] + partial[3]);
    for (; i < n; ++i) {
        total += static_cast<double>(values[i]);
    }
    return total;
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

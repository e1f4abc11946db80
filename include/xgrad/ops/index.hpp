#pragma once

// Selecting elements by position. Index tensors are int64; an index out of
// range throws value_error naming the op, the index and the extent.

#include <cstdint>
#include <limits>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Elements start, start + step, ... (before stop) along `axis`, with
/// Python's slice rules: negative start and stop count from the end, and
/// both are clamped to the axis, so an empty result is possible. `step` must
/// be positive.  dx is zero except at the selected positions, which get dy.
Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start,
             std::int64_t stop = std::numeric_limits<std::int64_t>::max(), std::int64_t step = 1);

/// The slices of x at the given positions along `axis`, in that order, as
/// PyTorch's index_select. `index` is a one-dimensional int64 tensor; its
/// entries may repeat. The output has x's shape with extent index.size() on
/// `axis`.  dx sums dy into the selected positions (repeats add up).
Tensor index_select(const Tensor& x, std::int64_t axis, const Tensor& index);

/// PyTorch's gather: out[i][j][k] = x[index[i][j][k]][j][k] for axis 0 (and
/// likewise for other axes). `index` is int64 with x's rank; its extents may
/// not exceed x's on the other axes. The output has index's shape.
/// dx sums dy into the gathered positions.
Tensor gather(const Tensor& x, std::int64_t axis, const Tensor& index);

}  // namespace xgrad

#pragma once

// Ops that rearrange elements without computing new values. Each returns a
// new tensor (values are copied, never aliased), and its gradient moves the
// output gradient back to where each element came from.

#include <cstdint>
#include <vector>

#include "xgrad/ops/reduce.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad {

/// The same elements in row-major order with a new shape. One extent may be
/// -1, inferred from the others. Throws shape_error when the element counts
/// differ.  dx = dy reshaped to x's shape.
Tensor reshape(const Tensor& x, const Axes& shape);

/// Merges the dimensions from `start_axis` to the last into one, as
/// PyTorch's flatten(x, start_dim); flatten(x) of a batch (n, c, h, w)
/// gives (n, c * h * w).
Tensor flatten(const Tensor& x, std::int64_t start_axis = 1);

/// Reorders the dimensions: output dimension i is input dimension axes[i].
/// `axes` must be a permutation of 0 .. rank - 1 (negative values allowed).
/// dx = dy permuted by the inverse permutation.
Tensor permute(const Tensor& x, const Axes& axes);

/// Swaps two dimensions.
Tensor transpose(const Tensor& x, std::int64_t axis0 = -2, std::int64_t axis1 = -1);

/// Joins tensors of one dtype along an existing axis; all other extents must
/// match.  Each input's gradient is its slab of dy.
Tensor concat(const std::vector<Tensor>& tensors, std::int64_t axis = 0);

/// Joins tensors of one shape and dtype along a new axis inserted at `axis`
/// (from 0 to rank, negative values counted from rank + 1).
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t axis = 0);

}  // namespace xgrad

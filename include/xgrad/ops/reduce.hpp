#pragma once

// Reductions over any set of axes. `axes` may hold negative axes (counted
// from the end) and may be empty, which reduces over every axis. With
// keepdims the reduced axes stay as extent 1, so the result broadcasts
// against the input; without it they are removed. Float inputs only.

#include <cstdint>

#include <xtensor/xstorage.hpp>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// A list of axes; negative values count from the last axis.
using Axes = xt::svector<std::int64_t, 4>;

/// Sum.  dx = dy broadcast back to x's shape.
Tensor sum(const Tensor& x, const Axes& axes = {}, bool keepdims = false);

/// Arithmetic mean.  dx = dy / n broadcast back, with n the number of
/// elements reduced into each output element. The mean of no elements is NaN.
Tensor mean(const Tensor& x, const Axes& axes = {}, bool keepdims = false);

/// Maximum. The gradient is split evenly among the elements that tie for
/// the maximum, as for PyTorch's amax. Throws value_error on an empty
/// reduction.
Tensor max(const Tensor& x, const Axes& axes = {}, bool keepdims = false);

/// Minimum, with ties treated as in max().
Tensor min(const Tensor& x, const Axes& axes = {}, bool keepdims = false);

/// Index of the largest element along `axis`, as an int64 tensor with that
/// axis removed; the first index wins a tie, and the first NaN wins over
/// every number, as in NumPy. Not differentiable, so it is
/// computed directly and never recorded.
Tensor argmax(const Tensor& x, std::int64_t axis = -1);

}  // namespace xgrad

#pragma once

// Internal entry point of the batch_norm op for the batch normalization
// layers.

#include "xgrad/ops/norm.hpp"

namespace xgrad::detail {

/// batch_norm() that also stores in `statistics` the batch statistics it
/// normalized with, so that a layer updating its running statistics does not
/// compute them again in a second pass over x.
Tensor batch_norm_with_statistics(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                  double eps, BatchStatistics& statistics);

}  // namespace xgrad::detail

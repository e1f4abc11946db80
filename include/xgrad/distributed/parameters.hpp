#pragma once

// Copying and averaging a model's parameters and buffers across the ranks of
// a data-parallel run. Every rank must call these functions, in the same
// order, with a model of the same structure: the same number of parameters
// and buffers, in the same order, with the same shapes and dtypes. When the
// structures differ, every rank throws distributed_error naming the rank
// that differs, before any value changes.
//
// The tensors travel packed into contiguous buffers, one for float32 values
// and one for float64 and int64 values, in messages of at most
// `bucket_bytes` bytes, so a model of many small tensors costs few messages.

#include <cstddef>

#include "xgrad/distributed/context.hpp"
#include "xgrad/nn/module.hpp"

namespace xgrad::distributed {

/// Default size in bytes of the messages that carry packed tensors: 1 MiB.
inline constexpr std::size_t kDefaultBucketBytes = std::size_t{1} << 20;

/// Copies the parameters and buffers of `model` on rank `root` into `model`
/// on every other rank, so that all ranks start training from the same
/// values. Values change in place, so optimizers and averagers that hold
/// the parameters stay valid. Throws value_error when root is not a rank of
/// `context` or bucket_bytes is zero.
void broadcast_parameters(const Context& context, nn::Module& model, std::size_t root = 0,
                          std::size_t bucket_bytes = kDefaultBucketBytes);

/// Replaces the parameters and buffers of `model` on every rank by their
/// weighted average over the ranks, sum_r(weight_r * value_r) / sum_r(weight_r).
/// Federated averaging does this after local training, with a client's
/// number of examples as its weight (McMahan et al., 2017,
/// "Communication-Efficient Learning of Deep Networks from Decentralized
/// Data"). Equal weights (the default) give the plain mean. Int64 buffers, such as batch norm's
/// num_batches_tracked, are averaged in float64 and rounded to the nearest
/// integer. Throws value_error on every rank when a rank passes a negative
/// or non-finite weight, or when the weights sum to zero.
void average_parameters(const Context& context, nn::Module& model, double weight = 1.0,
                        std::size_t bucket_bytes = kDefaultBucketBytes);

}  // namespace xgrad::distributed

#pragma once

// GradientAverager: the communication step of data-parallel training. Every
// rank computes the loss and gradients of its own shard of a batch. After
// backward() and before the optimizer's step(), average() replaces each
// gradient by its average over the ranks. All ranks then apply the same
// update to the same parameters, so they stay equal without copying values.
//
//     distributed::GradientAverager averager(context, model);
//     for (const data::Batch& batch : loader) {     // a sharded loader
//         optimizer.zero_grad();
//         loss_fn(model(batch.inputs), batch.targets).backward();
//         averager.average();
//         optimizer.step();
//     }
//
// With a mean loss, equal local batches of B examples on N ranks give the
// gradient of the mean loss over all N * B examples. The run then follows one
// process training with batches of N * B, up to the rounding of a different
// summation order. When the local batches differ in size, pass each rank's
// example count as the weight: the weighted average of per-rank means is
// again the mean over all examples.
//
// The gradients are packed into two contiguous buffers (float32, float64),
// which are summed in place with one MPI_Allreduce per bucket of at most
// bucket_bytes bytes. The buffers are allocated once, in the constructor.

#include <cstddef>
#include <memory>
#include <vector>

#include "xgrad/distributed/context.hpp"
#include "xgrad/distributed/parameters.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::distributed {

namespace detail {
class FlatBuffer;
}  // namespace detail

struct GradientAveragerOptions {
    /// Maximum size of one message, in bytes; must be positive. Smaller
    /// buckets mean more messages of the same total size.
    std::size_t bucket_bytes = kDefaultBucketBytes;
};

class GradientAverager {
public:
    /// Averages the gradients of `parameters`, which must be defined float32
    /// or float64 tensors that require grad, the same number with the same
    /// shapes and dtypes on every rank. Every rank must construct it
    /// together. Throws value_error for a parameter that does not qualify or
    /// for bucket_bytes zero, and distributed_error on every rank when the
    /// ranks' parameters differ. `context` must outlive the averager.
    GradientAverager(const Context& context, std::vector<Tensor> parameters,
                     GradientAveragerOptions options = {});

    /// Averages the gradients of model.parameters().
    GradientAverager(const Context& context, const nn::Module& model,
                     GradientAveragerOptions options = {});

    ~GradientAverager();
    GradientAverager(GradientAverager&&) noexcept;
    GradientAverager& operator=(GradientAverager&&) noexcept;

    /// Replaces each parameter's gradient by sum_r(weight_r * grad_r) /
    /// sum_r(weight_r) over the ranks r, in place when the parameter has a
    /// gradient. Every rank must call it once per step. A rank where a
    /// parameter has no gradient (backward did not reach it) counts as
    /// contributing zeros, and a parameter without a gradient on every rank
    /// keeps none, so the optimizer skips it as it would in one process.
    ///
    /// `weight` is this rank's share: leave it at 1 when every rank's batch
    /// has the same size, or pass the number of examples in the local batch.
    /// Throws value_error on every rank, leaving the gradients as they were,
    /// when a rank passes a negative or non-finite weight or when the
    /// weights sum to zero.
    void average(double weight = 1.0);

    /// Number of MPI_Allreduce calls that average() makes.
    std::size_t bucket_count() const;

private:
    const Context* context_;
    std::vector<Tensor> parameters_;
    std::unique_ptr<detail::FlatBuffer> buffer_;
};

}  // namespace xgrad::distributed

#pragma once

// FederatedAveraging (FedAvg; McMahan et al., 2017, "Communication-Efficient
// Learning of Deep Networks from Decentralized Data"). Each rank trains its
// own copy of the model on its own shard for K local steps. Then the ranks
// replace their parameters and buffers by the average over the ranks,
// weighted by the number of examples each rank trained on in that round. The
// ranks exchange the model once per K steps instead of the gradients once
// per step.
//
//     distributed::broadcast_parameters(context, model);
//     distributed::FederatedAveraging fedavg(context, model, {.local_steps = 8});
//     for (const data::Batch& batch : loader) {     // a sharded loader
//         optimizer.zero_grad();
//         loss_fn(model(batch.inputs), batch.targets).backward();
//         optimizer.step();                         // local, no communication
//         fedavg.step(batch.targets.shape()[0]);    // averages every 8th call
//     }
//     fedavg.synchronize();                         // averages the last steps
//
// With local_steps = 1 and plain SGD (no momentum, no weight decay),
// averaging the parameters after one step equals averaging the gradients
// before it, so the run matches GradientAverager's.
//
// NOTE: Optimizer state (momentum, Adam's moments) stays local to each rank
// and is not averaged; McMahan et al. use plain SGD on the clients.

#include <cstddef>
#include <memory>

#include "xgrad/distributed/context.hpp"
#include "xgrad/distributed/parameters.hpp"
#include "xgrad/nn/module.hpp"

namespace xgrad::distributed {

namespace detail {
class FlatBuffer;
}  // namespace detail

struct FederatedAveragingOptions {
    /// Local optimizer steps per round (K), >= 1.
    std::size_t local_steps = 1;

    /// Maximum size of one message, in bytes; must be positive.
    std::size_t bucket_bytes = kDefaultBucketBytes;
};

class FederatedAveraging {
public:
    /// Every rank must construct it together, with a model of the same
    /// structure. Throws value_error for local_steps or bucket_bytes zero, and
    /// distributed_error on every rank when the models differ. `context` and
    /// `model` must outlive it.
    FederatedAveraging(const Context& context, nn::Module& model,
                       FederatedAveragingOptions options = {});

    ~FederatedAveraging();
    FederatedAveraging(FederatedAveraging&&) noexcept;
    FederatedAveraging& operator=(FederatedAveraging&&) noexcept;

    /// Records one local optimizer step on `examples` examples (>= 0 and
    /// finite). The local_steps-th step of a round averages the model across
    /// the ranks, weighting each rank by the examples of its round, and
    /// returns true. Other steps return false. Every rank must take the same
    /// number of steps, as sharded loaders with equal batch counts do. A
    /// negative or non-finite count on any rank makes that average throw
    /// value_error on every rank, so no rank is left waiting.
    bool step(double examples = 1.0);

    /// Ends the current round early: averages the model when any rank has
    /// taken a step since the last average, and returns whether it did.
    /// Every rank must call it, for example after the last epoch and before
    /// an evaluation or a checkpoint.
    bool synchronize();

    /// Number of averages so far.
    std::size_t rounds() const { return rounds_; }

    /// Local steps taken since the last average.
    std::size_t pending_steps() const { return pending_steps_; }

private:
    bool average();

    const Context* context_;
    nn::Module* model_;
    FederatedAveragingOptions options_;
    std::unique_ptr<detail::FlatBuffer> buffer_;
    std::size_t rounds_ = 0;
    std::size_t pending_steps_ = 0;
    double pending_examples_ = 0.0;
};

}  // namespace xgrad::distributed

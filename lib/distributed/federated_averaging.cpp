#include "xgrad/distributed/federated_averaging.hpp"

#include <cmath>
#include <string>

#include "flat_buffer.hpp"
#include "xgrad/error.hpp"

namespace xgrad::distributed {

FederatedAveraging::FederatedAveraging(const Context& context, nn::Module& model,
                                       FederatedAveragingOptions options)
    : context_(&context), model_(&model), options_(options) {
    if (options_.local_steps == 0) {
        throw value_error("FederatedAveraging: local_steps must be at least 1");
    }
    buffer_ = std::make_unique<detail::FlatBuffer>(detail::model_tensors(model),
                                                   detail::kAverageHeaderSize,
                                                   options_.bucket_bytes, "FederatedAveraging");
    buffer_->check_same_layout(context);
}

FederatedAveraging::~FederatedAveraging() = default;
FederatedAveraging::FederatedAveraging(FederatedAveraging&&) noexcept = default;
FederatedAveraging& FederatedAveraging::operator=(FederatedAveraging&&) noexcept = default;

bool FederatedAveraging::step(double examples) {
    // An invalid count is not thrown here, where the other ranks would go on
    // to wait for this one in MPI_Allreduce. It makes the round's weight NaN,
    // and the average at the end of the round throws on every rank.
    const bool valid = std::isfinite(examples) && examples >= 0.0;
    ++pending_steps_;
    pending_examples_ += valid ? examples : std::nan("");
    if (pending_steps_ < options_.local_steps) {
        return false;
    }
    return average();
}

bool FederatedAveraging::synchronize() { return average(); }

bool FederatedAveraging::average() {
    // The model's tensors are fetched again each round because a module may
    // have replaced a parameter or buffer handle since the constructor. The
    // layout must stay the same.
    const std::vector<Tensor> tensors = detail::model_tensors(*model_);
    if (tensors.size() != buffer_->tensor_count()) {
        throw value_error("FederatedAveraging: the model had " +
                          std::to_string(buffer_->tensor_count()) +
                          " parameters and buffers at construction and has " +
                          std::to_string(tensors.size()) + " now");
    }
    const double weight = pending_examples_;
    pending_steps_ = 0;
    pending_examples_ = 0.0;
    const bool averaged = detail::average_values(
        *context_, *buffer_, tensors, weight, true,
        "FederatedAveraging (the weight is the sum of the round's step() examples)");
    if (averaged) {
        ++rounds_;
    }
    return averaged;
}

}  // namespace xgrad::distributed

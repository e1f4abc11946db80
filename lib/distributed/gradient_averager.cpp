#include "xgrad/distributed/gradient_averager.hpp"

#include <cmath>
#include <string>
#include <utility>

#include "flat_buffer.hpp"
#include "xgrad/error.hpp"

namespace xgrad::distributed {

namespace {

constexpr const char* kCaller = "GradientAverager";

// Header of the packed gradients: the rank's weight, a count of invalid
// weights, then one flag per parameter, 1 when the rank has a gradient for it.
constexpr std::size_t kWeight = 0;
constexpr std::size_t kInvalidWeights = 1;
constexpr std::size_t kFirstFlag = 2;

std::vector<Tensor> checked(std::vector<Tensor> parameters) {
    for (std::size_t i = 0; i < parameters.size(); ++i) {
        const Tensor& parameter = parameters[i];
        if (!parameter.defined() ||
            (parameter.dtype() != Dtype::float32 && parameter.dtype() != Dtype::float64) ||
            !parameter.requires_grad()) {
            throw value_error(std::string(kCaller) + ": parameter " + std::to_string(i) +
                              " must be a defined float32 or float64 tensor that requires grad");
        }
    }
    return parameters;
}

}  // namespace

GradientAverager::GradientAverager(const Context& context, std::vector<Tensor> parameters,
                                   GradientAveragerOptions options)
    : context_(&context), parameters_(checked(std::move(parameters))) {
    buffer_ = std::make_unique<detail::FlatBuffer>(parameters_, kFirstFlag + parameters_.size(),
                                                   options.bucket_bytes, kCaller);
    buffer_->check_same_layout(context);
}

GradientAverager::GradientAverager(const Context& context, const nn::Module& model,
                                   GradientAveragerOptions options)
    : GradientAverager(context, model.parameters(), options) {}

GradientAverager::~GradientAverager() = default;
GradientAverager::GradientAverager(GradientAverager&&) noexcept = default;
GradientAverager& GradientAverager::operator=(GradientAverager&&) noexcept = default;

std::size_t GradientAverager::bucket_count() const { return buffer_->bucket_count(); }

void GradientAverager::average(double weight) {
    // As in average_values(), an invalid weight is sent as zero and reported
    // by every rank after the sum, so no rank throws alone.
    const bool valid = std::isfinite(weight) && weight >= 0.0;
    const double used = valid ? weight : 0.0;
    if (context_->size() == 1 && valid && used > 0.0) {
        // The average over one rank is the gradient itself. Skipping the
        // packing saves a copy of every gradient and keeps it bit for bit.
        return;
    }
    buffer_->set_header(kWeight, used);
    buffer_->set_header(kInvalidWeights, valid ? 0.0 : 1.0);
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
        const Tensor grad = parameters_[i].grad();
        if (grad.defined()) {
            buffer_->pack(i, grad, used);
        } else {
            buffer_->pack_zeros(i);
        }
        buffer_->set_header(kFirstFlag + i, grad.defined() ? 1.0 : 0.0);
    }
    buffer_->all_reduce_sum(*context_);

    const double invalid = buffer_->header(kInvalidWeights);
    if (invalid > 0.0) {
        throw value_error("GradientAverager::average: " + format_number(invalid) + " of " +
                          std::to_string(context_->size()) +
                          " ranks passed a negative or non-finite weight (this rank passed " +
                          format_number(weight) +
                          "); pass the number of examples in the local batch, or nothing");
    }
    const double total = buffer_->header(kWeight);
    if (total == 0.0) {
        throw value_error("GradientAverager::average: the weights of all " +
                          std::to_string(context_->size()) +
                          " ranks sum to zero; at least one rank needs a positive weight");
    }
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
        if (buffer_->header(kFirstFlag + i) == 0.0) {
            continue;
        }
        Tensor grad = parameters_[i].grad();
        if (grad.defined()) {
            buffer_->unpack(i, grad, 1.0 / total);
        } else {
            parameters_[i].set_grad(buffer_->unpack_new(i, 1.0 / total));
        }
    }
}

}  // namespace xgrad::distributed

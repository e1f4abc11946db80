#include "xgrad/distributed/parameters.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "flat_buffer.hpp"
#include "mpi.hpp"
#include "xgrad/autograd.hpp"
#include "xgrad/error.hpp"

namespace xgrad::distributed {

namespace detail {

std::vector<Tensor> model_tensors(const nn::Module& model) {
    std::vector<Tensor> tensors;
    for (const auto& entry : model.state_dict()) {
        tensors.push_back(entry.second);
    }
    return tensors;
}

bool average_values(const Context& context, FlatBuffer& buffer, const std::vector<Tensor>& tensors,
                    double weight, bool allow_zero_total, const std::string& caller) {
    // An invalid weight still takes part in the sum, as zero, so that every
    // rank reaches the same decision instead of one rank throwing alone and
    // leaving the others waiting in MPI_Allreduce.
    const bool valid = std::isfinite(weight) && weight >= 0.0;
    const double used = valid ? weight : 0.0;
    if (context.size() == 1 && valid && used > 0.0) {
        return true;  // the average over one rank is the rank's own values
    }
    buffer.set_header(0, used);
    buffer.set_header(1, valid ? 0.0 : 1.0);
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        buffer.pack(i, tensors[i], used);
    }
    buffer.all_reduce_sum(context);

    const double invalid = buffer.header(1);
    if (invalid > 0.0) {
        throw value_error(caller + ": " + format_number(invalid) + " of " +
                          std::to_string(context.size()) +
                          " ranks passed a negative or non-finite weight (this rank passed " +
                          format_number(weight) + ")");
    }
    const double total = buffer.header(0);
    if (total == 0.0) {
        if (allow_zero_total) {
            return false;
        }
        throw value_error(caller + ": the weights of all " + std::to_string(context.size()) +
                          " ranks sum to zero; at least one rank needs a positive weight");
    }
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        Tensor target = tensors[i];
        buffer.unpack(i, target, 1.0 / total);
    }
    return true;
}

}  // namespace detail

void broadcast_parameters(const Context& context, nn::Module& model, std::size_t root,
                          std::size_t bucket_bytes) {
    if (root >= context.size()) {
        throw value_error("broadcast_parameters: root must be a rank below " +
                          std::to_string(context.size()) + ", got " + std::to_string(root));
    }
    const std::vector<Tensor> tensors = detail::model_tensors(model);
    detail::FlatBuffer buffer(tensors, 0, bucket_bytes, "broadcast_parameters");
    buffer.check_same_layout(context);

    if (context.rank() == root) {
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            buffer.pack(i, tensors[i], 1.0);
        }
    }
    buffer.broadcast(context, static_cast<int>(root));
    if (context.rank() != root) {
        NoGradGuard no_grad;
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            Tensor target = tensors[i];
            buffer.unpack(i, target, 1.0);
        }
    }
}

void average_parameters(const Context& context, nn::Module& model, double weight,
                        std::size_t bucket_bytes) {
    const std::vector<Tensor> tensors = detail::model_tensors(model);
    detail::FlatBuffer buffer(tensors, detail::kAverageHeaderSize, bucket_bytes,
                              "average_parameters");
    buffer.check_same_layout(context);
    detail::average_values(context, buffer, tensors, weight, false, "average_parameters");
}

}  // namespace xgrad::distributed

#include "xgrad/nn/loss.hpp"

namespace xgrad::nn {

std::string Loss::extra_repr() const {
    switch (reduction_) {
        case Reduction::none:
            return "reduction=none";
        case Reduction::sum:
            return "reduction=sum";
        case Reduction::mean:
            break;
    }
    return "reduction=mean";
}

Tensor MSELoss::forward(const Tensor& input, const Tensor& target) {
    return mse_loss(input, target, reduction());
}

Tensor CrossEntropyLoss::forward(const Tensor& input, const Tensor& target) {
    return cross_entropy(input, target, reduction());
}

Tensor BCEWithLogitsLoss::forward(const Tensor& input, const Tensor& target) {
    return binary_cross_entropy_with_logits(input, target, reduction());
}

}  // namespace xgrad::nn

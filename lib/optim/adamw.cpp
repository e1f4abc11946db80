#include "xgrad/optim/adamw.hpp"

namespace xgrad::optim {

namespace {

AdamOptions as_adam_options(const AdamWOptions& options) {
    return AdamOptions{
        .lr = options.lr,
        .betas = options.betas,
        .eps = options.eps,
        .weight_decay = options.weight_decay,
        .amsgrad = options.amsgrad,
    };
}

}  // namespace

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : AdamW(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : Adam("AdamW", std::move(groups), as_adam_options(options), /*decoupled_weight_decay=*/true),
      options_(options) {}

}  // namespace xgrad::optim

#pragma once

// Losses as modules. Each calls the loss op of the same name (see
// include/xgrad/ops/loss.hpp) with the reduction chosen at construction.

#include <string>

#include "xgrad/nn/module.hpp"
#include "xgrad/ops/loss.hpp"

namespace xgrad::nn {

/// Base of the loss modules: forward takes a prediction and a target.
class Loss : public Module {
public:
    explicit Loss(Reduction reduction) : reduction_(reduction) {}

    virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
    Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
    using Module::forward;

    Reduction reduction() const { return reduction_; }
    std::string extra_repr() const override;

private:
    Reduction reduction_;
};

/// Mean squared error between a prediction and a target of the same shape.
class MSELoss : public Loss {
public:
    explicit MSELoss(Reduction reduction = Reduction::mean) : Loss(reduction) {}
    Tensor forward(const Tensor& input, const Tensor& target) override;
};

/// Cross-entropy of logits (batch, classes) against int64 labels (batch).
class CrossEntropyLoss : public Loss {
public:
    explicit CrossEntropyLoss(Reduction reduction = Reduction::mean) : Loss(reduction) {}
    Tensor forward(const Tensor& input, const Tensor& target) override;
};

/// Binary cross-entropy on logits, with targets in [0, 1].
class BCEWithLogitsLoss : public Loss {
public:
    explicit BCEWithLogitsLoss(Reduction reduction = Reduction::mean) : Loss(reduction) {}
    Tensor forward(const Tensor& input, const Tensor& target) override;
};

}  // namespace xgrad::nn

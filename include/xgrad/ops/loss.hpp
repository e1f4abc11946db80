#pragma once

// Loss functions. Each computes a per-element or per-sample loss and reduces
// it: Reduction::mean (the default) averages, Reduction::sum adds, and
// Reduction::none returns the unreduced losses.

#include <cstdint>

#include "xgrad/tensor.hpp"

namespace xgrad {

enum class Reduction : std::int64_t { none, mean, sum };

/// Cross-entropy of logits (batch, classes) against int64 class labels
/// (batch): loss_i = logsumexp(logits_i) - logits_i[label_i], computed in the
/// stable form. dlogits_i = (softmax(logits_i) - onehot(label_i)) * dloss_i.
/// Throws value_error for a label outside [0, classes) and shape_error for
/// mismatched batch sizes; other logit ranks throw not_implemented.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels,
                     Reduction reduction = Reduction::mean);

/// Binary cross-entropy on logits, with targets in [0, 1] of the same shape:
/// loss = max(x, 0) - x * t + log(1 + e^-|x|), finite for any finite x.
/// dx = (sigmoid(x) - t) * dloss, dt = -x * dloss.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction = Reduction::mean);

/// Squared error (prediction - target)^2, same shapes required (no
/// broadcasting, which would silently compare the wrong elements).
/// dprediction = 2 (prediction - target) * dloss, dtarget = -dprediction.
Tensor mse_loss(const Tensor& prediction, const Tensor& target,
                Reduction reduction = Reduction::mean);

}  // namespace xgrad

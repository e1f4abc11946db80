#pragma once

// Batch-norm folding: a convolution followed by batch normalization with
// fixed statistics is one convolution with a changed weight and bias.
//
// For conv2d(x, W, b) followed by batch_norm_inference with running mean m,
// running variance v, weight gamma, bias beta and eps, per output channel c:
//
//     s_c  = gamma_c / sqrt(v_c + eps)
//     W'_c = s_c * W_c                   (all of W's entries for channel c)
//     b'_c = s_c * (b_c - m_c) + beta_c   (b_c = 0 without a bias)
//
// and conv2d(x, W', b') equals the pair up to float rounding. Folding
// before quantization gives the int8 convolution one weight per channel to
// quantize, and saves the batch-norm pass at inference.

#include "xgrad/graph/graph.hpp"

namespace xgrad::transforms {

/// Folds every batch_norm_inference node whose input is the output of a
/// conv2d node into that convolution, as above. A pair folds when the
/// convolution's output has no other use and is not a graph output, and when
/// the convolution's weight and bias and the batch norm's statistics, weight
/// and bias are parameters, buffers or constants. Other nodes are copied.
///
/// The folded weight and bias are new constants computed in double from the
/// tensors' values when the pass runs, in the weight's dtype: later training
/// of the original parameters does not reach them. Capture a model in eval
/// mode to get batch_norm_inference nodes; batch_norm nodes (training mode)
/// normalize with each batch's statistics and do not fold.
Graph fold_batch_norm(const Graph& graph);

}  // namespace xgrad::transforms

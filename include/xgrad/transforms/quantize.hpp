#pragma once

// Quantization as graph transforms, for graphs of `linear` and `conv2d`
// layers with any ops between them:
//
//   prepare_quantization()  attaches an observer to the input of every
//                           linear and conv2d node (the graph itself is
//                           unchanged);
//   Calibration::observe()  runs the float graph on a batch and feeds the
//                           observers;
//   convert_qat()           inserts fake quantization for training: each
//                           layer's input through fake_quantize with the
//                           calibrated parameters, each weight through
//                           fake_quantize_weight;
//   convert_int8()          replaces each linear by quantized_linear and each
//                           conv2d by quantized_conv2d, with int8 weights (one
//                           scale per output row or channel), per-tensor
//                           uint8 inputs and int32 accumulation.
//
// A layer is known by its weight's name. That is a parameter's name, or for
// a convolution folded by fold_batch_norm() the name of the folded constant,
// "<weight>.folded". For a CNN: capture in eval mode, fold_batch_norm(),
// prepare_quantization(), observe, convert_int8().
//
// Pruning masks are kept: convert_qat() quantizes the masked weight, and
// convert_int8() quantizes the weight times its mask, whose pruned entries
// are zero and stay exactly zero in int8.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/graph/graph.hpp"
#include "xgrad/io/npz.hpp"
#include "xgrad/quant/observer.hpp"

namespace xgrad::transforms {

struct QuantizationConfig {
    /// The activation observer, as quant::make_activation_observer() names
    /// it: "minmax", "moving_average", "histogram_percentile" or
    /// "histogram_mse".
    std::string activation_observer = "histogram_mse";
};

/// Parameters for the input of each linear and conv2d node, by the node's
/// weight name.
using ActivationParams = std::map<std::string, quant::QParams>;

/// A float graph with an observer on the input of each linear and conv2d
/// node.
class Calibration {
public:
    Calibration(Graph graph, const QuantizationConfig& config);

    /// Runs the graph on one batch (its inputs, as Graph::forward() takes
    /// them) and lets every observer see its layer's input.
    void observe(const std::vector<Tensor>& inputs);

    /// The parameters every observer chose. Throws value_error when no batch
    /// was observed.
    ActivationParams activation_params() const;

    /// The weight names of the linear and conv2d nodes, in execution order.
    const std::vector<std::string>& weights() const { return weights_; }

private:
    Graph graph_;
    std::vector<std::string> weights_;
    std::vector<std::size_t> inputs_;  ///< value id of each layer's input
    std::vector<std::unique_ptr<quant::Observer>> observers_;
};

/// Prepares `graph` for calibration.
Calibration prepare_quantization(const Graph& graph, const QuantizationConfig& config = {});

/// The graph with fake quantization around every linear and conv2d whose
/// weight name has parameters in `activations`, for quantization-aware
/// training: replay it, and backward trains the float weights through the
/// straight-through estimator.
Graph convert_qat(const Graph& graph, const ActivationParams& activations);

/// The graph with every linear whose weight name has parameters in
/// `activations` replaced by quantized_linear, and every such conv2d by
/// quantized_conv2d with the same stride, padding and dilation, for
/// inference. Fake quantization nodes from convert_qat() are dropped, so a
/// trained QAT graph converts directly. The int8 weights are constants taken
/// from the weights' values (times their masks) now. Throws not_implemented
/// when a layer's input parameters are not per-tensor affine_uint8.
Graph convert_int8(const Graph& graph, const ActivationParams& activations);

/// The int8 layers (quantized_linear and quantized_conv2d) of a graph from
/// convert_int8(), for saving: per layer
/// "<weight>.int8" (int8), "<weight>.scales" (float32), "<weight>.row_sums",
/// "<weight>.bias" when there is one, and "<weight>.input_scale" (float64)
/// and "<weight>.input_zero_point" (int64) as scalars.
io::NamedTensors quantized_state_dict(const Graph& int8_graph);

/// Loads the state saved from quantized_state_dict() into a graph of the
/// same structure (for example one converted from a freshly captured model).
/// Stride, padding and dilation come from the graph, not from the state.
/// Throws value_error listing every missing, unexpected or mismatched entry,
/// and changes nothing then.
void load_quantized_state_dict(Graph& int8_graph, const io::NamedTensors& state);

/// The name of the weight a linear node reads, through pruning masks and
/// fake quantization; empty when the weight is not a parameter.
std::string linear_weight_name(const Graph& graph, const Node& linear);

}  // namespace xgrad::transforms

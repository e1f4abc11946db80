#pragma once

// Quantization as graph transforms, for graphs of `linear` layers with any
// ops between them:
//
//   prepare_quantization()  attaches an observer to the input of every
//                           linear node (the graph itself is unchanged);
//   Calibration::observe()  runs the float graph on a batch and feeds the
//                           observers;
//   convert_qat()           inserts fake quantization for training: each
//                           linear's input through fake_quantize with the
//                           calibrated parameters, each weight through
//                           fake_quantize_weight;
//   convert_int8()          replaces each linear by quantized_linear, with
//                           per-row int8 weights, per-tensor uint8 inputs and
//                           int32 accumulation.
//
// Pruning masks are kept: convert_qat() quantizes the masked weight, and
// convert_int8() quantizes the weight's current values, whose pruned entries
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

/// Parameters for the input of each linear node, by the node's weight name.
using ActivationParams = std::map<std::string, quant::QParams>;

/// A float graph with an observer on the input of each linear node.
class Calibration {
public:
    Calibration(Graph graph, const QuantizationConfig& config);

    /// Runs the graph on one batch (its inputs, as Graph::forward() takes
    /// them) and lets every observer see its linear's input.
    void observe(const std::vector<Tensor>& inputs);

    /// The parameters every observer chose. Throws value_error when no batch
    /// was observed.
    ActivationParams activation_params() const;

    /// The weight names of the linear nodes, in execution order.
    const std::vector<std::string>& weights() const { return weights_; }

private:
    Graph graph_;
    std::vector<std::string> weights_;
    std::vector<std::size_t> inputs_;  ///< value id of each linear's input
    std::vector<std::unique_ptr<quant::Observer>> observers_;
};

/// Prepares `graph` for calibration.
Calibration prepare_quantization(const Graph& graph, const QuantizationConfig& config = {});

/// The graph with fake quantization around every linear whose weight name
/// has parameters in `activations`, for quantization-aware training: replay
/// it, and backward trains the float weights through the straight-through
/// estimator.
Graph convert_qat(const Graph& graph, const ActivationParams& activations);

/// The graph with every linear whose weight name has parameters in
/// `activations` replaced by quantized_linear, for inference. Fake
/// quantization nodes from convert_qat() are dropped, so a trained QAT graph
/// converts directly. The int8 weights are constants taken from the
/// weights' values now.
Graph convert_int8(const Graph& graph, const ActivationParams& activations);

/// The int8 layers of a graph from convert_int8(), for saving: per layer
/// "<weight>.int8" (int8), "<weight>.scales" (float32), "<weight>.row_sums",
/// "<weight>.bias" when there is one, and "<weight>.input_scale" (float64)
/// and "<weight>.input_zero_point" (int64) as scalars.
io::NamedTensors quantized_state_dict(const Graph& int8_graph);

/// Loads the state saved from quantized_state_dict() into a graph of the
/// same structure (for example one converted from a freshly captured model).
/// Throws value_error listing every missing, unexpected or mismatched entry,
/// and changes nothing then.
void load_quantized_state_dict(Graph& int8_graph, const io::NamedTensors& state);

/// The name of the weight a linear node reads, through pruning masks and
/// fake quantization; empty when the weight is not a parameter.
std::string linear_weight_name(const Graph& graph, const Node& linear);

}  // namespace xgrad::transforms

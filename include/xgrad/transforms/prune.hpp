#pragma once

// Pruning as graph transforms. A pruned weight W is read through a mask
// node, W ⊙ mask, where the mask is a buffer of zeros and ones:
//
//   add_masks()     inserts an all-ones mask in front of chosen weights;
//   update_masks()  sets masks to reach a sparsity by a chosen method, and
//                   zeroes the pruned weights and their optimizer state;
//   prune()         both, as one pass;
//   bake_masks()    folds the masks into the weights and removes the mask
//                   nodes.
//
// Because the mask is a node, the gradient of a pruned weight is exactly
// zero. Because update_masks() also zeroes the weight and, through
// Optimizer::mask_state(), its momentum and moment estimates, a pruned
// weight stays exactly zero under every optimizer in xgrad (weight decay
// included) for any number of steps. The eager model therefore computes what
// the masked graph computes, so it can be evaluated and saved directly.
//
// Masks only grow: already pruned weights are zero, so they have the lowest
// scores and stay pruned when the sparsity rises.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "xgrad/graph/graph.hpp"
#include "xgrad/io/npz.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/optim/optimizer.hpp"

namespace xgrad::transforms {

enum class PruneMethod {
    /// Smallest |w| within each layer (unstructured).
    magnitude,
    /// Smallest |w| across all chosen layers together (unstructured).
    global_magnitude,
    /// Whole rows (output units, the weight's first axis; output channels of
    /// a conv2d weight) with the smallest L1 norm.
    structured_l1,
    /// Whole rows with the smallest L2 norm.
    structured_l2,
    /// Uniformly random weights within each layer, a baseline.
    random,
};

struct PruneSpec {
    PruneMethod method = PruneMethod::magnitude;
    /// Fraction of each layer's weights (of its rows, for structured methods;
    /// of all chosen weights, for global_magnitude) to prune, in [0, 1]. The
    /// count is round(sparsity * n) with ties to even, as PyTorch's prune
    /// rounds, so a tiny layer can lose every weight.
    double sparsity = 0.5;
    /// When set, the number of weights (or rows) to prune in each layer
    /// instead of `sparsity`; not used by global_magnitude.
    std::optional<std::size_t> count = std::nullopt;
    /// Names of the weight parameters to prune; empty means the weight of
    /// every linear node.
    std::vector<std::string> parameters = {};
    /// Seed of PruneMethod::random.
    std::uint64_t seed = 0;
    /// With structured_l1 or structured_l2: prune each weight's channel
    /// parameters (see channel_parameters()) along with its rows, so that a
    /// pruned channel outputs exactly zero, in training and in eval mode,
    /// and remove_pruned_channels() can remove it. prune() inserts their
    /// masks. update_masks() prunes only the channel parameters that have a
    /// mask, so after add_masks() pass them in its list of names. Unstructured
    /// methods ignore this flag.
    bool prune_channel_parameters = true;
};

/// Names of the parameters that are the weight input of a `linear` node.
std::vector<std::string> linear_weights(const Graph& graph);

/// Names of the parameters that are the weight input of a `conv2d` node.
/// Their first axis is the output channel, so structured_l1 and
/// structured_l2 mask whole output channels (the weight keeps its shape).
/// Pass them, or them together with linear_weights(), as
/// PruneSpec::parameters to prune a convolutional network.
std::vector<std::string> conv_weights(const Graph& graph);

/// Names of the per-channel parameters that follow the named weights. For
/// every conv2d or linear node that reads one of them as its weight, these
/// are the node's bias and the weight (gamma) and bias (beta) of each
/// batch_norm or batch_norm_inference node that reads its output. Entry c
/// of each belongs to row c of the weight, its output channel. A zero weight
/// row is not a zero channel by itself: the bias adds a constant, and a batch
/// norm maps a zero channel to beta (training) or to
/// beta - gamma * mean / sqrt(var + eps) (eval). Only parameters of shape
/// (rows) are listed, in node order, each once.
std::vector<std::string> channel_parameters(const Graph& graph,
                                            const std::vector<std::string>& weights);

/// Inserts an all-ones mask buffer named "<name>.mask" and a `mul` node in
/// front of each named parameter. Every reader of the parameter then reads
/// the masked weight. Parameters that already have a mask keep it.
Graph add_masks(const Graph& graph, const std::vector<std::string>& parameters);

/// Sets the masks of a graph from add_masks() so that each chosen layer
/// reaches the spec's sparsity, zeroes the pruned weights in place and, when
/// an optimizer is given, their optimizer state. A structured method with
/// prune_channel_parameters does the same to the entries of the pruned rows
/// in each masked channel parameter. Ties in score are broken by
/// position: the earlier element is pruned first. Throws value_error for a
/// sparsity outside [0, 1], a count larger than the layer, or a parameter
/// without a mask.
void update_masks(Graph& graph, const PruneSpec& spec, optim::Optimizer* optimizer = nullptr);

/// add_masks() for the spec's parameters (and, for a structured method with
/// prune_channel_parameters, their channel parameters), then update_masks().
Graph prune(const Graph& graph, const PruneSpec& spec, optim::Optimizer* optimizer = nullptr);

/// Multiplies each masked weight by its mask in place and removes the mask
/// nodes and buffers, so the graph reads the weights directly. After baking,
/// training the weights is dense again: an optimizer keeps training the
/// surviving weights, and the pruned ones may grow back from zero.
Graph bake_masks(const Graph& graph);

/// Sparsity of one weight: its zeros after masking.
struct LayerSparsity {
    std::string name;
    std::size_t size = 0;
    std::size_t zeros = 0;
    double sparsity() const { return size == 0 ? 0.0 : static_cast<double>(zeros) / static_cast<double>(size); }
};

/// The sparsity of every masked weight, or of every linear weight when the
/// graph has no masks. The masks of channel parameters (biases, batch norm
/// weights) that follow a masked weight are not listed.
std::vector<LayerSparsity> sparsity_report(const Graph& graph);

/// The same for a module's parameters with two or more dimensions.
std::vector<LayerSparsity> sparsity_report(const nn::Module& module);

/// Total zeros over total size of a report.
double overall_sparsity(const std::vector<LayerSparsity>& report);

/// A table of a report: one line per layer, then the total.
std::string format_sparsity_report(const std::vector<LayerSparsity>& report);

/// The gradual schedule of Zhu and Gupta (2017), "To prune, or not to prune":
/// masks are updated every `frequency` steps from `begin_step` to `end_step`,
/// and the sparsity at an update step t is
///
///     s_t = s_f + (s_i - s_f) (1 - (t - begin_step) / (end_step - begin_step))^3,
///
/// rising fast at first and levelling off at `final_sparsity`. Between
/// updates it keeps the value of the last update.
struct PruningSchedule {
    double initial_sparsity = 0.0;
    double final_sparsity = 0.9;
    std::int64_t begin_step = 0;
    std::int64_t end_step = 1000;
    std::int64_t frequency = 100;

    /// Throws value_error for sparsities outside [0, 1], a final sparsity
    /// below the initial one, end_step < begin_step or frequency < 1.
    void validate() const;

    /// True when `step` is in [begin_step, end_step] and a multiple of
    /// `frequency` after begin_step, or is end_step itself.
    bool is_update_step(std::int64_t step) const;

    /// The sparsity the masks have after `step`: 0 before begin_step, the
    /// formula at the last update step up to `step`, final_sparsity from
    /// end_step on.
    double sparsity_at(std::int64_t step) const;
};

/// Drives a schedule during training on a graph with masks:
///
///     transforms::GradualPruner pruner(graph, spec, schedule, &optimizer);
///     for (std::int64_t step = 0; ...; ++step) {
///         pruner.step(step);       // updates masks on update steps
///         ... forward, backward, optimizer.step() ...
///     }
///
/// The spec chooses the method and the layers; the schedule overrides its
/// sparsity.
class GradualPruner {
public:
    GradualPruner(Graph& graph, PruneSpec spec, PruningSchedule schedule,
                  optim::Optimizer* optimizer = nullptr);

    /// Updates the masks when `step` is an update step; returns whether it did.
    bool step(std::int64_t step);

    /// The sparsity the schedule promises after the last step() call.
    double current_sparsity() const { return current_; }

private:
    Graph* graph_;
    PruneSpec spec_;
    PruningSchedule schedule_;
    optim::Optimizer* optimizer_;
    double current_ = 0.0;
};

/// A module's state with each weight of at least `min_sparsity` stored as
/// CSR arrays "<name>.values" (its dtype), "<name>.column_indices" and
/// "<name>.row_offsets" (int64) instead of dense, for smaller files of
/// pruned models. Other tensors are stored as they are.
io::NamedTensors compressed_state_dict(const nn::Module& module, double min_sparsity);

}  // namespace xgrad::transforms

#pragma once

// Channel removal: structured pruning that makes the model smaller.
//
// Structured pruning (prune.hpp) masks whole output channels but keeps every
// tensor's shape. remove_pruned_channels() then deletes the channels whose
// output is exactly zero: it slices the layer's weight, bias and batch norm
// tensors, and deletes the matching input channels of the next layer's
// weight, which only ever multiplied zeros. The result computes what the
// original computes, up to the rounding of the shorter sums.
//
// A channel of a conv2d or linear node is removed when all of these hold:
//   - its weight row is all zero (after its mask, where it has one), and its
//     bias entry is zero or the layer has no bias;
//   - the path from the layer's output to the next layer consists of
//     batch_norm or batch_norm_inference (at most one), relu, leaky_relu,
//     tanh, gelu, max_pool2d, avg_pool2d, global_avg_pool2d and a flatten
//     (a reshape of (N, C, ...) to (N, C * ...)). Each of these maps an
//     all-zero channel to an all-zero channel, with a batch norm only when:
//       batch_norm (training):        beta_c = 0 and eps > 0;
//       batch_norm_inference (eval):  beta_c = 0 and (gamma_c = 0 or mean_c = 0);
//   - the path ends in a conv2d (input channel c of its weight is removed)
//     or a linear node (the columns of channel c are removed: after a
//     flatten, the H * W columns c * H * W to (c + 1) * H * W - 1);
//   - every value on the path has exactly one reader and is not a graph
//     output, and every tensor to slice is a parameter, buffer or constant
//     (read directly or through a pruning mask) with no other reader.
// A channel with a nonzero constant must stay. The next convolution cannot
// absorb the constant into its bias, because with zero padding its border
// outputs sum fewer taps of the constant than its inner outputs.
// PruneSpec::prune_channel_parameters, on by default for structured
// methods, zeroes the bias and the batch norm's gamma and beta along with the
// weight rows, so the channels it prunes meet these rules.
//
// NOTE: the result equals the original only for finite inputs and weights:
// a zero channel times an infinite or NaN weight of the next layer gives NaN
// in the original and nothing in the result.

#include <cstddef>
#include <string>
#include <vector>

#include "xgrad/graph/graph.hpp"
#include "xgrad/io/npz.hpp"
#include "xgrad/nn/module.hpp"

namespace xgrad::transforms {

/// The channels of one layer before and after remove_pruned_channels().
struct LayerChannels {
    std::string weight;         ///< name of the layer's weight
    std::size_t before = 0;     ///< output channels (weight rows) before
    std::size_t after = 0;      ///< output channels after
    std::size_t kept_zero = 0;  ///< channels with an all-zero weight row that stayed
    std::string reason;         ///< why they stayed; empty when kept_zero is 0
};

/// The result of remove_pruned_channels(): the smaller graph and one entry
/// per conv2d or linear layer, in node order.
struct ChannelRemoval {
    Graph graph;
    std::vector<LayerChannels> layers;
};

/// Removes the exactly zero output channels of conv2d and linear nodes, as
/// the header comment describes. With each channel go its entries of the
/// layer's bias and batch norm (gamma, beta, running mean and variance) and
/// the matching input channels of the next layer's weight. Pruning masks in
/// front of these tensors are sliced with them and stay in place. When every
/// channel of a layer is zero, the first one stays, because a layer needs at
/// least one output channel.
///
/// `weights` names the layers whose channels may go, by the name of their
/// weight. Empty means every conv2d and linear node whose weight is a
/// parameter, buffer or constant. Layers whose weight another node computes
/// (a fake quantization, for example) are not listed in the report.
///
/// The sliced tensors are new: parameters stay parameters under their names
/// and require grad as before, so the result can be trained further by replay
/// with an optimizer built from its parameters (Graph::parameter_values()).
/// The input graph and its tensors are left unchanged. Throws value_error
/// when a name in `weights` is not the weight of a conv2d or linear node.
ChannelRemoval remove_pruned_channels(const Graph& graph,
                                      const std::vector<std::string>& weights = {});

/// A table of a report: one line per layer with its channels before and
/// after and the reason for kept zero channels, then the totals.
std::string format_channel_report(const std::vector<LayerChannels>& layers);

/// Total number of elements of the graph's parameters.
std::size_t parameter_count(const Graph& graph);

/// The graph's parameters and buffers under their names, in value order,
/// without pruning masks, sharing values with the graph. After
/// remove_pruned_channels() this is the smaller model's state: save it with
/// io::save_npz().
io::NamedTensors graph_state_dict(const Graph& graph);

/// Copies the graph's parameters and buffers (without pruning masks) into
/// the module's tensors of the same names. Build the module with the widths
/// of remove_pruned_channels()'s report; its eager forward then computes
/// what the graph computes, and save_model() stores the smaller model.
/// Module tensors the graph does not read (such as a batch norm's
/// num_batches_tracked) keep their values. A graph tensor with no module
/// tensor of its name, or with another shape or dtype, throws value_error
/// listing every mismatch, and then nothing is changed.
void load_graph_state(nn::Module& module, const Graph& graph);

}  // namespace xgrad::transforms

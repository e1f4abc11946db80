#include "xgrad/transforms/channels.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/autograd.hpp"
#include "xgrad/graph/passes.hpp"

#include "transforms/masks.hpp"

namespace xgrad::transforms {

namespace {

std::size_t product(const Shape& shape, std::size_t begin) {
    std::size_t result = 1;
    for (std::size_t d = begin; d < shape.size(); ++d) {
        result *= shape[d];
    }
    return result;
}

// The graph's structure as the analysis needs it: masks, and per value its
// number of readers (node inputs and graph outputs) and its last reader.
struct Uses {
    std::vector<Mask> masks;
    std::vector<std::size_t> count;
    std::vector<std::size_t> reader;
    std::vector<bool> output;

    explicit Uses(const Graph& graph)
        : masks(find_masks(graph)),
          count(graph.values().size(), 0),
          reader(graph.values().size(), 0),
          output(graph.values().size(), false) {
        for (std::size_t n = 0; n < graph.nodes().size(); ++n) {
            for (std::size_t id : graph.nodes()[n].inputs) {
                ++count[id];
                reader[id] = n;
            }
        }
        for (std::size_t id : graph.outputs()) {
            ++count[id];
            output[id] = true;
        }
    }
};

std::string value_label(const Graph& graph, std::size_t id) {
    const std::string& name = graph.value(id).name;
    return name.empty() ? "%" + std::to_string(id) : "'" + name + "'";
}

// The operand behind node input `id` when slicing it cannot change another
// reader: the tensor (and its mask and mask node) have this one reader.
// Otherwise returns nullopt and sets `reason`.
std::optional<Operand> sliceable(const Graph& graph, const Uses& uses, std::size_t id,
                                 const std::string& what, std::string& reason) {
    const std::optional<Operand> operand = operand_of(graph, uses.masks, id);
    if (!operand) {
        const Value& value = graph.value(id);
        reason = value.kind == ValueKind::op
                     ? what + " is computed by " +
                           std::string(graph.nodes()[value.node].op->info.name) +
                           ", not read from a parameter, buffer or constant"
                     : what + " is a graph input";
        return std::nullopt;
    }
    bool alone = uses.count[id] == 1 && uses.count[operand->leaf] == 1;
    if (operand->mask != nullptr) {
        alone = alone && uses.count[operand->mask->mask] == 1;
    }
    if (!alone) {
        reason = what + " " + value_label(graph, operand->leaf) + " has other readers";
        return std::nullopt;
    }
    return operand;
}

// The operand's values times its mask, as doubles.
std::vector<double> effective_values(const Graph& graph, const Operand& operand) {
    const xt::xarray<double> values = graph.value(operand.leaf).tensor.to_xarray<double>();
    std::vector<double> result(values.begin(), values.end());
    if (operand.mask != nullptr) {
        const xt::xarray<double> mask = graph.value(operand.mask->mask).tensor.to_xarray<double>();
        for (std::size_t i = 0; i < result.size(); ++i) {
            result[i] *= mask.flat(i);
        }
    }
    return result;
}

// The ops between a layer and the next layer, as trace_path() finds them.
struct Path {
    const Node* norm = nullptr;         ///< the batch norm on the path, if any
    std::vector<std::size_t> flattens;  ///< output ids of the flattening reshapes
    const Node* consumer = nullptr;     ///< the next conv2d or linear node
    std::size_t block = 1;              ///< consumer input columns per channel
};

bool keeps_zero(const std::string& op) {
    return op == "relu" || op == "leaky_relu" || op == "tanh" || op == "gelu";
}

// Follows the layer's output to the next layer, as the header's rules
// allow. Returns an empty string on success, otherwise why the path does not
// qualify.
std::string trace_path(const Graph& graph, const Uses& uses, const Node& layer, Path& path) {
    std::size_t value = layer.output;
    std::size_t rank = graph.value(value).shape.size();
    // conv2d writes channels along axis 1, linear along its last axis.
    std::size_t axis = std::string(layer.op->info.name) == "conv2d" ? 1 : rank - 1;
    for (;;) {
        if (uses.output[value]) {
            return "its output reaches a graph output";
        }
        if (uses.count[value] != 1) {
            return uses.count[value] == 0
                       ? "nothing reads its output"
                       : "its output has " + std::to_string(uses.count[value]) + " readers";
        }
        const Node& node = graph.nodes()[uses.reader[value]];
        const std::string op = node.op->info.name;
        if (node.inputs[0] != value) {
            return "its output is read by " + op + " as another input than the first";
        }
        if (op == "conv2d" || op == "linear") {
            const bool channels_fit =
                op == "conv2d" ? axis == 1 && rank == 4 && path.block == 1 : axis + 1 == rank;
            if (!channels_fit) {
                return "the next " + op + " does not read its channels along the channel axis";
            }
            path.consumer = &node;
            return {};
        }
        if (op == "batch_norm" || op == "batch_norm_inference") {
            if (path.norm != nullptr || axis != 1) {
                return "its output reaches a second batch norm, or one that normalizes another "
                       "axis";
            }
            path.norm = &node;
        } else if (op == "max_pool2d" || op == "avg_pool2d" || op == "global_avg_pool2d") {
            if (axis != 1 || rank != 4) {
                return "its output is read by " + op + " along another axis than its channels";
            }
            rank = op == "global_avg_pool2d" ? 2 : 4;
        } else if (op == "reshape") {
            const Shape& in = graph.value(value).shape;
            const Shape& out = node.attrs.shape;
            const bool flatten = axis == 1 && in.size() >= 2 && out.size() == 2 &&
                                 out[0] == in[0] && out[1] == product(in, 1);
            if (!flatten) {
                return "its output is reshaped, but not flattened from axis 1";
            }
            path.block *= product(in, 2);
            path.flattens.push_back(node.output);
            rank = 2;
        } else if (!keeps_zero(op)) {
            return "its output is read by " + op + ", which may not map a zero channel to zero";
        }
        value = node.output;
    }
}

// The tensors of a layer that removal slices, and their values.
struct LayerTensors {
    Operand weight;
    std::optional<Operand> bias;
    std::vector<double> bias_values;
    // Batch norm inputs after x, in the node's order, and which is which.
    std::vector<Operand> norm_inputs;
    std::vector<double> mean, gamma, beta;
    Operand consumer_weight;
};

// Collects the operands of the layer, its batch norm and the consumer's
// weight. Returns an empty string on success, otherwise the reason.
std::string collect_tensors(const Graph& graph, const Uses& uses, const Node& layer,
                            const Operand& weight, const Path& path, LayerTensors& tensors) {
    std::string reason;
    tensors.weight = weight;
    if (layer.inputs.size() == 3) {
        tensors.bias = sliceable(graph, uses, layer.inputs[2], "its bias", reason);
        if (!tensors.bias) {
            return reason;
        }
        tensors.bias_values = effective_values(graph, *tensors.bias);
    }
    if (path.norm != nullptr) {
        const Node& norm = *path.norm;
        const bool inference = std::string(norm.op->info.name) == "batch_norm_inference";
        std::size_t next = 1;
        if (inference) {
            for (const char* what :
                 {"the batch norm's running mean", "the batch norm's running variance"}) {
                const std::optional<Operand> statistic =
                    sliceable(graph, uses, norm.inputs[next++], what, reason);
                if (!statistic) {
                    return reason;
                }
                tensors.norm_inputs.push_back(*statistic);
            }
            tensors.mean = effective_values(graph, tensors.norm_inputs[0]);
        }
        for (const int affine : {0, 1}) {
            if (norm.attrs.ints[static_cast<std::size_t>(affine)] == 0) {
                continue;
            }
            const std::optional<Operand> operand = sliceable(
                graph, uses, norm.inputs[next++],
                affine == 0 ? "the batch norm's weight" : "the batch norm's bias", reason);
            if (!operand) {
                return reason;
            }
            tensors.norm_inputs.push_back(*operand);
            (affine == 0 ? tensors.gamma : tensors.beta) = effective_values(graph, *operand);
        }
    }
    const std::optional<Operand> next_weight =
        sliceable(graph, uses, path.consumer->inputs[1], "the next layer's weight", reason);
    if (!next_weight) {
        return reason;
    }
    tensors.consumer_weight = *next_weight;
    return {};
}

// Returns why all-zero channel c of a layer does not output exactly zero,
// or an empty string when it does.
std::string nonzero_reason(const LayerTensors& tensors, const Path& path, std::size_t c) {
    if (!tensors.bias_values.empty() && tensors.bias_values[c] != 0.0) {
        return "its bias is nonzero";
    }
    if (path.norm == nullptr) {
        return {};
    }
    const double beta = tensors.beta.empty() ? 0.0 : tensors.beta[c];
    const double gamma = tensors.gamma.empty() ? 1.0 : tensors.gamma[c];
    if (beta != 0.0) {
        return "the batch norm's bias (beta) is nonzero";
    }
    if (!std::isfinite(gamma)) {
        return "the batch norm's weight (gamma) is not finite";
    }
    if (std::string(path.norm->op->info.name) == "batch_norm") {
        // Training mode normalizes the zero channel by 1 / sqrt(0 + eps).
        if (!(path.norm->attrs.scalars[0] > 0.0)) {
            return "batch_norm with eps = 0 turns a zero channel into NaN";
        }
        return {};
    }
    // Eval mode: (0 - mean) * gamma / sqrt(var + eps) + beta.
    const double mean = tensors.mean[c];
    if (!std::isfinite(mean) || (mean != 0.0 && gamma != 0.0)) {
        return "the batch norm maps zero to a nonzero constant (its mean and weight are nonzero)";
    }
    return {};
}

using Slices = std::map<std::size_t, std::map<std::size_t, std::vector<std::size_t>>>;

void add_slice(Slices& slices, const Operand& operand, std::size_t axis,
               const std::vector<std::size_t>& keep) {
    slices[operand.leaf][axis] = keep;
    if (operand.mask != nullptr) {
        slices[operand.mask->mask][axis] = keep;
    }
}

void join_reason(std::string& reasons, const std::string& reason) {
    if (reasons.find(reason) == std::string::npos) {
        reasons += (reasons.empty() ? "" : "; ") + reason;
    }
}

// Decides which channels of one layer go, records the slices and returns
// the layer's report entry.
LayerChannels plan_layer(const Graph& graph, const Uses& uses, const Node& layer,
                         const Operand& weight, bool chosen, Slices& slices,
                         std::set<std::size_t>& flattens) {
    const Value& weight_value = graph.value(weight.leaf);
    const std::size_t rows = weight_value.shape.empty() ? 0 : weight_value.shape[0];
    LayerChannels entry{weight_value.name, rows, rows, 0, {}};
    const std::vector<double> values = effective_values(graph, weight);
    const std::size_t per_row = rows == 0 ? 0 : values.size() / rows;
    std::vector<std::size_t> zero_rows;
    for (std::size_t r = 0; r < rows; ++r) {
        const auto begin = values.begin() + static_cast<std::ptrdiff_t>(r * per_row);
        if (std::all_of(begin, begin + static_cast<std::ptrdiff_t>(per_row),
                        [](double x) { return x == 0.0; })) {
            zero_rows.push_back(r);
        }
    }
    if (zero_rows.empty()) {
        return entry;
    }
    entry.kept_zero = zero_rows.size();

    if (!chosen) {
        entry.reason = "the layer is not among the named weights";
        return entry;
    }
    std::string reason;
    if (!sliceable(graph, uses, layer.inputs[1], "its weight", reason)) {
        entry.reason = reason;
        return entry;
    }
    Path path;
    entry.reason = trace_path(graph, uses, layer, path);
    if (!entry.reason.empty()) {
        return entry;
    }
    LayerTensors tensors;
    entry.reason = collect_tensors(graph, uses, layer, weight, path, tensors);
    if (!entry.reason.empty()) {
        return entry;
    }

    std::vector<bool> removed(rows, false);
    std::size_t removed_count = 0;
    for (std::size_t c : zero_rows) {
        const std::string why = nonzero_reason(tensors, path, c);
        if (why.empty()) {
            removed[c] = true;
            ++removed_count;
        } else {
            join_reason(entry.reason, why);
        }
    }
    if (removed_count == rows) {
        removed[0] = false;
        --removed_count;
        join_reason(entry.reason, "a layer keeps at least one output channel");
    }
    entry.kept_zero = zero_rows.size() - removed_count;
    entry.after = rows - removed_count;
    if (removed_count == 0) {
        return entry;
    }

    std::vector<std::size_t> keep;
    std::vector<std::size_t> keep_columns;
    for (std::size_t c = 0; c < rows; ++c) {
        if (removed[c]) {
            continue;
        }
        keep.push_back(c);
        for (std::size_t j = 0; j < path.block; ++j) {
            keep_columns.push_back(c * path.block + j);
        }
    }
    add_slice(slices, tensors.weight, 0, keep);
    if (tensors.bias) {
        add_slice(slices, *tensors.bias, 0, keep);
    }
    for (const Operand& operand : tensors.norm_inputs) {
        add_slice(slices, operand, 0, keep);
    }
    add_slice(slices, tensors.consumer_weight, 1, keep_columns);
    flattens.insert(path.flattens.begin(), path.flattens.end());
    return entry;
}

// The entries `keep` of `tensor` along `axis`, as a new tensor.
Tensor take(const Tensor& tensor, std::size_t axis, const std::vector<std::size_t>& keep) {
    const Shape& shape = tensor.shape();
    std::size_t outer = 1;
    for (std::size_t d = 0; d < axis; ++d) {
        outer *= shape[d];
    }
    const std::size_t extent = shape[axis];
    const std::size_t inner = product(shape, axis + 1);
    Shape sliced = shape;
    sliced[axis] = keep.size();
    return detail::visit_dtype(tensor.dtype(), [&](auto zero) {
        using T = decltype(zero);
        const T* source = tensor.values<T>().data();
        xt::xarray<T> result(sliced);
        T* target = result.data();
        for (std::size_t o = 0; o < outer; ++o) {
            for (std::size_t k : keep) {
                const T* row = source + (o * extent + k) * inner;
                target = std::copy(row, row + inner, target);
            }
        }
        return Tensor(std::move(result));
    });
}

}  // namespace

ChannelRemoval remove_pruned_channels(const Graph& graph, const std::vector<std::string>& weights) {
    const Uses uses(graph);
    std::vector<std::pair<const Node*, Operand>> layers;
    std::vector<std::string> layer_names;
    for (const Node& node : graph.nodes()) {
        const std::string op = node.op->info.name;
        if ((op != "conv2d" && op != "linear") || node.inputs.size() < 2) {
            continue;
        }
        const std::optional<Operand> weight = operand_of(graph, uses.masks, node.inputs[1]);
        if (weight) {
            layers.emplace_back(&node, *weight);
            layer_names.push_back(graph.value(weight->leaf).name);
        }
    }
    for (const std::string& name : weights) {
        if (std::find(layer_names.begin(), layer_names.end(), name) == layer_names.end()) {
            std::string known;
            for (const std::string& layer : layer_names) {
                known += (known.empty() ? "" : ", ") + layer;
            }
            throw value_error("remove_pruned_channels: '" + name +
                              "' is not the weight of a conv2d or linear node; the graph's layer "
                              "weights are: " +
                              (known.empty() ? "none" : known));
        }
    }

    ChannelRemoval result;
    Slices slices;
    std::set<std::size_t> flattens;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const bool chosen = weights.empty() || std::find(weights.begin(), weights.end(),
                                                         layer_names[i]) != weights.end();
        result.layers.push_back(
            plan_layer(graph, uses, *layers[i].first, layers[i].second, chosen, slices, flattens));
    }

    // Slice copies of the tensors. The copy of the graph shares its tensors
    // with `graph`, so each sliced value gets a new tensor.
    Graph sliced = graph;
    for (const auto& [id, axes] : slices) {
        Value& value = sliced.value(id);
        Tensor tensor = value.tensor;
        for (const auto& [axis, keep] : axes) {
            tensor = take(tensor, axis, keep);
        }
        if (value.tensor.requires_grad()) {
            tensor.requires_grad_(true);
        }
        value.tensor = tensor;
        value.shape = tensor.shape();
    }
    // Every op value gets its shape again from add_node(); only a flatten
    // needs its target shape recomputed for the fewer channels.
    result.graph = rewrite_nodes(
        sliced, [&flattens](Graph& out, const Node& node, const std::vector<std::size_t>& inputs) {
            if (flattens.count(node.output) == 0) {
                return out.add_node(*node.op, inputs, node.attrs);
            }
            OpAttrs attrs = node.attrs;
            const Shape& in = out.value(inputs[0]).shape;
            attrs.shape = Shape{in[0], product(in, 1)};
            return out.add_node(*node.op, inputs, attrs);
        });
    return result;
}

std::string format_channel_report(const std::vector<LayerChannels>& layers) {
    std::string text;
    char line[160];
    std::size_t before = 0;
    std::size_t after = 0;
    for (const LayerChannels& layer : layers) {
        std::snprintf(line, sizeof line, "%-24s %8zu -> %8zu channels", layer.weight.c_str(),
                      layer.before, layer.after);
        text += line;
        if (layer.kept_zero > 0) {
            text += "  (" + std::to_string(layer.kept_zero) + " zero kept: " + layer.reason + ")";
        }
        text += "\n";
        before += layer.before;
        after += layer.after;
    }
    std::snprintf(line, sizeof line, "%-24s %8zu -> %8zu channels\n", "total", before, after);
    return text + line;
}

std::size_t parameter_count(const Graph& graph) {
    std::size_t count = 0;
    for (std::size_t id : graph.parameter_values()) {
        count += graph.value(id).tensor.numel();
    }
    return count;
}

io::NamedTensors graph_state_dict(const Graph& graph) {
    std::set<std::size_t> mask_ids;
    for (const Mask& mask : find_masks(graph)) {
        mask_ids.insert(mask.mask);
    }
    io::NamedTensors state;
    for (std::size_t id = 0; id < graph.values().size(); ++id) {
        const Value& value = graph.value(id);
        if ((value.kind == ValueKind::parameter || value.kind == ValueKind::buffer) &&
            mask_ids.count(id) == 0) {
            state.emplace_back(value.name, value.tensor);
        }
    }
    return state;
}

void load_graph_state(nn::Module& module, const Graph& graph) {
    std::map<std::string, Tensor> targets;
    for (const auto& [name, tensor] : module.state_dict()) {
        targets.emplace(name, tensor);
    }
    const io::NamedTensors state = graph_state_dict(graph);
    std::vector<std::string> problems;
    for (const auto& [name, source] : state) {
        const auto found = targets.find(name);
        if (found == targets.end()) {
            problems.push_back("the module has no tensor named '" + name + "'");
        } else if (found->second.shape() != source.shape() ||
                   found->second.dtype() != source.dtype()) {
            problems.push_back("'" + name + "' is " + dtype_name(source.dtype()) + " " +
                               shape_string(source.shape()) + " in the graph but " +
                               dtype_name(found->second.dtype()) + " " +
                               shape_string(found->second.shape()) + " in the module");
        }
    }
    if (!problems.empty()) {
        std::string message = "load_graph_state: the graph does not fit " + module.type_name() +
                              "; build the module with the channel counts of "
                              "remove_pruned_channels()'s report:";
        for (const std::string& problem : problems) {
            message += "\n  " + problem;
        }
        throw value_error(message);
    }

    // Every name, shape and dtype matched above, so each copy below is between
    // tensors of one shape and dtype and leaves no tensor half-written.
    NoGradGuard no_grad;
    for (const auto& entry : state) {
        // A named reference, not a structured binding: clang 14 cannot
        // capture a structured binding in the lambda below.
        const Tensor& source = entry.second;
        Tensor target = targets.at(entry.first);
        detail::visit_dtype(target.dtype(), [&](auto zero) {
            using T = decltype(zero);
            target.mutable_values<T>() = source.values<T>();
        });
    }
}

}  // namespace xgrad::transforms

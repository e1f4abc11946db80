#include "xgrad/transforms/prune.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "xgrad/autograd.hpp"
#include "xgrad/graph/passes.hpp"
#include "xgrad/ops/sparse.hpp"
#include "xgrad/random.hpp"

#include "transforms/masks.hpp"

namespace xgrad::transforms {

namespace {

const Mask& mask_of(const std::vector<Mask>& masks, const Graph& graph, const std::string& name) {
    for (const Mask& mask : masks) {
        if (graph.value(mask.parameter).name == name) {
            return mask;
        }
    }
    throw value_error("update_masks: parameter '" + name +
                      "' has no mask; insert one with add_masks() first");
}

std::vector<std::string> chosen_parameters(const Graph& graph, const PruneSpec& spec) {
    return spec.parameters.empty() ? linear_weights(graph) : spec.parameters;
}

std::size_t prune_count(double sparsity, std::size_t n) {
    // std::nearbyint rounds half to even in the default rounding mode, as
    // Python's round() does for PyTorch's pruning amounts.
    return static_cast<std::size_t>(std::nearbyint(sparsity * static_cast<double>(n)));
}

// Indices of the k lowest scores, ties broken by the lower index.
std::vector<std::size_t> lowest(const std::vector<double>& scores, std::size_t k) {
    std::vector<std::size_t> order(scores.size());
    std::iota(order.begin(), order.end(), 0);
    auto before = [&](std::size_t a, std::size_t b) {
        return scores[a] < scores[b] || (scores[a] == scores[b] && a < b);
    };
    if (k < order.size()) {
        std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), before);
    }
    order.resize(std::min(k, order.size()));
    return order;
}

// The weight's values times its mask, as doubles.
std::vector<double> effective_weights(const Graph& graph, const Mask& mask) {
    const Tensor& weight = graph.value(mask.parameter).tensor;
    const Tensor& keep = graph.value(mask.mask).tensor;
    const xt::xarray<double> w = weight.to_xarray<double>();
    const xt::xarray<double> m = keep.to_xarray<double>();
    std::vector<double> values(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
        values[i] = w.flat(i) * m.flat(i);
    }
    return values;
}

// Writes a mask of ones with zeros at `pruned`, zeroes the pruned weights and
// their optimizer state.
void apply_mask(Graph& graph, const Mask& mask, const std::vector<bool>& pruned,
                optim::Optimizer* optimizer) {
    Tensor weight = graph.value(mask.parameter).tensor;
    Tensor keep = graph.value(mask.mask).tensor;
    NoGradGuard no_grad;
    detail::visit_floating(weight.dtype(), "update_masks", [&](auto zero) {
        using T = decltype(zero);
        T* m = keep.mutable_values<T>().data();
        T* w = weight.mutable_values<T>().data();
        for (std::size_t i = 0; i < pruned.size(); ++i) {
            m[i] = pruned[i] ? T(0) : T(1);
            if (pruned[i]) {
                w[i] = T(0);
            }
        }
    });
    if (optimizer != nullptr) {
        optimizer->mask_state(weight, keep);
    }
}

// Per-element or per-row scores of one layer; already pruned elements score
// lowest.
std::vector<double> layer_scores(const Graph& graph, const Mask& mask, const PruneSpec& spec,
                                 Generator& generator) {
    const std::vector<double> w = effective_weights(graph, mask);
    const Shape& shape = graph.value(mask.parameter).shape;
    if (spec.method == PruneMethod::structured_l1 || spec.method == PruneMethod::structured_l2) {
        const std::size_t rows = shape.empty() ? 1 : shape[0];
        const std::size_t columns = rows == 0 ? 0 : w.size() / rows;
        std::vector<double> norms(rows, 0.0);
        for (std::size_t r = 0; r < rows; ++r) {
            for (std::size_t c = 0; c < columns; ++c) {
                const double x = w[r * columns + c];
                norms[r] += spec.method == PruneMethod::structured_l1 ? std::abs(x) : x * x;
            }
        }
        return norms;
    }
    std::vector<double> scores(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
        if (spec.method == PruneMethod::random) {
            // Pruned weights (exactly zero) first, then a random order.
            scores[i] = w[i] == 0.0 ? -1.0 : generator.uniform();
        } else {
            scores[i] = std::abs(w[i]);
        }
    }
    return scores;
}

}  // namespace

namespace {

// Names of the parameters read as input 1 (the weight) of nodes of the op
// named `op`, through a mask node where there is one, in node order.
std::vector<std::string> weights_of(const Graph& graph, const std::string& op) {
    std::vector<std::string> names;
    const std::vector<Mask> masks = find_masks(graph);
    for (const Node& node : graph.nodes()) {
        if (node.op->info.name != op || node.inputs.size() < 2) {
            continue;
        }
        std::size_t weight = node.inputs[1];
        // A masked weight reaches the node through its mask node.
        for (const Mask& mask : masks) {
            if (graph.nodes()[mask.node].output == weight) {
                weight = mask.parameter;
            }
        }
        const Value& v = graph.value(weight);
        if (v.kind == ValueKind::parameter &&
            std::find(names.begin(), names.end(), v.name) == names.end()) {
            names.push_back(v.name);
        }
    }
    return names;
}

}  // namespace

namespace {

bool is_structured(PruneMethod method) {
    return method == PruneMethod::structured_l1 || method == PruneMethod::structured_l2;
}

// Ids of the channel parameters of parameter `weight`, as channel_parameters()
// describes them.
std::vector<std::size_t> channel_parameter_ids(const Graph& graph, const std::vector<Mask>& masks,
                                               std::size_t weight) {
    const Shape& weight_shape = graph.value(weight).shape;
    const Shape per_channel{weight_shape.empty() ? 0 : weight_shape[0]};
    std::vector<std::size_t> ids;
    auto add = [&](std::size_t input) {
        const std::optional<Operand> operand = operand_of(graph, masks, input);
        if (operand && graph.value(operand->leaf).kind == ValueKind::parameter &&
            graph.value(operand->leaf).shape == per_channel &&
            std::find(ids.begin(), ids.end(), operand->leaf) == ids.end()) {
            ids.push_back(operand->leaf);
        }
    };
    for (const Node& layer : graph.nodes()) {
        const std::string op = layer.op->info.name;
        if ((op != "conv2d" && op != "linear") || layer.inputs.size() < 2) {
            continue;
        }
        const std::optional<Operand> read = operand_of(graph, masks, layer.inputs[1]);
        if (!read || read->leaf != weight) {
            continue;
        }
        if (layer.inputs.size() == 3) {
            add(layer.inputs[2]);
        }
        // Batch norm normalizes axis 1, which contains a linear layer's output
        // features only when the output is a matrix.
        if (op == "linear" && graph.value(layer.output).shape.size() != 2) {
            continue;
        }
        for (const Node& norm : graph.nodes()) {
            const std::string norm_op = norm.op->info.name;
            if ((norm_op != "batch_norm" && norm_op != "batch_norm_inference") ||
                norm.inputs[0] != layer.output) {
                continue;
            }
            // After x (and the running statistics in eval mode) come the
            // weight and the bias, each only when attrs.ints marks it present.
            std::size_t next = norm_op == "batch_norm" ? 1 : 3;
            if (norm.attrs.ints[0] != 0) {
                add(norm.inputs[next++]);
            }
            if (norm.attrs.ints[1] != 0) {
                add(norm.inputs[next]);
            }
        }
    }
    return ids;
}

}  // namespace

std::vector<std::string> linear_weights(const Graph& graph) { return weights_of(graph, "linear"); }

std::vector<std::string> conv_weights(const Graph& graph) { return weights_of(graph, "conv2d"); }

std::vector<std::string> channel_parameters(const Graph& graph,
                                            const std::vector<std::string>& weights) {
    const std::vector<Mask> masks = find_masks(graph);
    std::vector<std::string> names;
    for (const std::string& weight : weights) {
        for (std::size_t id : channel_parameter_ids(graph, masks, graph.find_value(weight))) {
            const std::string& name = graph.value(id).name;
            if (std::find(names.begin(), names.end(), name) == names.end()) {
                names.push_back(name);
            }
        }
    }
    return names;
}

Graph add_masks(const Graph& graph, const std::vector<std::string>& parameters) {
    std::vector<bool> wanted(graph.values().size(), false);
    for (const std::string& name : parameters) {
        wanted[graph.find_value(name)] = true;
    }
    for (const Mask& mask : find_masks(graph)) {
        wanted[mask.parameter] = false;  // already masked
    }

    const OpDef& mul = find_op("mul");
    // Per original parameter: its mask node's output in the new graph, made
    // at the parameter's first use.
    std::vector<std::size_t> masked(graph.values().size(), 0);
    std::vector<bool> made(graph.values().size(), false);
    return rewrite_nodes(graph, [&](Graph& out, const Node& node, const std::vector<std::size_t>& inputs) {
        std::vector<std::size_t> rewired = inputs;
        for (std::size_t i = 0; i < node.inputs.size(); ++i) {
            const std::size_t original = node.inputs[i];
            if (!wanted[original]) {
                continue;
            }
            if (!made[original]) {
                const Value& parameter = graph.value(original);
                Value mask;
                mask.kind = ValueKind::buffer;
                mask.name = parameter.name + kMaskSuffix;
                mask.tensor = full(parameter.shape, 1.0, parameter.dtype);
                const std::size_t mask_id = out.add_value(std::move(mask));
                masked[original] = out.add_node(mul, {inputs[i], mask_id});
                made[original] = true;
            }
            rewired[i] = masked[original];
        }
        return out.add_node(*node.op, rewired, node.attrs);
    });
}

namespace {

// Prunes the entries `rows` of each masked channel parameter of the weight
// behind `weight_mask`. Channel parameters without a mask stay as they are.
void prune_channel_parameters(Graph& graph, const std::vector<Mask>& masks, const Mask& weight_mask,
                              const std::vector<std::size_t>& rows, std::size_t row_count,
                              optim::Optimizer* optimizer) {
    std::vector<bool> pruned(row_count, false);
    for (std::size_t row : rows) {
        pruned[row] = true;
    }
    for (std::size_t id : channel_parameter_ids(graph, masks, weight_mask.parameter)) {
        for (const Mask& mask : masks) {
            if (mask.parameter == id) {
                apply_mask(graph, mask, pruned, optimizer);
            }
        }
    }
}

}  // namespace

void update_masks(Graph& graph, const PruneSpec& spec, optim::Optimizer* optimizer) {
    if (!(spec.sparsity >= 0.0 && spec.sparsity <= 1.0)) {
        throw value_error("update_masks: sparsity must be in [0, 1], got " + std::to_string(spec.sparsity));
    }
    const std::vector<Mask> masks = find_masks(graph);
    std::vector<const Mask*> layers;
    for (const std::string& name : chosen_parameters(graph, spec)) {
        layers.push_back(&mask_of(masks, graph, name));
    }
    Generator generator(spec.seed);

    if (spec.method == PruneMethod::global_magnitude) {
        // One ranking over every chosen weight.
        std::vector<double> scores;
        for (const Mask* mask : layers) {
            for (double w : effective_weights(graph, *mask)) {
                scores.push_back(std::abs(w));
            }
        }
        std::vector<bool> pruned(scores.size(), false);
        for (std::size_t i : lowest(scores, prune_count(spec.sparsity, scores.size()))) {
            pruned[i] = true;
        }
        std::size_t offset = 0;
        for (const Mask* mask : layers) {
            const std::size_t n = graph.value(mask->parameter).tensor.numel();
            apply_mask(graph, *mask,
                       std::vector<bool>(pruned.begin() + static_cast<std::ptrdiff_t>(offset),
                                         pruned.begin() + static_cast<std::ptrdiff_t>(offset + n)),
                       optimizer);
            offset += n;
        }
        return;
    }

    for (const Mask* mask : layers) {
        const Value& parameter = graph.value(mask->parameter);
        const std::vector<double> scores = layer_scores(graph, *mask, spec, generator);
        const std::size_t k = spec.count ? *spec.count : prune_count(spec.sparsity, scores.size());
        if (k > scores.size()) {
            throw value_error("update_masks: cannot prune " + std::to_string(k) + " of the " +
                              std::to_string(scores.size()) + " " +
                              (scores.size() == parameter.tensor.numel() ? "weights" : "rows") +
                              " of '" + parameter.name + "'");
        }
        const std::vector<std::size_t> chosen = lowest(scores, k);
        std::vector<bool> pruned(parameter.tensor.numel(), false);
        const std::size_t per_score = scores.empty() ? 1 : pruned.size() / scores.size();
        for (std::size_t index : chosen) {
            for (std::size_t j = 0; j < per_score; ++j) {
                pruned[index * per_score + j] = true;
            }
        }
        apply_mask(graph, *mask, pruned, optimizer);
        if (is_structured(spec.method) && spec.prune_channel_parameters) {
            prune_channel_parameters(graph, masks, *mask, chosen, scores.size(), optimizer);
        }
    }
}

Graph prune(const Graph& graph, const PruneSpec& spec, optim::Optimizer* optimizer) {
    std::vector<std::string> names = chosen_parameters(graph, spec);
    if (is_structured(spec.method) && spec.prune_channel_parameters) {
        for (const std::string& name : channel_parameters(graph, names)) {
            if (std::find(names.begin(), names.end(), name) == names.end()) {
                names.push_back(name);
            }
        }
    }
    Graph masked = add_masks(graph, names);
    update_masks(masked, spec, optimizer);
    return masked;
}

Graph bake_masks(const Graph& graph) {
    Graph baked = graph;
    NoGradGuard no_grad;
    for (const Mask& mask : find_masks(graph)) {
        Tensor weight = graph.value(mask.parameter).tensor;
        const Tensor& keep = graph.value(mask.mask).tensor;
        detail::visit_floating(weight.dtype(), "bake_masks", [&](auto zero) {
            using T = decltype(zero);
            weight.mutable_values<T>() *= keep.values<T>();
        });
        baked.replace_uses(graph.nodes()[mask.node].output, mask.parameter);
    }
    return eliminate_dead_code(baked);
}

std::vector<LayerSparsity> sparsity_report(const Graph& graph) {
    std::vector<LayerSparsity> report;
    const std::vector<Mask> masks = find_masks(graph);
    std::vector<std::size_t> channel_ids;
    for (const Mask& mask : masks) {
        const std::vector<std::size_t> ids = channel_parameter_ids(graph, masks, mask.parameter);
        channel_ids.insert(channel_ids.end(), ids.begin(), ids.end());
    }
    std::vector<std::string> names;
    for (const Mask& mask : masks) {
        if (std::find(channel_ids.begin(), channel_ids.end(), mask.parameter) == channel_ids.end()) {
            names.push_back(graph.value(mask.parameter).name);
        }
    }
    if (names.empty()) {
        names = linear_weights(graph);
    }
    for (const std::string& name : names) {
        const std::size_t id = graph.find_value(name);
        LayerSparsity layer{name, graph.value(id).tensor.numel(), 0};
        std::vector<double> values;
        bool masked = false;
        for (const Mask& mask : masks) {
            if (mask.parameter == id) {
                values = effective_weights(graph, mask);
                masked = true;
            }
        }
        if (!masked) {
            const xt::xarray<double> w = graph.value(id).tensor.to_xarray<double>();
            values.assign(w.begin(), w.end());
        }
        layer.zeros = static_cast<std::size_t>(std::count(values.begin(), values.end(), 0.0));
        report.push_back(layer);
    }
    return report;
}

std::vector<LayerSparsity> sparsity_report(const nn::Module& module) {
    std::vector<LayerSparsity> report;
    for (const auto& [name, parameter] : module.named_parameters()) {
        if (parameter.dim() < 2) {
            continue;
        }
        const xt::xarray<double> w = parameter.to_xarray<double>();
        report.push_back({name, w.size(), static_cast<std::size_t>(std::count(w.begin(), w.end(), 0.0))});
    }
    return report;
}

double overall_sparsity(const std::vector<LayerSparsity>& report) {
    std::size_t size = 0;
    std::size_t zeros = 0;
    for (const LayerSparsity& layer : report) {
        size += layer.size;
        zeros += layer.zeros;
    }
    return size == 0 ? 0.0 : static_cast<double>(zeros) / static_cast<double>(size);
}

std::string format_sparsity_report(const std::vector<LayerSparsity>& report) {
    std::string text;
    char line[160];
    std::size_t size = 0;
    std::size_t zeros = 0;
    for (const LayerSparsity& layer : report) {
        std::snprintf(line, sizeof line, "%-24s %10zu weights %10zu zero  %6.2f%%\n", layer.name.c_str(),
                      layer.size, layer.zeros, 100.0 * layer.sparsity());
        text += line;
        size += layer.size;
        zeros += layer.zeros;
    }
    std::snprintf(line, sizeof line, "%-24s %10zu weights %10zu zero  %6.2f%%\n", "total", size, zeros,
                  100.0 * overall_sparsity(report));
    return text + line;
}

void PruningSchedule::validate() const {
    auto check_fraction = [](const char* name, double value) {
        if (!(value >= 0.0 && value <= 1.0)) {
            throw value_error(std::string("PruningSchedule: ") + name + " must be in [0, 1], got " +
                              std::to_string(value));
        }
    };
    check_fraction("initial_sparsity", initial_sparsity);
    check_fraction("final_sparsity", final_sparsity);
    if (final_sparsity < initial_sparsity) {
        throw value_error("PruningSchedule: final_sparsity (" + std::to_string(final_sparsity) +
                          ") is below initial_sparsity (" + std::to_string(initial_sparsity) + ")");
    }
    if (end_step < begin_step || frequency < 1) {
        throw value_error("PruningSchedule: needs begin_step <= end_step and frequency >= 1, got " +
                          std::to_string(begin_step) + ", " + std::to_string(end_step) + " and " +
                          std::to_string(frequency));
    }
}

bool PruningSchedule::is_update_step(std::int64_t step) const {
    if (step == end_step) {
        return true;
    }
    return step >= begin_step && step < end_step && (step - begin_step) % frequency == 0;
}

double PruningSchedule::sparsity_at(std::int64_t step) const {
    if (step < begin_step) {
        return 0.0;
    }
    if (step >= end_step || end_step == begin_step) {
        return final_sparsity;
    }
    const std::int64_t last_update = begin_step + (step - begin_step) / frequency * frequency;
    const double progress = static_cast<double>(last_update - begin_step) /
                            static_cast<double>(end_step - begin_step);
    const double remaining = 1.0 - progress;
    return final_sparsity + (initial_sparsity - final_sparsity) * remaining * remaining * remaining;
}

GradualPruner::GradualPruner(Graph& graph, PruneSpec spec, PruningSchedule schedule,
                             optim::Optimizer* optimizer)
    : graph_(&graph), spec_(std::move(spec)), schedule_(schedule), optimizer_(optimizer) {
    schedule_.validate();
}

bool GradualPruner::step(std::int64_t step) {
    if (!schedule_.is_update_step(step)) {
        return false;
    }
    spec_.sparsity = schedule_.sparsity_at(step);
    spec_.count.reset();
    update_masks(*graph_, spec_, optimizer_);
    ++spec_.seed;  // random pruning draws new scores at each update
    current_ = spec_.sparsity;
    return true;
}

io::NamedTensors compressed_state_dict(const nn::Module& module, double min_sparsity) {
    io::NamedTensors state;
    for (const auto& [name, tensor] : module.state_dict()) {
        if (tensor.dim() != 2 || !is_floating(tensor.dtype()) || sparsity(tensor) < min_sparsity) {
            state.emplace_back(name, tensor);
            continue;
        }
        const CsrMatrix csr = to_csr(tensor);
        state.emplace_back(name + ".values", csr.values);
        state.emplace_back(name + ".column_indices", csr.column_indices);
        state.emplace_back(name + ".row_offsets", csr.row_offsets);
    }
    return state;
}

}  // namespace xgrad::transforms

#include "xgrad/transforms/quantize.hpp"

#include <map>
#include <optional>
#include <set>

#include "xgrad/autograd.hpp"
#include "xgrad/graph/passes.hpp"
#include "xgrad/ops/binary.hpp"
#include "xgrad/ops/fake_quant.hpp"
#include "xgrad/ops/quantized.hpp"
#include "xgrad/ops/quantized_conv.hpp"

namespace xgrad::transforms {

namespace {

bool is_op(const Node& node, const char* name) { return std::string(node.op->info.name) == name; }

// The node that computes an op value, or null for a leaf.
const Node* producer(const Graph& graph, std::size_t value) {
    const Value& v = graph.value(value);
    return v.kind == ValueKind::op ? &graph.nodes()[v.node] : nullptr;
}

// The layers the passes quantize.
bool is_quantizable(const Node& node) { return is_op(node, "linear") || is_op(node, "conv2d"); }

// The value a layer's input had before convert_qat() put fake_quantize in
// front of it.
std::size_t unquantized_input(const Graph& graph, std::size_t value) {
    const Node* node = producer(graph, value);
    return node != nullptr && is_op(*node, "fake_quantize") ? node->inputs[0] : value;
}

// The same for a weight and fake_quantize_weight.
std::size_t unquantized_weight(const Graph& graph, std::size_t value) {
    const Node* node = producer(graph, value);
    return node != nullptr && is_op(*node, "fake_quantize_weight") ? node->inputs[0] : value;
}

Tensor vector_tensor(const std::vector<double>& values) {
    xt::xarray<double> out(Shape{values.size()});
    std::copy(values.begin(), values.end(), out.begin());
    return Tensor(std::move(out));
}

Tensor vector_tensor(const std::vector<std::int64_t>& values) {
    xt::xarray<std::int64_t> out(Shape{values.size()});
    std::copy(values.begin(), values.end(), out.begin());
    return Tensor(std::move(out));
}

// The weight a linear or conv2d node reads, through fake quantization and a
// pruning mask: mul(weight, "<weight>.mask"), where the mask is a buffer.
struct LayerWeight {
    std::size_t value;
    std::optional<std::size_t> mask;
};

LayerWeight layer_weight(const Graph& graph, const Node& layer) {
    LayerWeight weight{unquantized_weight(graph, layer.inputs.at(1)), std::nullopt};
    if (const Node* node = producer(graph, weight.value); node != nullptr && is_op(*node, "mul")) {
        const Value& first = graph.value(node->inputs[0]);
        const Value& second = graph.value(node->inputs[1]);
        if (first.kind == ValueKind::parameter && second.name == first.name + ".mask") {
            weight = {node->inputs[0], node->inputs[1]};
        }
    }
    return weight;
}

// The name by which the passes know a layer: its weight's name. A conv2d
// weight may also be a named constant, because fold_batch_norm() replaces
// each folded convolution's weight by the constant "<weight>.folded".
std::string layer_name(const Graph& graph, const Node& layer) {
    if (is_op(layer, "linear")) {
        return linear_weight_name(graph, layer);
    }
    const Value& v = graph.value(layer_weight(graph, layer).value);
    const bool named_constant = v.kind == ValueKind::constant && !v.name.empty();
    return v.kind == ValueKind::parameter || named_constant ? v.name : std::string();
}

// The weight's values times its mask, so that pruned entries are exactly
// zero even where the parameter itself was not zeroed.
Tensor masked_weight(const Graph& graph, const LayerWeight& weight) {
    const Tensor& values = graph.value(weight.value).tensor;
    if (!weight.mask) {
        return values;
    }
    const NoGradGuard no_grad;
    return mul(values, graph.value(*weight.mask).tensor);
}

std::size_t add_constant(Graph& graph, Tensor tensor) {
    Value value;
    value.kind = ValueKind::constant;
    value.tensor = std::move(tensor);
    return graph.add_value(std::move(value));
}

}  // namespace

std::string linear_weight_name(const Graph& graph, const Node& linear) {
    const Value& v = graph.value(layer_weight(graph, linear).value);
    return v.kind == ValueKind::parameter ? v.name : std::string();
}

Calibration::Calibration(Graph graph, const QuantizationConfig& config) : graph_(std::move(graph)) {
    std::set<std::string> seen;
    for (const Node& node : graph_.nodes()) {
        if (!is_quantizable(node)) {
            continue;
        }
        const std::string name = layer_name(graph_, node);
        if (name.empty() || !seen.insert(name).second) {
            continue;  // weights that are not parameters, or shared ones, stay float
        }
        weights_.push_back(name);
        inputs_.push_back(unquantized_input(graph_, node.inputs[0]));
        observers_.push_back(quant::make_activation_observer(config.activation_observer));
    }
}

void Calibration::observe(const std::vector<Tensor>& inputs) {
    graph_.forward(inputs);
    for (std::size_t i = 0; i < observers_.size(); ++i) {
        observers_[i]->observe(graph_.value_tensor(inputs_[i]));
    }
}

ActivationParams Calibration::activation_params() const {
    ActivationParams params;
    for (std::size_t i = 0; i < observers_.size(); ++i) {
        params.emplace(weights_[i], observers_[i]->qparams());
    }
    return params;
}

Calibration prepare_quantization(const Graph& graph, const QuantizationConfig& config) {
    return Calibration(graph, config);
}

Graph convert_qat(const Graph& graph, const ActivationParams& activations) {
    const OpDef& fake_quantize_op = find_op("fake_quantize");
    const OpDef& fake_quantize_weight_op = find_op("fake_quantize_weight");
    return rewrite_nodes(graph, [&](Graph& out, const Node& node, const std::vector<std::size_t>& inputs) {
        if (!is_quantizable(node)) {
            return out.add_node(*node.op, inputs, node.attrs);
        }
        const auto found = activations.find(layer_name(graph, node));
        const bool already = producer(graph, node.inputs[0]) != nullptr &&
                             is_op(*producer(graph, node.inputs[0]), "fake_quantize");
        if (found == activations.end() || already) {
            return out.add_node(*node.op, inputs, node.attrs);
        }
        const quant::QParams& params = found->second;
        OpAttrs attrs;
        attrs.ints = {params.qmin(), params.qmax(), params.axis};
        const std::size_t scales = add_constant(out, vector_tensor(params.scales));
        const std::size_t zero_points = add_constant(out, vector_tensor(params.zero_points));
        std::vector<std::size_t> rewired = inputs;
        rewired[0] = out.add_node(fake_quantize_op, {inputs[0], scales, zero_points}, attrs);
        rewired[1] = out.add_node(fake_quantize_weight_op, {inputs[1]});
        return out.add_node(*node.op, rewired, node.attrs);
    });
}

}  // namespace xgrad::transforms

namespace xgrad::transforms {

namespace {

// The graph inputs of a quantized_linear or quantized_conv2d node: x,
// values, scales, row_sums and an optional bias.
constexpr std::size_t kValues = 1;
constexpr std::size_t kScales = 2;
constexpr std::size_t kRowSums = 3;
constexpr std::size_t kBias = 4;

struct QuantizedLayer {
    std::string name;
    const Node* node;
};

bool is_quantized(const Node& node) {
    return is_op(node, "quantized_linear") || is_op(node, "quantized_conv2d");
}

// Each quantized_linear and quantized_conv2d node with the name of the
// weight it came from, which convert_int8() stores as the name of the int8
// values constant.
std::vector<QuantizedLayer> quantized_layers(const Graph& graph) {
    std::vector<QuantizedLayer> layers;
    for (const Node& node : graph.nodes()) {
        if (is_quantized(node)) {
            layers.push_back({graph.value(node.inputs[kValues]).name, &node});
        }
    }
    return layers;
}

std::size_t add_named_constant(Graph& graph, const std::string& name, Tensor tensor) {
    Value value;
    value.kind = ValueKind::constant;
    value.name = name;
    value.tensor = std::move(tensor);
    return graph.add_value(std::move(value));
}

}  // namespace

Graph convert_int8(const Graph& qat_or_float_graph, const ActivationParams& activations) {
    // Fake quantization simulated what the int8 kernel now does for real:
    // each fake_quantize node is replaced by its input.
    const Graph graph = rewrite_nodes(
        qat_or_float_graph, [](Graph& out, const Node& node, const std::vector<std::size_t>& inputs) {
            if (is_op(node, "fake_quantize") || is_op(node, "fake_quantize_weight")) {
                return inputs[0];
            }
            return out.add_node(*node.op, inputs, node.attrs);
        });
    const OpDef& quantized_linear_op = find_op("quantized_linear");
    const OpDef& quantized_conv_op = find_op("quantized_conv2d");
    const Graph converted =
        rewrite_nodes(graph, [&](Graph& out, const Node& node, const std::vector<std::size_t>& inputs) {
            if (!is_quantizable(node)) {
                return out.add_node(*node.op, inputs, node.attrs);
            }
            const std::string name = layer_name(graph, node);
            const auto found = activations.find(name);
            if (found == activations.end()) {
                return out.add_node(*node.op, inputs, node.attrs);
            }
            const quant::QParams& input = found->second;
            if (input.scheme != quant::QScheme::affine_uint8 || input.per_channel()) {
                throw not_implemented("convert_int8: the input of '" + name + "' has " +
                                      input.describe() +
                                      " parameters; int8 inference takes per-tensor affine uint8");
            }
            // The weight's current values, through its mask if it has one.
            const bool conv = is_op(node, "conv2d");
            const Tensor weight = masked_weight(graph, layer_weight(graph, node));
            const QuantizedWeight quantized =
                conv ? quantize_conv_weight(weight) : quantize_weight(weight);
            std::vector<std::size_t> node_inputs = {
                inputs[0],
                add_named_constant(out, name, quantized.values),
                add_named_constant(out, name + ".scales", quantized.scales),
                add_named_constant(out, name + ".row_sums", quantized.row_sums),
            };
            if (node.inputs.size() == 3) {
                node_inputs.push_back(inputs[2]);
            }
            OpAttrs attrs;
            attrs.scalars[0] = input.scales[0];
            attrs.ints = {input.zero_points[0], static_cast<std::int64_t>(QuantizedKernel::automatic)};
            if (!conv) {
                return out.add_node(quantized_linear_op, node_inputs, attrs);
            }
            // conv2d's stride, padding and dilation follow.
            attrs.ints.insert(attrs.ints.end(), node.attrs.ints.begin(), node.attrs.ints.end());
            return out.add_node(quantized_conv_op, node_inputs, attrs);
        });
    // Fake quantization and masks feeding nothing but the replaced layers
    // are dead now, and so are the float weights.
    const Graph cleaned = eliminate_dead_code(converted);
    return cleaned;
}

io::NamedTensors quantized_state_dict(const Graph& int8_graph) {
    io::NamedTensors state;
    for (const auto& [name, node] : quantized_layers(int8_graph)) {
        state.emplace_back(name + ".int8", int8_graph.value(node->inputs[kValues]).tensor);
        state.emplace_back(name + ".scales", int8_graph.value(node->inputs[kScales]).tensor);
        state.emplace_back(name + ".row_sums", int8_graph.value(node->inputs[kRowSums]).tensor);
        if (node->inputs.size() > kBias) {
            state.emplace_back(name + ".bias", int8_graph.value(node->inputs[kBias]).tensor);
        }
        state.emplace_back(name + ".input_scale", scalar(node->attrs.scalars[0], Dtype::float64));
        state.emplace_back(name + ".input_zero_point",
                           full({}, static_cast<double>(node->attrs.ints[0]), Dtype::int64));
    }
    return state;
}

void load_quantized_state_dict(Graph& int8_graph, const io::NamedTensors& state) {
    std::map<std::string, Tensor> given(state.begin(), state.end());
    std::vector<std::string> problems;
    if (given.size() != state.size()) {
        problems.push_back("a name appears twice");
    }
    // Pass 1: check every entry against the graph.
    const std::vector<QuantizedLayer> layers = quantized_layers(int8_graph);
    auto expect = [&](const std::string& key, Dtype dtype, const Shape& shape) {
        auto found = given.find(key);
        if (found == given.end()) {
            problems.push_back("missing '" + key + "'");
            return;
        }
        if (found->second.dtype() != dtype || found->second.shape() != shape) {
            problems.push_back("'" + key + "' is " + dtype_name(found->second.dtype()) + " " +
                               shape_string(found->second.shape()) + " but the graph needs " +
                               dtype_name(dtype) + " " + shape_string(shape));
        }
        given.erase(found);
    };
    for (const auto& [name, node] : layers) {
        for (std::size_t input : {kValues, kScales, kRowSums}) {
            const Value& v = int8_graph.value(node->inputs[input]);
            expect(input == kValues ? name + ".int8" : v.name, v.dtype, v.shape);
        }
        if (node->inputs.size() > kBias) {
            const Value& bias = int8_graph.value(node->inputs[kBias]);
            expect(name + ".bias", bias.dtype, bias.shape);
        }
        expect(name + ".input_scale", Dtype::float64, {});
        expect(name + ".input_zero_point", Dtype::int64, {});
    }
    for (const auto& [name, tensor] : given) {
        problems.push_back("unexpected '" + name + "'");
    }
    if (!problems.empty()) {
        std::string message = "load_quantized_state_dict: the state does not match the graph:";
        for (const std::string& problem : problems) {
            message += "\n  " + problem;
        }
        throw value_error(message);
    }

    // Pass 2: rebuild the graph with the loaded constants and attributes.
    const std::map<std::string, Tensor> loaded(state.begin(), state.end());
    int8_graph = rewrite_nodes(int8_graph, [&](Graph& out, const Node& node,
                                              const std::vector<std::size_t>& inputs) {
        if (!is_quantized(node)) {
            return out.add_node(*node.op, inputs, node.attrs);
        }
        const std::string name = int8_graph.value(node.inputs[kValues]).name;
        std::vector<std::size_t> node_inputs = {
            inputs[0],
            add_named_constant(out, name, loaded.at(name + ".int8")),
            add_named_constant(out, name + ".scales", loaded.at(name + ".scales")),
            add_named_constant(out, name + ".row_sums", loaded.at(name + ".row_sums")),
        };
        if (node.inputs.size() > kBias) {
            node_inputs.push_back(inputs[kBias]);
            const Tensor& bias = loaded.at(name + ".bias");
            Value& bias_value = out.value(inputs[kBias]);
            bias_value.tensor = bias;
        }
        OpAttrs attrs = node.attrs;
        attrs.scalars[0] = loaded.at(name + ".input_scale").item();
        attrs.ints[0] = static_cast<std::int64_t>(loaded.at(name + ".input_zero_point").item());
        return out.add_node(*node.op, node_inputs, attrs);
    });
    int8_graph = eliminate_dead_code(int8_graph);
}

}  // namespace xgrad::transforms

#include "xgrad/transforms/fold.hpp"

#include <cmath>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "xgrad/graph/passes.hpp"
#include "xgrad/op.hpp"

namespace xgrad::transforms {

namespace {

bool is_fixed(const Value& value) {
    return value.kind == ValueKind::parameter || value.kind == ValueKind::buffer ||
           value.kind == ValueKind::constant;
}

// How many node inputs and graph outputs read each value.
std::vector<std::size_t> count_uses(const Graph& graph) {
    std::vector<std::size_t> uses(graph.values().size(), 0);
    for (const Node& node : graph.nodes()) {
        for (std::size_t id : node.inputs) {
            ++uses[id];
        }
    }
    for (std::size_t id : graph.outputs()) {
        ++uses[id];
    }
    return uses;
}

// The batch norm's inputs, by the layout batch_norm_inference records:
// x, running_mean, running_var, then weight and bias where attrs.ints
// marks them present. Ids refer to the graph being built.
struct BatchNormInputs {
    std::size_t mean;
    std::size_t var;
    std::optional<std::size_t> weight;
    std::optional<std::size_t> bias;
    double eps;
};

BatchNormInputs batch_norm_inputs(const Node& node, const std::vector<std::size_t>& inputs) {
    BatchNormInputs bn{inputs[1], inputs[2], std::nullopt, std::nullopt, node.attrs.scalars[0]};
    std::size_t next = 3;
    if (node.attrs.ints[0] != 0) {
        bn.weight = inputs[next++];
    }
    if (node.attrs.ints[1] != 0) {
        bn.bias = inputs[next];
    }
    return bn;
}

std::size_t add_constant(Graph& out, Tensor tensor, std::string name) {
    Value value;
    value.kind = ValueKind::constant;
    value.name = std::move(name);
    value.tensor = std::move(tensor);
    return out.add_value(std::move(value));
}

// W' and b' of the header's formula, as new constants of `out`.
std::pair<std::size_t, std::size_t> folded_weight_and_bias(Graph& out, const Node& conv,
                                                           const BatchNormInputs& bn) {
    const Value& weight_value = out.value(conv.inputs[1]);
    const std::string name = weight_value.name;
    const Tensor weight = weight_value.tensor;
    const Tensor conv_bias = conv.inputs.size() == 3 ? out.value(conv.inputs[2]).tensor : Tensor();
    const Tensor mean = out.value(bn.mean).tensor;
    const Tensor var = out.value(bn.var).tensor;
    const Tensor gamma = bn.weight ? out.value(*bn.weight).tensor : Tensor();
    const Tensor beta = bn.bias ? out.value(*bn.bias).tensor : Tensor();

    Tensor folded_weight;
    Tensor folded_bias;
    detail::visit_floating(weight.dtype(), "fold_batch_norm", [&](auto zero) {
        using T = decltype(zero);
        // Statistics and affine tensors may have another float dtype.
        const auto at = [](const Tensor& t, std::size_t c) {
            return t.dtype() == Dtype::float64 ? t.values<double>().flat(c)
                                               : static_cast<double>(t.values<float>().flat(c));
        };
        xt::xarray<T> w = weight.values<T>();
        const std::size_t channels = w.shape()[0];
        const std::size_t per_channel = w.size() / channels;
        xt::xarray<T> b = xt::zeros<T>({channels});
        for (std::size_t c = 0; c < channels; ++c) {
            const double g = gamma.defined() ? at(gamma, c) : 1.0;
            const double scale = g / std::sqrt(at(var, c) + bn.eps);
            for (std::size_t i = c * per_channel; i < (c + 1) * per_channel; ++i) {
                w.flat(i) = static_cast<T>(static_cast<double>(w.flat(i)) * scale);
            }
            const double shift = conv_bias.defined() ? at(conv_bias, c) : 0.0;
            const double offset = beta.defined() ? at(beta, c) : 0.0;
            b(c) = static_cast<T>(scale * (shift - at(mean, c)) + offset);
        }
        folded_weight = Tensor(std::move(w));
        folded_bias = Tensor(std::move(b));
    });
    return {add_constant(out, std::move(folded_weight), name + ".folded"),
            add_constant(out, std::move(folded_bias), name + ".folded_bias")};
}

}  // namespace

Graph fold_batch_norm(const Graph& graph) {
    const OpDef& conv_op = find_op("conv2d");
    const OpDef& batch_norm_op = find_op("batch_norm_inference");
    const std::vector<std::size_t> uses = count_uses(graph);

    const Graph folded = rewrite_nodes(graph, [&](Graph& out, const Node& node,
                                                  const std::vector<std::size_t>& inputs) {
        if (node.op != &batch_norm_op) {
            return out.add_node(*node.op, inputs, node.attrs);
        }
        const Value& source = graph.value(node.inputs[0]);
        const bool after_conv = source.kind == ValueKind::op &&
                                graph.nodes()[source.node].op == &conv_op &&
                                uses[node.inputs[0]] == 1;
        if (!after_conv) {
            return out.add_node(*node.op, inputs, node.attrs);
        }
        // The copy of the convolution in `out` produced this node's input.
        const Node conv = out.nodes()[out.value(inputs[0]).node];
        const BatchNormInputs bn = batch_norm_inputs(node, inputs);
        bool fixed = true;
        for (std::size_t i = 1; i < conv.inputs.size(); ++i) {
            fixed = fixed && is_fixed(out.value(conv.inputs[i]));
        }
        for (const auto id : {std::optional(bn.mean), std::optional(bn.var), bn.weight, bn.bias}) {
            fixed = fixed && (!id || is_fixed(out.value(*id)));
        }
        if (!fixed) {
            return out.add_node(*node.op, inputs, node.attrs);
        }
        const auto [weight, bias] = folded_weight_and_bias(out, conv, bn);
        return out.add_node(conv_op, {conv.inputs[0], weight, bias}, conv.attrs);
    });
    // The original convolutions now feed nothing.
    return eliminate_dead_code(folded);
}

}  // namespace xgrad::transforms

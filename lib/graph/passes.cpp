#include "xgrad/graph/passes.hpp"

#include <string>

namespace xgrad {

Pass compose(std::vector<Pass> passes) {
    return [passes = std::move(passes)](const Graph& graph) {
        Graph result = graph;
        for (const Pass& pass : passes) {
            result = pass(result);
        }
        return result;
    };
}

const OpDef& find_op(const std::string& name) {
    std::string known;
    for (const OpDef* op : registered_ops()) {
        if (name == op->info.name) {
            return *op;
        }
        known += (known.empty() ? "" : ", ") + std::string(op->info.name);
    }
    throw value_error("find_op: no op named '" + name + "'; registered ops: " + known);
}

Graph rewrite_nodes(const Graph& graph, const NodeRewrite& rewrite) {
    Graph out;
    std::vector<std::size_t> mapped(graph.values().size(), 0);
    std::vector<bool> done(graph.values().size(), false);
    auto map_leaf = [&](std::size_t id) {
        if (!done[id]) {
            mapped[id] = out.add_value(graph.value(id));
            done[id] = true;
        }
        return mapped[id];
    };
    std::vector<std::size_t> inputs;
    for (std::size_t id : graph.inputs()) {
        inputs.push_back(map_leaf(id));
    }
    out.set_inputs(inputs);
    // Other leaves keep their order of first appearance in the original.
    for (std::size_t id = 0; id < graph.values().size(); ++id) {
        if (graph.value(id).kind != ValueKind::op) {
            map_leaf(id);
        }
    }
    for (const Node& node : graph.nodes()) {
        std::vector<std::size_t> node_inputs;
        for (std::size_t input : node.inputs) {
            node_inputs.push_back(mapped[input]);
        }
        mapped[node.output] = rewrite(out, node, node_inputs);
        done[node.output] = true;
    }
    std::vector<std::size_t> outputs;
    for (std::size_t id : graph.outputs()) {
        outputs.push_back(mapped[id]);
    }
    out.set_outputs(outputs);
    return out;
}

Graph eliminate_dead_code(const Graph& graph) {
    std::vector<bool> live(graph.values().size(), false);
    for (std::size_t id : graph.outputs()) {
        live[id] = true;
    }
    for (std::size_t n = graph.nodes().size(); n-- > 0;) {
        const Node& node = graph.nodes()[n];
        if (live[node.output]) {
            for (std::size_t input : node.inputs) {
                live[input] = true;
            }
        }
    }
    for (std::size_t id : graph.inputs()) {
        live[id] = true;  // the inputs define how forward() is called
    }

    Graph out;
    std::vector<std::size_t> mapped(graph.values().size(), 0);
    for (std::size_t id = 0; id < graph.values().size(); ++id) {
        if (live[id] && graph.value(id).kind != ValueKind::op) {
            mapped[id] = out.add_value(graph.value(id));
        }
    }
    std::vector<std::size_t> inputs;
    for (std::size_t id : graph.inputs()) {
        inputs.push_back(mapped[id]);
    }
    out.set_inputs(inputs);
    for (const Node& node : graph.nodes()) {
        if (!live[node.output]) {
            continue;
        }
        std::vector<std::size_t> node_inputs;
        for (std::size_t input : node.inputs) {
            node_inputs.push_back(mapped[input]);
        }
        mapped[node.output] = out.add_node(*node.op, std::move(node_inputs), node.attrs);
    }
    std::vector<std::size_t> outputs;
    for (std::size_t id : graph.outputs()) {
        outputs.push_back(mapped[id]);
    }
    out.set_outputs(outputs);
    return out;
}

Graph fold_constants(const Graph& graph) {
    const Graph folded = rewrite_nodes(graph, [](Graph& out, const Node& node,
                                                 const std::vector<std::size_t>& inputs) {
        std::vector<const detail::Array*> arrays;
        for (std::size_t input : inputs) {
            const Value& v = out.value(input);
            if (v.kind != ValueKind::constant) {
                return out.add_node(*node.op, inputs, node.attrs);
            }
            arrays.push_back(&v.tensor.storage().values);
        }
        const std::size_t computed = out.add_node(*node.op, inputs, node.attrs);
        const Value& spec = out.value(computed);
        detail::Array result = detail::Array::uninitialized(spec.dtype, spec.shape);
        node.op->forward(OpArgs(node.op->info.name, arrays, node.attrs), result);
        Value constant;
        constant.kind = ValueKind::constant;
        constant.tensor = Tensor(std::move(result));
        // The node added above to learn the output's shape is now dead, and
        // eliminate_dead_code below removes it.
        return out.add_value(std::move(constant));
    });
    return eliminate_dead_code(folded);
}

}  // namespace xgrad

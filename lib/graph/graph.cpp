// Graph structure, listing and DOT export. Replay lives in replay.cpp.

#include "xgrad/graph/graph.hpp"

#include <algorithm>
#include <string>

#include "graph/replay.hpp"

namespace xgrad {

const char* value_kind_name(ValueKind kind) {
    switch (kind) {
        case ValueKind::input:
            return "input";
        case ValueKind::parameter:
            return "parameter";
        case ValueKind::buffer:
            return "buffer";
        case ValueKind::constant:
            return "constant";
        case ValueKind::op:
            break;
    }
    return "op";
}

Graph::Graph() = default;
Graph::~Graph() = default;
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;

// A copy shares parameter, buffer and constant tensors with the original but
// not the replay buffers, which it builds on its first forward().
Graph::Graph(const Graph& other)
    : values_(other.values_), nodes_(other.nodes_), inputs_(other.inputs_), outputs_(other.outputs_) {}

Graph& Graph::operator=(const Graph& other) {
    if (this != &other) {
        values_ = other.values_;
        nodes_ = other.nodes_;
        inputs_ = other.inputs_;
        outputs_ = other.outputs_;
        replay_.reset();
    }
    return *this;
}

std::size_t Graph::add_value(Value value) {
    if (value.kind == ValueKind::op) {
        throw value_error("Graph::add_value: op values are created by add_node()");
    }
    if (value.kind != ValueKind::input) {
        if (!value.tensor.defined()) {
            throw value_error(std::string("Graph::add_value: the ") + value_kind_name(value.kind) +
                              " '" + value.name + "' needs a defined tensor");
        }
        value.shape = value.tensor.shape();
        value.dtype = value.tensor.dtype();
    }
    replay_.reset();
    values_.push_back(std::move(value));
    return values_.size() - 1;
}

std::size_t Graph::add_node(const OpDef& op, std::vector<std::size_t> inputs, OpAttrs attrs) {
    // The shape rule needs arrays. Leaf values lend their tensors; op values,
    // whose contents exist only during replay, get zeros of their shape and
    // dtype (enough for shape rules that read index values).
    std::vector<detail::Array> placeholders;
    placeholders.reserve(inputs.size());
    std::vector<const detail::Array*> pointers;
    for (std::size_t id : inputs) {
        const Value& input = value(id);
        if (input.tensor.defined()) {
            pointers.push_back(&input.tensor.storage().values);
        } else {
            placeholders.push_back(detail::Array::zeros(input.dtype, input.shape));
            pointers.push_back(&placeholders.back());
        }
    }
    const OutputSpec spec = op.infer(OpArgs(op.info.name, pointers, attrs));

    Value output;
    output.kind = ValueKind::op;
    output.shape = spec.shape;
    output.dtype = spec.dtype;
    output.node = nodes_.size();
    values_.push_back(std::move(output));
    nodes_.push_back(Node{&op, std::move(attrs), std::move(inputs), values_.size() - 1});
    replay_.reset();
    return values_.size() - 1;
}

void Graph::set_outputs(std::vector<std::size_t> outputs) {
    for (std::size_t id : outputs) {
        value(id);
    }
    outputs_ = std::move(outputs);
    replay_.reset();
}

void Graph::set_inputs(std::vector<std::size_t> inputs) {
    for (std::size_t id : inputs) {
        if (value(id).kind != ValueKind::input) {
            throw value_error("Graph::set_inputs: value " + std::to_string(id) + " is a " +
                              value_kind_name(value(id).kind) + ", not an input");
        }
    }
    inputs_ = std::move(inputs);
    replay_.reset();
}

void Graph::replace_uses(std::size_t from, std::size_t to) {
    value(from);
    const Value& target = value(to);
    for (std::size_t n = 0; n < nodes_.size(); ++n) {
        if (target.kind == ValueKind::op && target.node == n) {
            continue;
        }
        for (std::size_t& input : nodes_[n].inputs) {
            if (input == from) {
                input = to;
            }
        }
    }
    for (std::size_t& output : outputs_) {
        if (output == from) {
            output = to;
        }
    }
    replay_.reset();
}

std::vector<std::size_t> Graph::parameter_values() const {
    std::vector<std::size_t> ids;
    for (std::size_t id = 0; id < values_.size(); ++id) {
        if (values_[id].kind == ValueKind::parameter) {
            ids.push_back(id);
        }
    }
    return ids;
}

std::size_t Graph::find_value(const std::string& name) const {
    std::string known;
    for (std::size_t id = 0; id < values_.size(); ++id) {
        const Value& v = values_[id];
        if (v.kind == ValueKind::parameter || v.kind == ValueKind::buffer) {
            if (v.name == name) {
                return id;
            }
            known += (known.empty() ? "" : ", ") + v.name;
        }
    }
    throw value_error("Graph::find_value: no parameter or buffer named '" + name +
                      "'; the graph has: " + (known.empty() ? "none" : known));
}

namespace {

std::string display_name(const Graph& graph, std::size_t id) {
    const Value& v = graph.value(id);
    switch (v.kind) {
        case ValueKind::op:
            return "%" + std::to_string(id);
        case ValueKind::constant:
            return "c" + std::to_string(id);
        default:
            return v.name;
    }
}

std::string type_string(const Value& v) {
    return std::string(dtype_name(v.dtype)) + " " + shape_string(v.shape);
}

std::string dot_escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out;
}

}  // namespace

std::string Graph::to_string() const {
    std::string text = "graph(";
    for (std::size_t i = 0; i < inputs_.size(); ++i) {
        text += (i > 0 ? ", " : "") + display_name(*this, inputs_[i]) + ": " +
                type_string(value(inputs_[i]));
    }
    text += ")\n";
    for (std::size_t id = 0; id < values_.size(); ++id) {
        const Value& v = values_[id];
        if (v.kind == ValueKind::parameter || v.kind == ValueKind::buffer ||
            v.kind == ValueKind::constant) {
            text += std::string("  ") + value_kind_name(v.kind) + " " + display_name(*this, id) +
                    ": " + type_string(v) + "\n";
        }
    }
    for (const Node& node : nodes_) {
        text += "  " + display_name(*this, node.output) + " = " + node.op->info.name + "(";
        for (std::size_t i = 0; i < node.inputs.size(); ++i) {
            text += (i > 0 ? ", " : "") + display_name(*this, node.inputs[i]);
        }
        text += ")";
        const std::string attributes = node.op->describe(node.attrs);
        if (!attributes.empty()) {
            text += " [" + attributes + "]";
        }
        text += ": " + type_string(value(node.output)) + "\n";
    }
    text += "  return ";
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
        text += (i > 0 ? ", " : "") + display_name(*this, outputs_[i]);
    }
    return text + "\n";
}

std::string Graph::to_dot(const std::string& title) const {
    std::string dot = "digraph \"" + dot_escape(title) + "\" {\n"
                      "  node [fontname=\"Helvetica\", fontsize=11];\n"
                      "  edge [fontname=\"Helvetica\", fontsize=9];\n";
    // Leaf values are ovals (parameters filled); op values are drawn as the
    // box of the node that computes them.
    auto vertex = [&](std::size_t id) {
        const Value& v = value(id);
        return v.kind == ValueKind::op ? "n" + std::to_string(v.node) : "v" + std::to_string(id);
    };
    for (std::size_t id = 0; id < values_.size(); ++id) {
        const Value& v = values_[id];
        if (v.kind == ValueKind::op) {
            continue;
        }
        std::string style;
        if (v.kind == ValueKind::parameter) {
            style = ", style=filled, fillcolor=\"#ffd966\"";
        } else if (v.kind == ValueKind::buffer || v.kind == ValueKind::constant) {
            style = ", style=filled, fillcolor=\"#e0e0e0\"";
        } else {
            style = ", style=filled, fillcolor=\"#a9d18e\"";
        }
        dot += "  " + vertex(id) + " [shape=oval, label=\"" + dot_escape(display_name(*this, id)) +
               "\\n" + dot_escape(type_string(v)) + "\"" + style + "];\n";
    }
    for (std::size_t n = 0; n < nodes_.size(); ++n) {
        const Node& node = nodes_[n];
        std::string label = node.op->info.name;
        const std::string attributes = node.op->describe(node.attrs);
        if (!attributes.empty()) {
            label += "\\n" + dot_escape(attributes);
        }
        label += "\\n" + dot_escape(shape_string(value(node.output).shape));
        dot += "  n" + std::to_string(n) + " [shape=box, style=rounded, label=\"" + label + "\"];\n";
        for (std::size_t input : node.inputs) {
            dot += "  " + vertex(input) + " -> n" + std::to_string(n) + ";\n";
        }
    }
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
        dot += "  out" + std::to_string(i) + " [shape=plaintext, label=\"output " +
               std::to_string(i) + "\"];\n";
        dot += "  " + vertex(outputs_[i]) + " -> out" + std::to_string(i) + ";\n";
    }
    return dot + "}\n";
}

void Graph::check_structure() const {
    for (std::size_t n = 0; n < nodes_.size(); ++n) {
        for (std::size_t input : nodes_[n].inputs) {
            const Value& v = value(input);
            if (v.kind == ValueKind::op && v.node >= n) {
                throw value_error("Graph: node " + std::to_string(n) + " (" +
                                  nodes_[n].op->info.name + ") reads %" + std::to_string(input) +
                                  ", which a later node computes");
            }
        }
    }
}

}  // namespace xgrad

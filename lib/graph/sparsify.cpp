#include "xgrad/graph/sparsify.hpp"

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "xgrad/graph/passes.hpp"

namespace xgrad {

namespace {

std::size_t add_constant(Graph& out, Tensor tensor, std::string name) {
    Value value;
    value.kind = ValueKind::constant;
    value.name = std::move(name);
    value.tensor = std::move(tensor);
    return out.add_value(std::move(value));
}

// True for a weight whose values are known when the pass runs and sparse
// enough to replace.
bool is_sparse_fixed_weight(const Value& weight, double min_sparsity) {
    const bool fixed = weight.kind == ValueKind::parameter || weight.kind == ValueKind::constant;
    return fixed && sparsity(weight.tensor) >= min_sparsity;
}

// Adds the sparse_linear node that replaces a linear node on `inputs`: x,
// weight and an optional bias.
std::size_t add_sparse_linear(Graph& out, const OpDef& sparse_linear_op,
                              const std::vector<std::size_t>& inputs) {
    // A copy, because adding values below may move the weight's Value.
    const std::string name = out.value(inputs[1]).name;
    CsrMatrix csr = to_csr(out.value(inputs[1]).tensor);
    std::vector<std::size_t> sparse_inputs = {
        inputs[0],
        add_constant(out, std::move(csr.values), name + ".csr_values"),
        add_constant(out, std::move(csr.column_indices), name + ".csr_column_indices"),
        add_constant(out, std::move(csr.row_offsets), name + ".csr_row_offsets"),
    };
    if (inputs.size() == 3) {
        sparse_inputs.push_back(inputs[2]);
    }
    OpAttrs attrs;
    attrs.ints.push_back(static_cast<std::int64_t>(csr.columns));
    return out.add_node(sparse_linear_op, std::move(sparse_inputs), std::move(attrs));
}

}  // namespace

Graph sparsify(const Graph& graph, double min_sparsity) {
    if (!(min_sparsity >= 0.0 && min_sparsity <= 1.0)) {
        std::ostringstream value;
        value << min_sparsity;
        throw value_error("sparsify: min_sparsity must be in [0, 1], got " + value.str());
    }
    const OpDef& linear_op = find_op("linear");
    const OpDef& sparse_linear_op = find_op("sparse_linear");

    return rewrite_nodes(graph, [&](Graph& out, const Node& node,
                                    const std::vector<std::size_t>& inputs) {
        if (node.op == &linear_op && is_sparse_fixed_weight(out.value(inputs[1]), min_sparsity)) {
            return add_sparse_linear(out, sparse_linear_op, inputs);
        }
        return out.add_node(*node.op, inputs, node.attrs);
    });
}

}  // namespace xgrad

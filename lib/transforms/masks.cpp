#include "transforms/masks.hpp"

#include <string>

namespace xgrad::transforms {

std::vector<Mask> find_masks(const Graph& graph) {
    std::vector<Mask> masks;
    for (std::size_t n = 0; n < graph.nodes().size(); ++n) {
        const Node& node = graph.nodes()[n];
        if (std::string(node.op->info.name) != "mul" || node.inputs.size() != 2) {
            continue;
        }
        const Value& parameter = graph.value(node.inputs[0]);
        const Value& mask = graph.value(node.inputs[1]);
        if (parameter.kind == ValueKind::parameter && mask.kind == ValueKind::buffer &&
            mask.name == parameter.name + kMaskSuffix) {
            masks.push_back({node.inputs[0], node.inputs[1], n});
        }
    }
    return masks;
}

std::optional<Operand> operand_of(const Graph& graph, const std::vector<Mask>& masks,
                                  std::size_t id) {
    const Value& value = graph.value(id);
    if (value.kind == ValueKind::parameter || value.kind == ValueKind::buffer ||
        value.kind == ValueKind::constant) {
        return Operand{id};
    }
    if (value.kind != ValueKind::op) {
        return std::nullopt;
    }
    for (const Mask& mask : masks) {
        if (mask.node == value.node) {
            return Operand{mask.parameter, &mask};
        }
    }
    return std::nullopt;
}

}  // namespace xgrad::transforms

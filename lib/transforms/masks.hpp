#pragma once

// Pruning masks in a graph, shared by the pruning passes (prune.cpp) and
// channel removal (channels.cpp). Not installed.

#include <cstddef>
#include <optional>
#include <vector>

#include "xgrad/graph/graph.hpp"

namespace xgrad::transforms {

inline constexpr const char* kMaskSuffix = ".mask";

// A mask in a graph: the parameter, its mask buffer and the mul node that
// combines them.
struct Mask {
    std::size_t parameter;
    std::size_t mask;
    std::size_t node;
};

std::vector<Mask> find_masks(const Graph& graph);

// The tensor behind a node input: `leaf` is the input itself when it is a
// parameter, buffer or constant, or the masked parameter when the input is
// the output of a mask node (then `mask` points into the masks given).
struct Operand {
    std::size_t leaf;
    const Mask* mask = nullptr;
};

// The operand behind value `id`, or nullopt when another op computes it.
std::optional<Operand> operand_of(const Graph& graph, const std::vector<Mask>& masks,
                                  std::size_t id);

}  // namespace xgrad::transforms

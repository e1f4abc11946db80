#pragma once

// Graph transforms. A pass takes a graph and returns a new one; passes
// compose, and none edits an op's definition. docs/graph.md shows how to
// write one.

#include <functional>
#include <string>
#include <vector>

#include "xgrad/graph/graph.hpp"

namespace xgrad {

using Pass = std::function<Graph(const Graph&)>;

/// A pass that runs `passes` in order.
Pass compose(std::vector<Pass> passes);

/// Removes the nodes and leaf values (other than inputs) that no output
/// depends on.
Graph eliminate_dead_code(const Graph& graph);

/// Computes every node whose inputs are all constants once, replaces its
/// output by a constant holding the result, and removes what became dead.
/// Parameters and buffers are not constants: they may change between replays.
Graph fold_constants(const Graph& graph);

/// The registered op with this name; throws value_error listing the
/// registered names when there is none.
const OpDef& find_op(const std::string& name);

/// Copies `graph`, calling `rewrite` for every node in order. `rewrite`
/// receives the new graph, the original node and the node's inputs already
/// mapped to ids in the new graph, and returns the id of the value that
/// replaces the node's output (usually from Graph::add_node). This is the
/// building block of most passes.
using NodeRewrite = std::function<std::size_t(Graph& out, const Node& node,
                                              const std::vector<std::size_t>& inputs)>;
Graph rewrite_nodes(const Graph& graph, const NodeRewrite& rewrite);

}  // namespace xgrad

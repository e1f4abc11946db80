#pragma once

// sparsify(): the graph pass that runs pruned Linear layers as sparse
// products. xgrad/ops/sparse.hpp describes the op and when it pays off.

#include "xgrad/graph/graph.hpp"
#include "xgrad/ops/sparse.hpp"

namespace xgrad {

/// Replaces each `linear` node whose weight is a parameter or a constant with
/// at least `min_sparsity` exact zeros (see sparsity()) by a `sparse_linear`
/// node on the same x and bias. The weight's CSR form (to_csr()) becomes
/// three new constant values, named after the weight with the suffixes
/// ".csr_values", ".csr_column_indices" and ".csr_row_offsets". Every other
/// node is copied unchanged, including `linear` nodes whose weight is an
/// input, a buffer or an op output.
///
/// The CSR constants copy the weight's values as they are when the pass
/// runs: the result is for inference, and later changes to the parameter
/// (an optimizer step) do not reach it. The dense weight stays in the graph
/// as an unused leaf, so the parameter list does not change;
/// eliminate_dead_code() removes it.
///
/// Throws value_error when min_sparsity is not in [0, 1].
Graph sparsify(const Graph& graph, double min_sparsity = kSparseLinearThreshold);

}  // namespace xgrad

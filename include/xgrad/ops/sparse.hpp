#pragma once

// Sparse inference for pruned Linear layers. After pruning, many entries of a
// layer's weight are exactly zero. to_csr() stores only the nonzero entries in
// compressed sparse row (CSR) form, and sparse_linear() computes the layer
// from that form, skipping the zeros. The sparsify() pass
// (xgrad/graph/sparsify.hpp) does both for every sparse enough `linear` node
// of a captured graph:
//
//   xgrad::Graph graph = xgrad::capture(model, example_batch);
//   xgrad::Graph fast = xgrad::sparsify(graph);  // kSparseLinearThreshold by default
//   const xgrad::Tensor& logits = fast.forward({batch})[0];
//
// Sparse pays off only at high sparsity: each stored entry costs an index
// as well as a value, its access to x is irregular, and sparse_linear runs
// on one thread while OpenBLAS may use two for linear. Measured with
// tests/bench/bench_sparse for the Fashion-MNIST MLP's layer shapes in
// float32 (docs/benchmarks.md, "Sparse against dense inference"),
// sparse_linear was faster than linear from 0.7 to 0.8 sparsity at batch 128
// (4 times slower at 0, 4 times faster at 0.99 for 784 -> 256), but only
// from 0.9 to 0.95 at batch 1, where the dense product is a fast
// matrix-vector product. The rewritten graph contains a copy of the weights
// taken when the pass ran and is for inference only: later optimizer steps
// do not reach it, and no gradient flows through sparse_linear.

#include <cstddef>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// The default sparsity (fraction of exact zeros) from which sparsify()
/// replaces a dense `linear` by `sparse_linear`. Measured by
/// tests/bench/bench_sparse on the 2-core Intel Xeon VM (AVX-512) of
/// docs/benchmarks.md against OpenBLAS 0.3.21 with 2 threads, float32: the
/// crossovers were 0.95 (784 -> 256) and 0.9 (256 -> 128) at batch 1, and
/// 0.8 and 0.7 at batch 128, so from 0.95 sparse was not slower at either
/// batch size. (128 -> 10 took about 0.2 us either way at batch 1, the cost
/// of an op call.) For batch-128 inference alone, 0.8 would do. Measure
/// again on other hardware or layer shapes.
inline constexpr double kSparseLinearThreshold = 0.95;

/// A matrix of shape (rows, columns) in compressed sparse row form. Row i's
/// stored entries are values[k] at column column_indices[k] for k in
/// [row_offsets[i], row_offsets[i + 1]). Entries of a row may come in any
/// column order, and entries repeated at one position add up.
struct CsrMatrix {
    Tensor values;            ///< float32 or float64, shape (nnz)
    Tensor column_indices;    ///< int64, shape (nnz)
    Tensor row_offsets;       ///< int64, shape (rows + 1), from 0 up to nnz
    std::size_t columns = 0;  ///< number of columns, which the three tensors do not record

    /// Number of rows; 0 while row_offsets is undefined or empty.
    std::size_t rows() const {
        const std::size_t offsets = row_offsets.defined() ? row_offsets.numel() : 0;
        return offsets == 0 ? 0 : offsets - 1;
    }
    /// Number of stored entries; 0 while values is undefined.
    std::size_t nnz() const { return values.defined() ? values.numel() : 0; }
};

/// Converts a two-dimensional float32 or float64 matrix to CSR, keeping every
/// element that is not exactly zero (NaN is kept; -0.0 is dropped) in row
/// order, columns ascending. The values keep the matrix's dtype. Throws
/// shape_error for a matrix that is not two-dimensional and value_error for
/// an int64 one.
CsrMatrix to_csr(const Tensor& matrix);

/// Fraction of elements of a float32 or float64 tensor that are exactly zero
/// (-0.0 counts as zero, NaN does not); 0 for a tensor with no elements.
/// Throws value_error for an int64 tensor.
double sparsity(const Tensor& x);

/// The `linear` layer with a CSR weight: y = x W^T + b, with x of shape
/// (..., in_features), W of shape (out_features, in_features) given as CSR
/// with weight.columns == in_features, and an optional bias b of shape
/// (out_features). y has shape (..., out_features) and x's dtype, which must
/// be the dtype of W's values and of b. Pass an undefined tensor as bias for
/// no bias.
///
/// Inference only: the op is not differentiable, so no gradient reaches x,
/// W or b; nothing is recorded on the tape (capture() still records it).
///
/// Throws value_error when a dtype is wrong, when row_offsets does not start
/// at 0, decreases or does not end at nnz, or when a column index is outside
/// [0, in_features), naming the position and the value. Throws shape_error
/// when a CSR tensor is not one-dimensional, when row_offsets is empty, when
/// values and column_indices differ in length, when x's last dimension is
/// not in_features, or when the bias does not have shape (out_features).
///
/// The shape rule reads the CSR tensors, so every eager call takes time
/// proportional to nnz to check them. A replayed graph checks them only when
/// the node is added. For three or more rows of x, each calling thread keeps a
/// scratch block of in_features * 32 float32 (or * 16 float64) elements,
/// which later calls reuse, until the thread exits.
Tensor sparse_linear(const Tensor& x, const CsrMatrix& weight, const Tensor& bias = Tensor());

}  // namespace xgrad

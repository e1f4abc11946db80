#pragma once

// Row-major general matrix product through CBLAS:
//   C = alpha * op(A) op(B) + beta * C, with op(X) = X or X^T.

#include <cstddef>

namespace xgrad::detail {

template <class T>
void gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

}  // namespace xgrad::detail

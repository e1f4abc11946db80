#include "kernels/gemm.hpp"

#include <cblas.h>

namespace xgrad::detail {

namespace {

CBLAS_TRANSPOSE to_cblas(bool transpose) { return transpose ? CblasTrans : CblasNoTrans; }

// BLAS rejects a leading dimension of 0, even for an empty matrix.
blasint to_blasint(std::size_t value) { return static_cast<blasint>(value == 0 ? 1 : value); }

// Handles the shapes BLAS does not: nothing to compute, or k = 0 where the
// product is zero and C only scales by beta. Returns true when it did.
template <class T>
bool gemm_degenerate(std::size_t m, std::size_t n, std::size_t k, T beta, T* c, std::size_t ldc) {
    if (m == 0 || n == 0) {
        return true;
    }
    if (k != 0) {
        return false;
    }
    for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
            c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
        }
    }
    return true;
}

}  // namespace

template <>
void gemm<float>(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k,
                 float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                 float beta, float* c, std::size_t ldc) {
    if (gemm_degenerate(m, n, k, beta, c, ldc)) {
        return;
    }
    cblas_sgemm(CblasRowMajor, to_cblas(transpose_a), to_cblas(transpose_b), to_blasint(m),
                to_blasint(n), to_blasint(k), alpha, a, to_blasint(lda), b, to_blasint(ldb), beta, c,
                to_blasint(ldc));
}

template <>
void gemm<double>(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k,
                  double alpha, const double* a, std::size_t lda, const double* b, std::size_t ldb,
                  double beta, double* c, std::size_t ldc) {
    if (gemm_degenerate(m, n, k, beta, c, ldc)) {
        return;
    }
    cblas_dgemm(CblasRowMajor, to_cblas(transpose_a), to_cblas(transpose_b), to_blasint(m),
                to_blasint(n), to_blasint(k), alpha, a, to_blasint(lda), b, to_blasint(ldb), beta, c,
                to_blasint(ldc));
}

}  // namespace xgrad::detail

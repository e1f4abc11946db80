#include "xgrad/ops/linalg.hpp"

#include <climits>
#include <vector>

#include "kernels/gemm.hpp"
#include "xgrad/op.hpp"

namespace xgrad {

namespace {

// How matmul sees its operands: a stack of (m, k) matrices times a stack of
// (k, n) matrices, and where in each operand the matrix for batch entry i
// starts (in matrices, not elements).
struct MatmulLayout {
    std::size_t m = 1;
    std::size_t k = 1;
    std::size_t n = 1;
    Shape out_shape;
    std::vector<std::size_t> a_offsets;
    std::vector<std::size_t> b_offsets;
    bool a_broadcast = false;  ///< some matrix of a is used by several batch entries
    bool b_broadcast = false;
};

// For each entry of the broadcast batch shape, the index of the operand's
// matrix that it reads (operand batch dimensions of extent 1 repeat).
std::vector<std::size_t> batch_offsets(const Shape& operand_batch, const Shape& batch) {
    const std::size_t rank = batch.size();
    const std::size_t skipped = rank - operand_batch.size();
    Shape strides(rank, 0);
    std::size_t stride = 1;
    for (std::size_t d = rank; d-- > skipped;) {
        const std::size_t extent = operand_batch[d - skipped];
        strides[d] = extent == 1 ? 0 : stride;
        stride *= extent;
    }
    std::vector<std::size_t> offsets(shape_size(batch));
    Shape index(rank, 0);
    std::size_t offset = 0;
    for (std::size_t& entry : offsets) {
        entry = offset;
        for (std::size_t d = rank; d-- > 0;) {
            offset += strides[d];
            if (++index[d] < batch[d]) {
                break;
            }
            offset -= strides[d] * batch[d];
            index[d] = 0;
        }
    }
    return offsets;
}

MatmulLayout matmul_layout(const Shape& a, const Shape& b) {
    if (a.empty() || b.empty()) {
        throw value_error("matmul: both inputs need at least one dimension: a has shape " +
                          shape_string(a) + ", b has shape " + shape_string(b));
    }
    MatmulLayout layout;
    const bool a_vector = a.size() == 1;
    const bool b_vector = b.size() == 1;
    layout.m = a_vector ? 1 : a[a.size() - 2];
    layout.k = a.back();
    const std::size_t b_k = b_vector ? b[0] : b[b.size() - 2];
    layout.n = b_vector ? 1 : b.back();
    if (layout.k != b_k) {
        throw shape_error("matmul: inner dimensions differ: a has shape " + shape_string(a) +
                          ", b has shape " + shape_string(b));
    }
    for (std::size_t extent : {layout.m, layout.k, layout.n}) {
        if (extent > static_cast<std::size_t>(INT_MAX)) {
            throw not_implemented("matmul: a matrix dimension exceeds the 32-bit BLAS limit");
        }
    }

    const Shape a_batch(a.begin(), a.end() - (a_vector ? 1 : 2));
    const Shape b_batch(b.begin(), b.end() - (b_vector ? 1 : 2));
    Shape batch;
    try {
        batch = broadcast_shapes("matmul", a_batch, b_batch);
    } catch (const shape_error&) {
        throw shape_error("matmul: batch dimensions cannot be broadcast: a has shape " +
                          shape_string(a) + ", b has shape " + shape_string(b));
    }
    layout.a_offsets = batch_offsets(a_batch, batch);
    layout.b_offsets = batch_offsets(b_batch, batch);
    layout.a_broadcast = shape_size(a_batch) != layout.a_offsets.size();
    layout.b_broadcast = shape_size(b_batch) != layout.b_offsets.size();

    layout.out_shape = batch;
    if (!a_vector) {
        layout.out_shape.push_back(layout.m);
    }
    if (!b_vector) {
        layout.out_shape.push_back(layout.n);
    }
    return layout;
}

struct Matmul {
    static constexpr OpInfo kInfo{.name = "matmul", .arity = 2, .saved_inputs = kSaveAllInputs};

    static OutputSpec infer(const OpArgs& args) {
        check_same_dtype(args);
        if (!is_floating(args.dtype(0))) {
            detail::throw_not_floating("matmul", args.dtype(0));
        }
        return {matmul_layout(args.shape(0), args.shape(1)).out_shape, args.dtype(0)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& c) {
        const MatmulLayout layout = matmul_layout(args.shape(0), args.shape(1));
        const auto [m, k, n] = std::tuple{layout.m, layout.k, layout.n};
        const T* a = args.values<T>(0).data();
        const T* b = args.values<T>(1).data();
        for (std::size_t i = 0; i < layout.a_offsets.size(); ++i) {
            detail::gemm<T>(false, false, m, n, k, T(1), a + layout.a_offsets[i] * m * k, k,
                            b + layout.b_offsets[i] * k * n, n, T(0), c.data() + i * m * n, n);
        }
    }

    // Per batch entry i: dA_i += dC_i B_i^T and dB_i += A_i^T dC_i. A matrix
    // shared by several entries sums their contributions (beta = 1 on a
    // zeroed gradient); otherwise beta = 0 overwrites uninitialised memory.
    template <class T>
    static void vjp(const VjpArgs& args) {
        const MatmulLayout layout = matmul_layout(args.shape(0), args.shape(1));
        const auto [m, k, n] = std::tuple{layout.m, layout.k, layout.n};
        const T* a = args.values<T>(0).data();
        const T* b = args.values<T>(1).data();
        const T* grad_c = args.grad_output<T>().data();

        if (auto* grad_a = args.grad<T>(0)) {
            *grad_a = gradient_buffer<T>(args.shape(0), layout.a_broadcast);
            const T beta = layout.a_broadcast ? T(1) : T(0);
            for (std::size_t i = 0; i < layout.a_offsets.size(); ++i) {
                detail::gemm<T>(false, true, m, k, n, T(1), grad_c + i * m * n, n,
                                b + layout.b_offsets[i] * k * n, n, beta,
                                grad_a->data() + layout.a_offsets[i] * m * k, k);
            }
        }
        if (auto* grad_b = args.grad<T>(1)) {
            *grad_b = gradient_buffer<T>(args.shape(1), layout.b_broadcast);
            const T beta = layout.b_broadcast ? T(1) : T(0);
            for (std::size_t i = 0; i < layout.b_offsets.size(); ++i) {
                detail::gemm<T>(true, false, k, n, m, T(1), a + layout.a_offsets[i] * m * k, k,
                                grad_c + i * m * n, n, beta,
                                grad_b->data() + layout.b_offsets[i] * k * n, n);
            }
        }
    }

    template <class T>
    static xt::xarray<T> gradient_buffer(const Shape& shape, bool zeroed) {
        return zeroed ? xt::xarray<T>(shape, T(0)) : xt::xarray<T>(shape);
    }
};

// Inputs: x (..., in), weight (out, in) and optionally bias (out). The
// leading dimensions of x flatten into the rows of one matrix product.
struct Linear {
    static std::size_t leading_rows(const Shape& x) {
        std::size_t rows = 1;
        for (std::size_t d = 0; d + 1 < x.size(); ++d) {
            rows *= x[d];
        }
        return rows;
    }

    static constexpr OpInfo kInfo{
        .name = "linear", .arity = kVariadic, .saved_inputs = kSaveInput0 | kSaveInput1};

    static OutputSpec infer(const OpArgs& args) {
        if (args.size() < 2 || args.size() > 3) {
            throw value_error("linear: expected x, weight and an optional bias, got " +
                              std::to_string(args.size()) + " tensors");
        }
        check_same_dtype(args);
        if (!is_floating(args.dtype(0))) {
            detail::throw_not_floating("linear", args.dtype(0));
        }
        const Shape& x = args.shape(0);
        const Shape& weight = args.shape(1);
        if (weight.size() != 2) {
            throw shape_error("linear: weight must have shape (out_features, in_features), got " +
                              shape_string(weight));
        }
        if (x.empty() || x.back() != weight[1]) {
            throw shape_error("linear: x has shape " + shape_string(x) + " but weight has shape " +
                              shape_string(weight) + "; the last dimension of x must be " +
                              std::to_string(weight[1]));
        }
        if (args.size() == 3 && args.shape(2) != Shape{weight[0]}) {
            throw shape_error("linear: bias has shape " + shape_string(args.shape(2)) +
                              " but weight has shape " + shape_string(weight) +
                              "; expected bias of shape (" + std::to_string(weight[0]) + ")");
        }
        Shape out = x;
        out.back() = weight[0];
        return {out, args.dtype(0)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto& x = args.values<T>(0);
        const auto& weight = args.values<T>(1);
        const std::size_t in = weight.shape()[1];
        const std::size_t out = weight.shape()[0];
        const std::size_t rows = leading_rows(x.shape());
        detail::gemm<T>(false, true, rows, out, in, T(1), x.data(), in, weight.data(), in, T(0),
                        y.data(), out);
        if (args.size() == 3) {
            const T* bias = args.values<T>(2).data();
            for (std::size_t r = 0; r < rows; ++r) {
                T* row = y.data() + r * out;
                for (std::size_t j = 0; j < out; ++j) {
                    row[j] += bias[j];
                }
            }
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& x = args.values<T>(0);
        const auto& weight = args.values<T>(1);
        const auto& grad_out = args.grad_output<T>();
        const std::size_t in = weight.shape()[1];
        const std::size_t out = weight.shape()[0];
        const std::size_t rows = leading_rows(x.shape());

        if (auto* grad_x = args.grad<T>(0)) {
            grad_x->resize(x.shape());
            detail::gemm<T>(false, false, rows, in, out, T(1), grad_out.data(), out, weight.data(),
                            in, T(0), grad_x->data(), in);
        }
        if (auto* grad_weight = args.grad<T>(1)) {
            grad_weight->resize(weight.shape());
            detail::gemm<T>(true, false, out, in, rows, T(1), grad_out.data(), out, x.data(), in,
                            T(0), grad_weight->data(), in);
        }
        if (args.size() == 3) {
            if (auto* grad_bias = args.grad<T>(2)) {
                grad_bias->resize(Shape{out});
                grad_bias->fill(T(0));
                T* target = grad_bias->data();
                for (std::size_t r = 0; r < rows; ++r) {
                    const T* row = grad_out.data() + r * out;
                    for (std::size_t j = 0; j < out; ++j) {
                        target[j] += row[j];
                    }
                }
            }
        }
    }
};

const OpDef& kMatmul = define_op<Matmul>();
const OpDef& kLinear = define_op<Linear>();

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) { return apply(kMatmul, a, b); }

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    if (bias.defined()) {
        return apply(kLinear, x, weight, bias);
    }
    const Tensor* inputs[] = {&x, &weight};
    return apply(kLinear, std::span<const Tensor* const>(inputs));
}

}  // namespace xgrad

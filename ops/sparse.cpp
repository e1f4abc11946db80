#include "xgrad/ops/sparse.hpp"

#include <algorithm>
#include <cstdint>
#include <experimental/simd>
#include <string>
#include <vector>

#include "xgrad/op.hpp"

namespace xgrad {

namespace {

namespace stdx = std::experimental;

// Inputs of the op, in order. attrs.ints[0] is in_features.
enum SparseLinearInput : std::size_t { kX, kValues, kColumns, kOffsets, kBias };

// --- shape rule ---------------------------------------------------------------

void check_dtypes(const OpArgs& args) {
    const Dtype dtype = args.dtype(kValues);
    if (!is_floating(dtype)) {
        throw value_error(std::string("sparse_linear: values must be float32 or float64, got ") +
                          dtype_name(dtype));
    }
    if (args.dtype(kX) != dtype) {
        throw value_error(std::string("sparse_linear: x is ") + dtype_name(args.dtype(kX)) +
                          " but the weight's values are " + dtype_name(dtype) +
                          "; convert one with to_dtype()");
    }
    if (args.size() > kBias && args.dtype(kBias) != dtype) {
        throw value_error(std::string("sparse_linear: bias is ") + dtype_name(args.dtype(kBias)) +
                          " but the weight's values are " + dtype_name(dtype) +
                          "; convert one with to_dtype()");
    }
    if (args.dtype(kColumns) != Dtype::int64) {
        throw value_error(std::string("sparse_linear: column_indices must be int64, got ") +
                          dtype_name(args.dtype(kColumns)));
    }
    if (args.dtype(kOffsets) != Dtype::int64) {
        throw value_error(std::string("sparse_linear: row_offsets must be int64, got ") +
                          dtype_name(args.dtype(kOffsets)));
    }
}

void check_vector(const OpArgs& args, std::size_t input, const char* name) {
    if (args.shape(input).size() != 1) {
        throw shape_error(std::string("sparse_linear: ") + name +
                          " must be one-dimensional, got shape " + shape_string(args.shape(input)));
    }
}

std::string weight_shape_string(std::size_t out_features, std::size_t in_features) {
    return "(" + std::to_string(out_features) + ", " + std::to_string(in_features) + ")";
}

// Offsets must run from 0 to nnz without decreasing.
void check_offsets(const xt::xarray<std::int64_t>& offsets, std::size_t nnz) {
    const std::int64_t* data = offsets.data();
    const std::size_t count = offsets.size();
    if (data[0] != 0) {
        throw value_error("sparse_linear: row_offsets[0] is " + std::to_string(data[0]) +
                          "; CSR row offsets start at 0");
    }
    const std::int64_t* drop = std::adjacent_find(
        data, data + count, [](std::int64_t a, std::int64_t b) { return b < a; });
    if (drop != data + count) {
        const auto i = static_cast<std::size_t>(drop - data);
        throw value_error("sparse_linear: row_offsets decreases from " + std::to_string(data[i]) +
                          " at position " + std::to_string(i) + " to " +
                          std::to_string(data[i + 1]) + " at position " + std::to_string(i + 1) +
                          "; CSR row offsets must not decrease");
    }
    if (data[count - 1] != static_cast<std::int64_t>(nnz)) {
        throw value_error("sparse_linear: row_offsets ends at " + std::to_string(data[count - 1]) +
                          " but values holds " + std::to_string(nnz) +
                          " entries; the last row offset must equal nnz");
    }
}

// An eager call scans every column index, so the scan has to be cheap: as
// unsigned numbers, negative indices are out of range too, and the OR over
// a fixed block of eight vectorizes at -O2. The position is searched for
// only when the scan found a bad index.
void check_columns(const xt::xarray<std::int64_t>& columns, std::size_t in_features) {
    constexpr std::size_t kBlock = 8;
    const std::int64_t* data = columns.data();
    const std::size_t count = columns.size();
    std::uint64_t any_outside = 0;
    std::size_t k = 0;
    for (; k + kBlock <= count; k += kBlock) {
        for (std::size_t j = 0; j < kBlock; ++j) {
            any_outside |= static_cast<std::uint64_t>(data[k + j]) >= in_features ? 1 : 0;
        }
    }
    for (; k < count; ++k) {
        any_outside |= static_cast<std::uint64_t>(data[k]) >= in_features ? 1 : 0;
    }
    if (any_outside != 0) {
        const auto bad = static_cast<std::size_t>(
            std::find_if(data, data + count,
                         [in_features](std::int64_t c) {
                             return static_cast<std::uint64_t>(c) >= in_features;
                         }) -
            data);
        throw value_error("sparse_linear: column index " + std::to_string(data[bad]) +
                          " at position " + std::to_string(bad) +
                          " is out of range for in_features " + std::to_string(in_features) +
                          "; column indices must be in [0, " + std::to_string(in_features) + ")");
    }
}

// --- kernels ------------------------------------------------------------------
//
// y = x W^T + b with x of shape (rows, in). A batch runs in blocks of rows:
// each block of x is copied transposed, so that for a stored entry (o, c, v)
// the update y[block, o] += v * x[block, c] reads one contiguous row of the
// copy and runs as SIMD operations over the rows of the block. The sums of
// output o stay in registers while the entries of W's row o stream past. One
// or two rows alone would waste most of a block's lanes, so they go through
// one sparse dot product per output instead.

// The arrays of one call, as the kernels read them.
template <class T>
struct CsrProduct {
    const T* values;
    const std::int64_t* columns;
    const std::int64_t* offsets;
    const T* bias;  ///< nullptr for no bias
    std::size_t in;
    std::size_t out;
};

// 256-bit vectors, the width g++ 12 itself prefers with -march=native on
// AVX-512 CPUs. Blocks of 512-bit native_simd vectors were slower at
// sparsities 0.8 to 0.95 on the Xeon of docs/benchmarks.md.
template <class T>
using Vector = stdx::fixed_size_simd<T, 32 / sizeof(T)>;

// Four vectors of sums per block (32 float32 or 16 float64 rows), so that
// four independent chains of fused multiply-adds hide each one's latency.
constexpr std::size_t kWideVectors = 4;
// Fewer rows than this go through multiply_rows().
constexpr std::size_t kMinBlockRows = 3;

template <class T>
constexpr std::size_t kWideRows = Vector<T>::size() * kWideVectors;

// One sparse dot product per output and row of x. Four partial sums let the
// loads of consecutive entries proceed independently instead of waiting
// behind one chain of additions.
template <class T>
void multiply_rows(const CsrProduct<T>& w, const T* x, std::size_t rows, T* y) {
    const T* values = w.values;
    const std::int64_t* columns = w.columns;
    for (std::size_t r = 0; r < rows; ++r) {
        const T* x_row = x + r * w.in;
        for (std::size_t o = 0; o < w.out; ++o) {
            auto k = static_cast<std::size_t>(w.offsets[o]);
            const auto end = static_cast<std::size_t>(w.offsets[o + 1]);
            T sum0 = 0;
            T sum1 = 0;
            T sum2 = 0;
            T sum3 = 0;
            for (; k + 4 <= end; k += 4) {
                sum0 += values[k] * x_row[columns[k]];
                sum1 += values[k + 1] * x_row[columns[k + 1]];
                sum2 += values[k + 2] * x_row[columns[k + 2]];
                sum3 += values[k + 3] * x_row[columns[k + 3]];
            }
            for (; k < end; ++k) {
                sum0 += values[k] * x_row[columns[k]];
            }
            const T start = w.bias != nullptr ? w.bias[o] : T(0);
            y[r * w.out + o] = start + ((sum0 + sum1) + (sum2 + sum3));
        }
    }
}

// Copies rows [0, count) of x (count, in) into x_t (in, Width) transposed,
// and zeros the padding columns [count, Width), so that padding lanes compute
// on zeros rather than on stale values that might be subnormal or NaN.
//
// Each row of x is read one vector at a time and its lanes are stored to
// consecutive rows of x_t. A plain scalar copy loop ran at full or half speed
// depending on its code alignment on the Xeon of docs/benchmarks.md, and
// assembling it with -Wa,-mbranches-within-32B-boundaries removed the
// difference. A copy of this loop in a test program ran at one speed in all
// eight code alignments tried.
template <class T, std::size_t Width>
void transpose_block(const T* x, std::size_t in, std::size_t count, T* x_t) {
    constexpr std::size_t kLanes = Vector<T>::size();
    std::size_t begin = 0;
    for (; begin + kLanes <= in; begin += kLanes) {
        T* target = x_t + begin * Width;
        for (std::size_t j = 0; j < count; ++j) {
            const Vector<T> chunk(x + j * in + begin, stdx::element_aligned);
#pragma GCC unroll 8
            for (std::size_t lane = 0; lane < kLanes; ++lane) {
                target[lane * Width + j] = chunk[lane];
            }
        }
    }
    for (std::size_t i = begin; i < in; ++i) {
        for (std::size_t j = 0; j < count; ++j) {
            x_t[i * Width + j] = x[j * in + i];
        }
    }
    for (std::size_t i = 0; i < in; ++i) {
        for (std::size_t j = count; j < Width; ++j) {
            x_t[i * Width + j] = T(0);
        }
    }
}

// y[j, o] for the `count` rows j of one block, from x_t (in, Width) as
// transpose_block() leaves it. The GCC unroll pragmas keep the sums in
// registers: without them g++ 12 at -O2 keeps the array in memory and the
// kernel runs at half speed.
template <class T, std::size_t Vectors>
void multiply_block(const CsrProduct<T>& w, const T* x_t, std::size_t count, T* y) {
    constexpr std::size_t kLanes = Vector<T>::size();
    constexpr std::size_t kWidth = Vectors * kLanes;
    for (std::size_t o = 0; o < w.out; ++o) {
        Vector<T> sums[Vectors];
        const T start = w.bias != nullptr ? w.bias[o] : T(0);
#pragma GCC unroll 8
        for (std::size_t v = 0; v < Vectors; ++v) {
            sums[v] = start;
        }
        const auto end = static_cast<std::size_t>(w.offsets[o + 1]);
        for (auto k = static_cast<std::size_t>(w.offsets[o]); k < end; ++k) {
            const Vector<T> value = w.values[k];
            const T* source = x_t + static_cast<std::size_t>(w.columns[k]) * kWidth;
#pragma GCC unroll 8
            for (std::size_t v = 0; v < Vectors; ++v) {
                sums[v] += value * Vector<T>(source + v * kLanes, stdx::element_aligned);
            }
        }
        T lanes[kWidth];
#pragma GCC unroll 8
        for (std::size_t v = 0; v < Vectors; ++v) {
            sums[v].copy_to(lanes + v * kLanes, stdx::element_aligned);
        }
        for (std::size_t j = 0; j < count; ++j) {
            y[j * w.out + o] = lanes[j];
        }
    }
}

// Rows [0, rows) of x in blocks of Vectors vectors' width, the last one
// padded.
template <class T, std::size_t Vectors>
void multiply_blocks(const CsrProduct<T>& w, const T* x, std::size_t rows, T* y, T* x_t) {
    constexpr std::size_t kWidth = Vectors * Vector<T>::size();
    for (std::size_t r = 0; r < rows; r += kWidth) {
        const std::size_t count = std::min(kWidth, rows - r);
        transpose_block<T, kWidth>(x + r * w.in, w.in, count, x_t);
        multiply_block<T, Vectors>(w, x_t, count, y + r * w.out);
    }
}

// Scratch space for one transposed block, kept per thread so that repeated
// calls, and so a replayed graph, allocate only when a call needs more room
// than any earlier call on the same thread.
// NOTE: each thread keeps its largest block (in_features * 32 float32 or
// in_features * 16 float64 elements, 100 KB for 784 inputs) until it exits.
template <class T>
T* block_workspace(std::size_t size) {
    thread_local std::vector<T> workspace;
    if (workspace.size() < size) {
        workspace.resize(size);
    }
    return workspace.data();
}

// Wide blocks first. What remains goes into one more wide block when it
// fills at least half of one, into narrow one-vector blocks otherwise, and
// through multiply_rows() below kMinBlockRows. The cut-offs come from timing
// the three paths against each other for 784 -> 256 at 0.9 sparsity.
template <class T>
void multiply(const CsrProduct<T>& w, const T* x, std::size_t rows, T* y) {
    if (rows < kMinBlockRows) {
        multiply_rows(w, x, rows, y);
        return;
    }
    T* x_t = block_workspace<T>(w.in * kWideRows<T>);
    const std::size_t rest = rows % kWideRows<T>;
    const std::size_t wide = rest >= kWideRows<T> / 2 ? rows : rows - rest;
    multiply_blocks<T, kWideVectors>(w, x, wide, y, x_t);
    if (wide == rows) {
        return;
    }
    const T* x_rest = x + wide * w.in;
    T* y_rest = y + wide * w.out;
    if (rest < kMinBlockRows) {
        multiply_rows(w, x_rest, rest, y_rest);
    } else {
        multiply_blocks<T, 1>(w, x_rest, rest, y_rest, x_t);
    }
}

std::size_t leading_rows(const Shape& x) {
    std::size_t rows = 1;
    for (std::size_t d = 0; d + 1 < x.size(); ++d) {
        rows *= x[d];
    }
    return rows;
}

// --- the op -------------------------------------------------------------------

struct SparseLinear {
    static constexpr OpInfo kInfo{
        .name = "sparse_linear", .arity = kVariadic, .differentiable = false};

    static OutputSpec infer(const OpArgs& args) {
        if (args.size() < 4 || args.size() > 5) {
            throw value_error(
                "sparse_linear: expected x, values, column_indices, row_offsets and an optional "
                "bias, got " +
                std::to_string(args.size()) + " tensors");
        }
        const auto& ints = args.attrs().ints;
        if (ints.size() != 1 || ints[0] < 0) {
            throw value_error(
                "sparse_linear: attrs.ints must be {in_features} with in_features >= 0, "
                "got " +
                (ints.size() == 1 ? std::to_string(ints[0])
                                  : std::to_string(ints.size()) + " values"));
        }
        const auto in_features = static_cast<std::size_t>(args.attrs().ints[0]);
        check_dtypes(args);

        check_vector(args, kValues, "values");
        check_vector(args, kColumns, "column_indices");
        check_vector(args, kOffsets, "row_offsets");
        const std::size_t nnz = args.shape(kValues)[0];
        if (args.shape(kColumns)[0] != nnz) {
            throw shape_error("sparse_linear: values has shape " +
                              shape_string(args.shape(kValues)) + " but column_indices has shape " +
                              shape_string(args.shape(kColumns)) +
                              "; both need one entry per stored element");
        }
        if (args.shape(kOffsets)[0] == 0) {
            throw shape_error(
                "sparse_linear: row_offsets has shape (0); it needs out_features + 1 "
                "entries, starting with 0");
        }
        const std::size_t out_features = args.shape(kOffsets)[0] - 1;

        const Shape& x = args.shape(kX);
        if (x.empty() || x.back() != in_features) {
            throw shape_error("sparse_linear: x has shape " + shape_string(x) +
                              " but the weight has shape " +
                              weight_shape_string(out_features, in_features) +
                              "; the last dimension of x must be " + std::to_string(in_features));
        }
        if (args.size() > kBias && args.shape(kBias) != Shape{out_features}) {
            throw shape_error("sparse_linear: bias has shape " + shape_string(args.shape(kBias)) +
                              " but the weight has shape " +
                              weight_shape_string(out_features, in_features) +
                              "; expected bias of shape (" + std::to_string(out_features) + ")");
        }

        check_offsets(args.values<std::int64_t>(kOffsets), nnz);
        check_columns(args.values<std::int64_t>(kColumns), in_features);
        Shape out = x;
        out.back() = out_features;
        return {out, args.dtype(kX)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const CsrProduct<T> weight{
            .values = args.values<T>(kValues).data(),
            .columns = args.values<std::int64_t>(kColumns).data(),
            .offsets = args.values<std::int64_t>(kOffsets).data(),
            .bias = args.size() > kBias ? args.values<T>(kBias).data() : nullptr,
            .in = static_cast<std::size_t>(args.attrs().ints[0]),
            .out = args.shape(kOffsets)[0] - 1,
        };
        const auto& x = args.values<T>(kX);
        multiply(weight, x.data(), leading_rows(x.shape()), y.data());
    }

    static std::string describe(const OpAttrs& attrs) {
        return "in_features=" + std::to_string(attrs.ints.empty() ? 0 : attrs.ints[0]);
    }
};

const OpDef& kSparseLinear = define_op<SparseLinear>();

// --- conversion ---------------------------------------------------------------

template <class T>
CsrMatrix to_csr_typed(const xt::xarray<T>& matrix) {
    const std::size_t rows = matrix.shape()[0];
    const std::size_t columns = matrix.shape()[1];
    const T* data = matrix.data();
    const auto nnz = static_cast<std::size_t>(
        std::count_if(data, data + matrix.size(), [](T v) { return v != T(0); }));

    auto values = xt::xarray<T>::from_shape({nnz});
    auto column_indices = xt::xarray<std::int64_t>::from_shape({nnz});
    auto row_offsets = xt::xarray<std::int64_t>::from_shape({rows + 1});
    std::size_t k = 0;
    row_offsets(0) = 0;
    for (std::size_t i = 0; i < rows; ++i) {
        for (std::size_t j = 0; j < columns; ++j) {
            const T v = data[i * columns + j];
            if (v != T(0)) {
                values(k) = v;
                column_indices(k) = static_cast<std::int64_t>(j);
                ++k;
            }
        }
        row_offsets(i + 1) = static_cast<std::int64_t>(k);
    }
    return {Tensor(std::move(values)), Tensor(std::move(column_indices)),
            Tensor(std::move(row_offsets)), columns};
}

}  // namespace

CsrMatrix to_csr(const Tensor& matrix) {
    if (matrix.dim() != 2) {
        throw shape_error("to_csr: expected a two-dimensional matrix, got shape " +
                          shape_string(matrix.shape()));
    }
    return detail::visit_floating(matrix.dtype(), "to_csr", [&](auto zero) {
        using T = decltype(zero);
        return to_csr_typed(matrix.values<T>());
    });
}

double sparsity(const Tensor& x) {
    return detail::visit_floating(x.dtype(), "sparsity", [&](auto zero) {
        using T = decltype(zero);
        const auto& values = x.values<T>();
        if (values.size() == 0) {
            return 0.0;
        }
        const auto zeros = std::count(values.begin(), values.end(), T(0));
        return static_cast<double>(zeros) / static_cast<double>(values.size());
    });
}

Tensor sparse_linear(const Tensor& x, const CsrMatrix& weight, const Tensor& bias) {
    OpAttrs attrs;
    attrs.ints.push_back(static_cast<std::int64_t>(weight.columns));
    if (bias.defined()) {
        const Tensor* inputs[] = {&x, &weight.values, &weight.column_indices, &weight.row_offsets,
                                  &bias};
        return apply(kSparseLinear, std::span<const Tensor* const>(inputs), attrs);
    }
    const Tensor* inputs[] = {&x, &weight.values, &weight.column_indices, &weight.row_offsets};
    return apply(kSparseLinear, std::span<const Tensor* const>(inputs), attrs);
}

}  // namespace xgrad

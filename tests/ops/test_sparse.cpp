#include <cmath>
#include <limits>

#include "testing.hpp"
#include "xgrad/ops/sparse.hpp"

using namespace xgrad;

namespace {

// A uniform random (out, in) weight with round(fraction * size) entries, at
// random positions, set to exactly zero.
Tensor pruned_weight(std::size_t out, std::size_t in, double fraction, Dtype dtype,
                     std::uint64_t seed) {
    Generator generator(seed);
    Tensor weight = uniform({out, in}, 0.1, 1.0, generator, Dtype::float64);
    auto& values = weight.mutable_values<double>();
    std::vector<std::size_t> positions(values.size());
    for (std::size_t i = 0; i < positions.size(); ++i) {
        positions[i] = i;
    }
    const auto zeros =
        static_cast<std::size_t>(fraction * static_cast<double>(values.size()) + 0.5);
    for (std::size_t i = 0; i < zeros; ++i) {
        std::swap(positions[i], positions[i + generator.below(positions.size() - i)]);
        values.flat(positions[i]) = 0.0;
    }
    for (std::size_t i = zeros; i < positions.size(); ++i) {
        if (generator.uniform() < 0.5) {
            values.flat(positions[i]) = -values.flat(positions[i]);
        }
    }
    return to_dtype(weight, dtype);
}

// A CSR matrix from hand-written tensors, for the error tests.
CsrMatrix csr(xt::xarray<double> values, xt::xarray<std::int64_t> column_indices,
              xt::xarray<std::int64_t> row_offsets, std::size_t columns) {
    return {Tensor(std::move(values)), Tensor(std::move(column_indices)),
            Tensor(std::move(row_offsets)), columns};
}

// sparse_linear(x, to_csr(weight), bias) against the dense linear(x, weight, bias).
void check_matches_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    const Tensor sparse = sparse_linear(x, to_csr(weight), bias);
    const Tensor dense = linear(x, weight, bias);
    REQUIRE(sparse.shape() == dense.shape());
    REQUIRE(sparse.dtype() == dense.dtype());
    if (x.dtype() == Dtype::float64) {
        CHECK(testing::all_close(sparse.values<double>(), dense.values<double>(), 1e-12));
    } else {
        CHECK(xt::allclose(sparse.values<float>(), dense.values<float>(), 1e-5, 1e-5));
    }
}

}  // namespace

TEST_SUITE("sparse") {
    TEST_CASE("to_csr stores the nonzeros row by row") {
        const Tensor matrix(xt::xarray<double>{{0.0, 1.5, 0.0}, {0.0, 0.0, 0.0}, {-2.0, 0.0, 3.0}});
        const CsrMatrix result = to_csr(matrix);
        CHECK(result.values.values<double>() == xt::xarray<double>{1.5, -2.0, 3.0});
        CHECK(result.column_indices.values<std::int64_t>() == xt::xarray<std::int64_t>{1, 0, 2});
        CHECK(result.row_offsets.values<std::int64_t>() == xt::xarray<std::int64_t>{0, 1, 1, 3});
        CHECK(result.columns == 3);
        CHECK(result.rows() == 3);
        CHECK(result.nnz() == 3);
    }

    TEST_CASE("to_csr keeps the dtype, drops -0.0 and keeps NaN") {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        const CsrMatrix result = to_csr(Tensor(xt::xarray<float>{{-0.0f, nan}, {2.0f, 0.0f}}));
        CHECK(result.values.dtype() == Dtype::float32);
        REQUIRE(result.nnz() == 2);
        CHECK(std::isnan(result.values.values<float>()(0)));
        CHECK(result.values.values<float>()(1) == 2.0f);
        CHECK(result.column_indices.values<std::int64_t>() == xt::xarray<std::int64_t>{1, 0});
        CHECK(result.row_offsets.values<std::int64_t>() == xt::xarray<std::int64_t>{0, 1, 2});
    }

    TEST_CASE("to_csr of an empty matrix") {
        const CsrMatrix no_columns = to_csr(zeros({4, 0}));
        CHECK(no_columns.nnz() == 0);
        CHECK(no_columns.rows() == 4);
        CHECK(no_columns.row_offsets.values<std::int64_t>() == xt::zeros<std::int64_t>({5}));
        const CsrMatrix no_rows = to_csr(zeros({0, 3}));
        CHECK(no_rows.rows() == 0);
        CHECK(no_rows.columns == 3);
        const CsrMatrix undefined;
        CHECK(undefined.rows() == 0);
        CHECK(undefined.nnz() == 0);
        CHECK_THROWS_WITH_AS(sparse_linear(zeros({2, 3}), undefined),
                             doctest::Contains("sparse_linear: input 1 is an undefined tensor"),
                             value_error);
    }

    TEST_CASE("to_csr errors") {
        CHECK_THROWS_WITH_AS(to_csr(zeros({2, 3, 4})),
                             doctest::Contains("to_csr: expected a two-dimensional matrix, got "
                                               "shape (2, 3, 4)"),
                             shape_error);
        CHECK_THROWS_WITH_AS(to_csr(Tensor(xt::xarray<std::int64_t>{{1, 0}})),
                             doctest::Contains("to_csr"), value_error);
    }

    TEST_CASE("sparsity counts exact zeros") {
        CHECK(sparsity(Tensor(xt::xarray<double>{{0.0, 1e-300}, {-0.0, 2.0}})) == 0.5);
        CHECK(sparsity(zeros({3, 2})) == 1.0);
        CHECK(sparsity(ones({3})) == 0.0);
        CHECK(sparsity(zeros({0, 5})) == 0.0);
        CHECK(sparsity(pruned_weight(10, 20, 0.9, Dtype::float32, 1)) == doctest::Approx(0.9));
        CHECK_THROWS_WITH_AS(sparsity(Tensor(xt::xarray<std::int64_t>{0, 1})),
                             doctest::Contains("sparsity"), value_error);
    }

    TEST_CASE("sparse_linear matches linear") {
        // Batch sizes reach every kernel path: one sparse dot product per row
        // (1, 2 rows), narrow blocks, wide blocks, and wide blocks followed by
        // rows, narrow blocks or a padded wide block, for both dtypes' widths.
        const std::vector<Shape> batches = {{},   {1},  {2},    {3},     {5},       {9},
                                            {16}, {17}, {19},   {25},    {32},      {33},
                                            {35}, {50}, {2, 3}, {4, 32}, {3, 1, 43}};
        std::uint64_t seed = 10;
        for (Dtype dtype : {Dtype::float32, Dtype::float64}) {
            for (double fraction : {0.0, 0.5, 0.9, 1.0}) {
                const Tensor weight = pruned_weight(23, 40, fraction, dtype, seed++);
                Generator generator(seed++);
                const Tensor bias = uniform({23}, -1, 1, generator, dtype);
                for (const Shape& batch : batches) {
                    Shape shape = batch;
                    shape.push_back(40);
                    const Tensor x = uniform(shape, -1, 1, generator, dtype);
                    CAPTURE(dtype_name(dtype));
                    CAPTURE(fraction);
                    CAPTURE(shape_string(shape));
                    check_matches_linear(x, weight, bias);
                    check_matches_linear(x, weight, Tensor());
                }
            }
        }
    }

    TEST_CASE("sparse_linear with no inputs or no outputs") {
        Generator generator(3);
        const Tensor bias = uniform({4}, -1, 1, generator, Dtype::float64);
        const Tensor no_inputs = sparse_linear(zeros({3, 0}, Dtype::float64),
                                               to_csr(zeros({4, 0}, Dtype::float64)), bias);
        CHECK(no_inputs.shape() == Shape{3, 4});
        for (std::size_t r = 0; r < 3; ++r) {
            for (std::size_t o = 0; o < 4; ++o) {
                CHECK(no_inputs.values<double>()(r, o) == bias.values<double>()(o));
            }
        }
        const Tensor no_outputs = sparse_linear(zeros({5, 3}), to_csr(zeros({0, 3})), Tensor());
        CHECK(no_outputs.shape() == Shape{5, 0});
        const Tensor no_rows = sparse_linear(zeros({0, 3}), to_csr(ones({2, 3})), Tensor());
        CHECK(no_rows.shape() == Shape{0, 2});
    }

    TEST_CASE("sparse_linear adds repeated entries in any order") {
        // Row 0 stores column 1 twice and lists column 0 after it.
        const CsrMatrix weight = csr({2.0, 3.0, 5.0, 7.0}, {1, 1, 0, 2}, {0, 3, 4}, 3);
        const Tensor x(xt::xarray<double>{{1.0, 10.0, 100.0}});
        CHECK(sparse_linear(x, weight).values<double>() == xt::xarray<double>{{55.0, 700.0}});
    }

    TEST_CASE("sparse_linear records no gradient") {
        Tensor x = testing::random_input({2, 3}, 4);
        const Tensor weight = testing::random_input({4, 3}, 5);
        const Tensor y = sparse_linear(x, to_csr(weight));
        CHECK_FALSE(y.requires_grad());
        CHECK(y.is_leaf());
    }

    TEST_CASE("sparse_linear errors") {
        const Tensor x = zeros({2, 3}, Dtype::float64);
        const CsrMatrix good = csr({1.0, 2.0}, {0, 2}, {0, 1, 2}, 3);
        const OpDef& op = find_op("sparse_linear");

        SUBCASE("number of tensors and attributes") {
            OpAttrs attrs;
            attrs.ints = {3};
            CHECK_THROWS_WITH_AS(apply(op, {x, good.values, good.column_indices}, attrs),
                                 doctest::Contains("sparse_linear: expected x, values, "
                                                   "column_indices, row_offsets and an optional "
                                                   "bias, got 3 tensors"),
                                 value_error);
            CHECK_THROWS_WITH_AS(
                apply(op, {x, good.values, good.column_indices, good.row_offsets}),
                doctest::Contains("sparse_linear: attrs.ints must be {in_features} with "
                                  "in_features >= 0, got 0 values"),
                value_error);
            attrs.ints = {-3};
            CHECK_THROWS_WITH_AS(
                apply(op, {x, good.values, good.column_indices, good.row_offsets}, attrs),
                doctest::Contains("sparse_linear: attrs.ints must be {in_features} with "
                                  "in_features >= 0, got -3"),
                value_error);
        }

        SUBCASE("dtypes") {
            CsrMatrix int_values = good;
            int_values.values = Tensor(xt::xarray<std::int64_t>{1, 2});
            CHECK_THROWS_WITH_AS(sparse_linear(x, int_values),
                                 doctest::Contains("sparse_linear: values must be float32 or "
                                                   "float64, got int64"),
                                 value_error);
            CHECK_THROWS_WITH_AS(sparse_linear(zeros({2, 3}), good),
                                 doctest::Contains("sparse_linear: x is float32 but the weight's "
                                                   "values are float64"),
                                 value_error);
            CHECK_THROWS_WITH_AS(sparse_linear(x, good, zeros({2})),
                                 doctest::Contains("sparse_linear: bias is float32 but the "
                                                   "weight's values are float64"),
                                 value_error);
            CsrMatrix float_columns = good;
            float_columns.column_indices = Tensor(xt::xarray<double>{0.0, 2.0});
            CHECK_THROWS_WITH_AS(sparse_linear(x, float_columns),
                                 doctest::Contains("sparse_linear: column_indices must be int64, "
                                                   "got float64"),
                                 value_error);
            CsrMatrix float_offsets = good;
            float_offsets.row_offsets = Tensor(xt::xarray<double>{0.0, 1.0, 2.0});
            CHECK_THROWS_WITH_AS(sparse_linear(x, float_offsets),
                                 doctest::Contains("sparse_linear: row_offsets must be int64, "
                                                   "got float64"),
                                 value_error);
        }

        SUBCASE("shapes") {
            CsrMatrix matrix_values = good;
            matrix_values.values = Tensor(xt::xarray<double>{{1.0, 2.0}});
            CHECK_THROWS_WITH_AS(sparse_linear(x, matrix_values),
                                 doctest::Contains("sparse_linear: values must be one-dimensional, "
                                                   "got shape (1, 2)"),
                                 shape_error);
            CsrMatrix matrix_columns = good;
            matrix_columns.column_indices = Tensor(xt::xarray<std::int64_t>{{0, 2}});
            CHECK_THROWS_WITH_AS(sparse_linear(x, matrix_columns),
                                 doctest::Contains("sparse_linear: column_indices must be "
                                                   "one-dimensional, got shape (1, 2)"),
                                 shape_error);
            CsrMatrix scalar_offsets = good;
            scalar_offsets.row_offsets = Tensor(xt::xarray<std::int64_t>(0));
            CHECK_THROWS_WITH_AS(sparse_linear(x, scalar_offsets),
                                 doctest::Contains("sparse_linear: row_offsets must be "
                                                   "one-dimensional, got shape ()"),
                                 shape_error);
            CHECK_THROWS_WITH_AS(sparse_linear(x, csr({1.0, 2.0}, {0}, {0, 2}, 3)),
                                 doctest::Contains("sparse_linear: values has shape (2) but "
                                                   "column_indices has shape (1)"),
                                 shape_error);
            CHECK_THROWS_WITH_AS(
                sparse_linear(x, csr(xt::xarray<double>::from_shape({0}),
                                     xt::xarray<std::int64_t>::from_shape({0}),
                                     xt::xarray<std::int64_t>::from_shape({0}), 3)),
                doctest::Contains("sparse_linear: row_offsets has shape (0); it needs "
                                  "out_features + 1 entries"),
                shape_error);
            CHECK_THROWS_WITH_AS(sparse_linear(zeros({2, 4}, Dtype::float64), good),
                                 doctest::Contains("sparse_linear: x has shape (2, 4) but the "
                                                   "weight has shape (2, 3); the last dimension "
                                                   "of x must be 3"),
                                 shape_error);
            CHECK_THROWS_WITH_AS(sparse_linear(scalar(1.0, Dtype::float64), good),
                                 doctest::Contains("sparse_linear: x has shape ()"), shape_error);
            CHECK_THROWS_WITH_AS(sparse_linear(x, good, zeros({3}, Dtype::float64)),
                                 doctest::Contains("sparse_linear: bias has shape (3) but the "
                                                   "weight has shape (2, 3); expected bias of "
                                                   "shape (2)"),
                                 shape_error);
        }

        SUBCASE("row offsets") {
            CHECK_THROWS_WITH_AS(sparse_linear(x, csr({1.0, 2.0}, {0, 2}, {1, 1, 2}, 3)),
                                 doctest::Contains("sparse_linear: row_offsets[0] is 1; CSR row "
                                                   "offsets start at 0"),
                                 value_error);
            CHECK_THROWS_WITH_AS(sparse_linear(x, csr({1.0, 2.0}, {0, 2}, {0, 2, 1, 2}, 3)),
                                 doctest::Contains("sparse_linear: row_offsets decreases from 2 "
                                                   "at position 1 to 1 at position 2"),
                                 value_error);
            CHECK_THROWS_WITH_AS(sparse_linear(x, csr({1.0, 2.0}, {0, 2}, {0, 1, 1}, 3)),
                                 doctest::Contains("sparse_linear: row_offsets ends at 1 but "
                                                   "values holds 2 entries"),
                                 value_error);
        }

        SUBCASE("column indices") {
            CHECK_THROWS_WITH_AS(sparse_linear(x, csr({1.0, 2.0}, {-1, 2}, {0, 1, 2}, 3)),
                                 doctest::Contains("sparse_linear: column index -1 at position 0 "
                                                   "is out of range for in_features 3"),
                                 value_error);
            // Past the eight-index blocks of the scan, in its scalar tail.
            xt::xarray<std::int64_t> columns = xt::zeros<std::int64_t>({10});
            columns(9) = 3;
            CHECK_THROWS_WITH_AS(
                sparse_linear(x, csr(xt::ones<double>({10}), columns, {0, 5, 10}, 3)),
                doctest::Contains("sparse_linear: column index 3 at position 9 "
                                  "is out of range for in_features 3"),
                value_error);
        }
    }
}

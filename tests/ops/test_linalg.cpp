#include <xtensor-blas/xlinalg.hpp>

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_input;
using xgrad::testing::values;

TEST_SUITE("linalg") {
    TEST_CASE("matmul gradient") {
        const std::vector<std::pair<Shape, Shape>> cases = {
            {{3, 4}, {4, 2}},        // matrix @ matrix
            {{3, 4}, {4}},           // matrix @ vector
            {{4}, {4, 5}},           // vector @ matrix
            {{4}, {4}},              // dot product
            {{2, 3, 4}, {2, 4, 5}},  // batched
            {{2, 3, 4}, {4, 5}},     // batch broadcast on b
            {{3, 4}, {2, 1, 4, 2}},  // batch broadcast on a
            {{2, 1, 3, 4}, {1, 3, 4, 2}},
            {{1, 4}, {4, 1}},
        };
        std::uint64_t seed = 1;
        for (const auto& entry : cases) {
            // Named copies, not structured bindings: clang 14 cannot capture
            // those in the lambdas of CAPTURE and the checks below.
            const auto& a = std::get<0>(entry);
            const auto& b = std::get<1>(entry);
            CAPTURE(shape_string(a));
            CAPTURE(shape_string(b));
            CHECK_GRADCHECK([](const auto& in) { return matmul(in[0], in[1]); },
                            {random_input(a, seed), random_input(b, seed + 1)});
            seed += 2;
        }
    }

    TEST_CASE("matmul matches xtensor-blas") {
        Generator generator(5);
        const Tensor a = uniform({7, 5}, -1, 1, generator, Dtype::float64);
        const Tensor b = uniform({5, 3}, -1, 1, generator, Dtype::float64);
        const xt::xarray<double> expected = xt::linalg::dot(values(a), values(b));
        CHECK(testing::all_close(values(matmul(a, b)), expected, 1e-12));

        const Tensor a32 = to_dtype(a, Dtype::float32);
        const Tensor b32 = to_dtype(b, Dtype::float32);
        const xt::xarray<float> expected32 = xt::linalg::dot(a32.values<float>(), b32.values<float>());
        CHECK(xt::allclose(matmul(a32, b32).values<float>(), expected32, 1e-5, 1e-6));
    }

    TEST_CASE("matmul output shapes") {
        CHECK(matmul(zeros({3, 4}), zeros({4})).shape() == Shape{3});
        CHECK(matmul(zeros({4}), zeros({4, 5})).shape() == Shape{5});
        CHECK(matmul(zeros({4}), zeros({4})).shape() == Shape{});
        CHECK(matmul(zeros({2, 1, 3, 4}), zeros({5, 4, 6})).shape() == Shape{2, 5, 3, 6});
        CHECK(matmul(zeros({3, 0}), zeros({0, 2})).shape() == Shape{3, 2});
        CHECK(values(matmul(zeros({3, 0}, Dtype::float64), zeros({0, 2}, Dtype::float64))) ==
              xt::zeros<double>({3, 2}));
    }

    TEST_CASE("hand-computed product") {
        const Tensor a(xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}});
        const Tensor b(xt::xarray<double>{{5.0, 6.0}, {7.0, 8.0}});
        CHECK(values(matmul(a, b)) == xt::xarray<double>{{19.0, 22.0}, {43.0, 50.0}});
    }

    TEST_CASE("linear gradient") {
        CHECK_GRADCHECK([](const auto& in) { return linear(in[0], in[1], in[2]); },
                        {random_input({4, 3}, 20), random_input({5, 3}, 21), random_input({5}, 22)});
        CHECK_GRADCHECK([](const auto& in) { return linear(in[0], in[1]); },
                        {random_input({2, 3, 4}, 23), random_input({2, 4}, 24)});
        CHECK_GRADCHECK([](const auto& in) { return linear(in[0], in[1], in[2]); },
                        {random_input({3}, 25), random_input({1, 3}, 26), random_input({1}, 27)});
    }

    TEST_CASE("linear matches matmul plus bias") {
        Generator generator(8);
        const Tensor x = uniform({6, 4}, -1, 1, generator, Dtype::float64);
        const Tensor w = uniform({3, 4}, -1, 1, generator, Dtype::float64);
        const Tensor b = uniform({3}, -1, 1, generator, Dtype::float64);
        CHECK(testing::all_close(values(linear(x, w, b)), values(matmul(x, transpose(w)) + b), 1e-12));
        CHECK(linear(zeros({2, 5, 4}), zeros({3, 4})).shape() == Shape{2, 5, 3});
    }

    TEST_CASE("linear errors") {
        CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 5})),
                             doctest::Contains("linear: x has shape (2, 3) but weight has shape (4, 5)"),
                             shape_error);
        CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})),
                             doctest::Contains("linear: bias has shape (3)"), shape_error);
        CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({3})),
                             doctest::Contains("linear: weight must have shape (out_features, in_features)"),
                             shape_error);
    }

    TEST_CASE("matmul errors name both shapes") {
        CHECK_THROWS_WITH_AS(
            matmul(zeros({2, 3}), zeros({4, 5})),
            doctest::Contains("matmul: inner dimensions differ: a has shape (2, 3), b has shape (4, 5)"),
            shape_error);
        CHECK_THROWS_WITH_AS(matmul(zeros({2, 2, 3}), zeros({3, 3, 4})),
                             doctest::Contains("matmul: batch dimensions cannot be broadcast"),
                             shape_error);
        CHECK_THROWS_WITH_AS(matmul(scalar(1.0), zeros({2})), doctest::Contains("matmul:"),
                             value_error);
    }
}

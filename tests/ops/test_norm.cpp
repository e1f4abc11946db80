#include <cmath>

#include <xtensor/xmath.hpp>
#include <xtensor/xreducer.hpp>
#include <xtensor/xview.hpp>

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::all_close;
using xgrad::testing::random_input;
using xgrad::testing::values;

namespace {

// Fixed random weights for the outputs. The gradient of a plain sum of batch
// norm outputs with respect to x is zero (each channel's outputs sum to M
// beta whatever x is), so a plain sum would hide errors in the x-gradient.
Tensor output_weights(const Shape& shape, std::uint64_t seed) {
    Generator generator(seed);
    return uniform(shape, -1.0, 1.0, generator, Dtype::float64);
}

// A float64 tensor in [low, high) that requires grad, for weights kept away
// from zero and for positive variances.
Tensor positive_input(const Shape& shape, std::uint64_t seed, double low = 0.5, double high = 1.5) {
    return random_input(shape, seed, low, high);
}

// Batch normalization written with primitive ops, as an independent
// reference for values and gradients. Channels are on axis 1.
Tensor reference_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
    Axes reduced{0};
    Axes channel_shape{1, static_cast<std::int64_t>(x.shape()[1])};
    for (std::size_t d = 2; d < x.dim(); ++d) {
        reduced.push_back(static_cast<std::int64_t>(d));
        channel_shape.push_back(1);
    }
    const Tensor centered = x - xgrad::mean(x, reduced, true);
    const Tensor var = xgrad::mean(centered * centered, reduced, true);
    const Tensor x_hat = centered / sqrt(var + eps);
    return x_hat * reshape(weight, channel_shape) + reshape(bias, channel_shape);
}

std::vector<xt::xarray<double>> gradients_of(const Tensor& output, const Tensor& weights,
                                             const std::vector<Tensor>& inputs) {
    sum(output * weights).backward();
    std::vector<xt::xarray<double>> grads;
    for (const Tensor& input : inputs) {
        grads.push_back(input.grad().to_xarray<double>());
    }
    return grads;
}

}  // namespace

TEST_SUITE("norm") {
    TEST_CASE("batch_norm gradient") {
        const Shape shapes[] = {{5, 3}, {4, 2, 3}, {3, 2, 4, 5}, {2, 3, 1, 4}};
        std::uint64_t seed = 1;
        for (const Shape& shape : shapes) {
            CAPTURE(shape_string(shape));
            const Tensor weights = output_weights(shape, seed + 100);
            CHECK_GRADCHECK(
                [&](const auto& in) { return sum(batch_norm(in[0], in[1], in[2]) * weights); },
                {random_input(shape, seed), positive_input({shape[1]}, seed + 1),
                 random_input({shape[1]}, seed + 2)});
            seed += 3;
        }
    }

    TEST_CASE("batch_norm gradient without affine parameters") {
        const Shape shape{4, 3, 2, 2};
        const Tensor weights = output_weights(shape, 11);
        SUBCASE("neither") {
            CHECK_GRADCHECK([&](const auto& in) { return sum(batch_norm(in[0]) * weights); },
                            {random_input(shape, 12)});
        }
        SUBCASE("weight only") {
            CHECK_GRADCHECK([&](const auto& in) { return sum(batch_norm(in[0], in[1]) * weights); },
                            {random_input(shape, 13), positive_input({3}, 14)});
        }
        SUBCASE("bias only") {
            CHECK_GRADCHECK(
                [&](const auto& in) { return sum(batch_norm(in[0], Tensor(), in[1]) * weights); },
                {random_input(shape, 15), random_input({3}, 16)});
        }
    }

    TEST_CASE("batch_norm gradient with a large eps") {
        // eps comparable to the variance, so a VJP that drops eps would fail.
        const Shape shape{6, 2};
        const Tensor weights = output_weights(shape, 17);
        CHECK_GRADCHECK(
            [&](const auto& in) { return sum(batch_norm(in[0], in[1], in[2], 0.5) * weights); },
            {random_input(shape, 18), positive_input({2}, 19), random_input({2}, 20)});
    }

    TEST_CASE("batch_norm plain sum has zero x gradient") {
        const Tensor x = random_input({4, 3, 2, 2}, 21);
        const Tensor weight = positive_input({3}, 22);
        const Tensor bias = random_input({3}, 23);
        sum(batch_norm(x, weight, bias)).backward();
        CHECK(xt::amax(xt::abs(values(x.grad())))() < 1e-12);
        // Each channel's x_hat sums to 0, so gamma gets no gradient either,
        // and beta gets M = 4 * 2 * 2 per channel.
        CHECK(xt::amax(xt::abs(values(weight.grad())))() < 1e-12);
        CHECK(all_close(values(bias.grad()), xt::xarray<double>{16.0, 16.0, 16.0}));
    }

    TEST_CASE("batch_norm matches primitive ops") {
        const Shape shape{3, 4, 2, 3};
        const double eps = 1e-3;
        const Tensor weights = output_weights(shape, 24);
        const std::vector<Tensor> fused{random_input(shape, 25), positive_input({4}, 26),
                                        random_input({4}, 27)};
        std::vector<Tensor> reference;
        for (const Tensor& input : fused) {
            reference.push_back(input.clone().requires_grad_(true));
        }
        const Tensor y = batch_norm(fused[0], fused[1], fused[2], eps);
        const Tensor expected = reference_batch_norm(reference[0], reference[1], reference[2], eps);
        CHECK(all_close(values(y), values(expected), 1e-12));
        const auto fused_grads = gradients_of(y, weights, fused);
        const auto reference_grads = gradients_of(expected, weights, reference);
        for (std::size_t i = 0; i < fused.size(); ++i) {
            CAPTURE(i);
            CHECK(all_close(fused_grads[i], reference_grads[i], 1e-10));
        }
    }

    TEST_CASE("batch_norm values by hand") {
        SUBCASE("(N, C)") {
            // Channel 0 contains {1, 3}: mean 2, biased variance 1. Channel 1
            // contains {10, 30}: mean 20, biased variance 100. With eps = 0 both
            // normalize to {-1, 1}, and then gamma = (2, 0.5), beta = (1, -1).
            const Tensor x(xt::xarray<double>{{1.0, 10.0}, {3.0, 30.0}});
            const Tensor weight(xt::xarray<double>{2.0, 0.5});
            const Tensor bias(xt::xarray<double>{1.0, -1.0});
            const xt::xarray<double> expected{{-1.0, -1.5}, {3.0, -0.5}};
            CHECK(all_close(values(batch_norm(x, weight, bias, 0.0)), expected, 1e-15));
            const xt::xarray<double> normalized{{-1.0, -1.0}, {1.0, 1.0}};
            CHECK(all_close(values(batch_norm(x, Tensor(), Tensor(), 0.0)), normalized, 1e-15));
            // The default eps = 1e-5 divides by sqrt(1 + 1e-5) and sqrt(100 + 1e-5).
            const xt::xarray<double> with_eps{
                {-1.0 / std::sqrt(1.0 + 1e-5), -10.0 / std::sqrt(100.0 + 1e-5)},
                {1.0 / std::sqrt(1.0 + 1e-5), 10.0 / std::sqrt(100.0 + 1e-5)}};
            CHECK(all_close(values(batch_norm(x)), with_eps, 1e-15));
        }
        SUBCASE("(N, C, H, W)") {
            // Shape (2, 3, 1, 2). Channel 0 contains {1, 3, 3, 1} (mean 2,
            // variance 1) and channel 1 contains {4, 0, 0, 4} (mean 2, variance
            // 4). Channel 2 is constant, so it normalizes to 0 and y = beta.
            // With eps = 0 that would be 0 / 0, so it is checked with the
            // default eps.
            const Tensor x(xt::xarray<double>{{{{1.0, 3.0}}, {{4.0, 0.0}}, {{7.0, 7.0}}},
                                              {{{3.0, 1.0}}, {{0.0, 4.0}}, {{7.0, 7.0}}}});
            const Tensor weight(xt::xarray<double>{1.0, 3.0, 5.0});
            const Tensor bias(xt::xarray<double>{0.0, 1.0, 0.25});
            const xt::xarray<double> expected{{{{-1.0, 1.0}}, {{4.0, -2.0}}, {{0.25, 0.25}}},
                                              {{{1.0, -1.0}}, {{-2.0, 4.0}}, {{0.25, 0.25}}}};
            const Tensor y = batch_norm(x, weight, bias, 0.0);
            CHECK(all_close(xt::view(values(y), xt::all(), xt::range(0, 2)),
                            xt::view(expected, xt::all(), xt::range(0, 2)), 1e-15));
            const Tensor constant = batch_norm(x, weight, bias);
            CHECK(values(constant)(0, 2, 0, 0) == 0.25);
            CHECK(values(constant)(1, 2, 0, 1) == 0.25);
        }
    }

    TEST_CASE("batch_norm_inference values by hand") {
        // (3 - 1) / sqrt(3 + 1) = 1 and (0 + 2) / sqrt(0 + 1) = 2, then
        // gamma = (2, 3) and beta = (0.5, 0).
        const Tensor x(xt::xarray<double>{{3.0, 0.0}});
        const Tensor running_mean(xt::xarray<double>{1.0, -2.0});
        const Tensor running_var(xt::xarray<double>{3.0, 0.0});
        const Tensor weight(xt::xarray<double>{2.0, 3.0});
        const Tensor bias(xt::xarray<double>{0.5, 0.0});
        CHECK(
            all_close(values(batch_norm_inference(x, running_mean, running_var, weight, bias, 1.0)),
                      xt::xarray<double>{{2.5, 6.0}}, 1e-15));
        CHECK(all_close(
            values(batch_norm_inference(x, running_mean, running_var, Tensor(), Tensor(), 1.0)),
            xt::xarray<double>{{1.0, 2.0}}, 1e-15));
    }

    TEST_CASE("batch_norm_inference gradient") {
        const Shape shapes[] = {{5, 3}, {3, 3, 4}, {2, 3, 2, 3}};
        std::uint64_t seed = 30;
        for (const Shape& shape : shapes) {
            CAPTURE(shape_string(shape));
            const Tensor weights = output_weights(shape, seed + 100);
            CHECK_GRADCHECK(
                [&](const auto& in) {
                    return sum(batch_norm_inference(in[0], in[1], in[2], in[3], in[4]) * weights);
                },
                {random_input(shape, seed), random_input({3}, seed + 1),
                 positive_input({3}, seed + 2), positive_input({3}, seed + 3),
                 random_input({3}, seed + 4)});
            seed += 5;
        }
        SUBCASE("without affine parameters") {
            const Tensor weights = output_weights({4, 3}, 40);
            CHECK_GRADCHECK(
                [&](const auto& in) {
                    return sum(batch_norm_inference(in[0], in[1], in[2]) * weights);
                },
                {random_input({4, 3}, 41), random_input({3}, 42), positive_input({3}, 43)});
        }
    }

    TEST_CASE("batch_norm float32 matches float64") {
        const Shape shape{8, 3, 4, 4};
        Tensor x64 = random_input(shape, 50, -3.0, 5.0);
        Tensor weight64 = positive_input({3}, 51);
        Tensor bias64 = random_input({3}, 52);
        Tensor x32 = to_dtype(x64.detach(), Dtype::float32).requires_grad_(true);
        Tensor weight32 = to_dtype(weight64.detach(), Dtype::float32).requires_grad_(true);
        Tensor bias32 = to_dtype(bias64.detach(), Dtype::float32).requires_grad_(true);
        const Tensor weights = output_weights(shape, 53);

        const Tensor y64 = batch_norm(x64, weight64, bias64);
        const Tensor y32 = batch_norm(x32, weight32, bias32);
        CHECK(y32.dtype() == Dtype::float32);
        CHECK(all_close(y32.to_xarray<double>(), values(y64), 1e-5));

        const auto grads64 = gradients_of(y64, weights, {x64, weight64, bias64});
        const auto grads32 =
            gradients_of(y32, to_dtype(weights, Dtype::float32), {x32, weight32, bias32});
        for (std::size_t i = 0; i < grads64.size(); ++i) {
            CAPTURE(i);
            CHECK(all_close(grads32[i], grads64[i], 1e-4));
        }
    }

    TEST_CASE("batch_statistics values") {
        Tensor x(xt::xarray<double>{{{1.0, 3.0}, {4.0, 0.0}}, {{3.0, 1.0}, {0.0, 8.0}}});
        x.requires_grad_(true);
        const BatchStatistics statistics = batch_statistics(x);
        CHECK(statistics.count == 4);
        CHECK(values(statistics.mean) == xt::xarray<double>{2.0, 3.0});
        // Channel 1 contains {4, 0, 0, 8}: squared deviations 1 + 9 + 9 + 25 = 44.
        CHECK(all_close(values(statistics.biased_var), xt::xarray<double>{1.0, 11.0}, 1e-15));
        CHECK_FALSE(statistics.mean.requires_grad());
        CHECK_FALSE(statistics.biased_var.requires_grad());
        CHECK(batch_statistics(ones({3, 2}, Dtype::float32)).mean.dtype() == Dtype::float32);
    }

    TEST_CASE("batch_norm errors") {
        const Tensor x = zeros({2, 4, 3});
        CHECK_THROWS_WITH_AS(batch_norm(zeros({5})),
                             doctest::Contains("batch_norm: expected an input of shape (N, C, ...) "
                                               "with at least 2 dimensions, got shape (5)"),
                             shape_error);
        CHECK_THROWS_WITH_AS(batch_norm(x, ones({3})),
                             doctest::Contains("batch_norm: weight has shape (3) but the input of "
                                               "shape (2, 4, 3) has 4 channels along axis 1; "
                                               "expected weight of shape (4)"),
                             shape_error);
        CHECK_THROWS_WITH_AS(batch_norm(x, ones({4}), zeros({4, 1})),
                             doctest::Contains("batch_norm: bias has shape (4, 1)"), shape_error);
        CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), zeros({2})),
                             doctest::Contains("batch_norm: bias has shape (2)"), shape_error);
        CHECK_THROWS_WITH_AS(batch_norm(x, ones({4}, Dtype::float64)),
                             doctest::Contains("batch_norm: inputs have different dtypes"),
                             value_error);
        CHECK_THROWS_WITH_AS(
            batch_norm(zeros({0, 3})),
            doctest::Contains("batch_norm: the input of shape (0, 3) has no values per channel"),
            value_error);
        CHECK_THROWS_WITH_AS(
            batch_norm(x, Tensor(), Tensor(), -1.0),
            doctest::Contains("batch_norm: eps must be a finite non-negative number, got -1"),
            value_error);
        CHECK_THROWS_WITH_AS(batch_norm(Tensor(xt::xarray<std::int64_t>{{1, 2}})),
                             doctest::Contains("batch_norm"), value_error);
        CHECK_THROWS_WITH_AS(batch_norm(Tensor()),
                             doctest::Contains("batch_norm: input 0 is an undefined tensor"),
                             value_error);
    }

    TEST_CASE("batch_norm_inference errors") {
        const Tensor x = zeros({2, 3});
        CHECK_THROWS_WITH_AS(
            batch_norm_inference(x, zeros({2}), ones({3})),
            doctest::Contains("batch_norm_inference: running_mean has shape (2) but "
                              "the input of shape (2, 3) has 3 channels"),
            shape_error);
        CHECK_THROWS_WITH_AS(
            batch_norm_inference(x, zeros({3}), ones({3, 1})),
            doctest::Contains("batch_norm_inference: running_var has shape (3, 1)"), shape_error);
        const Tensor negative(xt::xarray<float>{1.0f, -2.0f, 1.0f});
        CHECK_THROWS_WITH_AS(
            batch_norm_inference(x, zeros({3}), negative),
            doctest::Contains("batch_norm_inference: running_var + eps must be positive, "
                              "but channel 1 has running_var -2"),
            value_error);
        // A batch of zero examples is fine here: no statistics are computed.
        CHECK(batch_norm_inference(zeros({0, 3}), zeros({3}), ones({3})).shape() == Shape{0, 3});
    }

    TEST_CASE("batch_statistics errors") {
        CHECK_THROWS_WITH_AS(
            batch_statistics(zeros({4})),
            doctest::Contains("batch_statistics: expected an input of shape (N, C, ...)"),
            shape_error);
        CHECK_THROWS_WITH_AS(
            batch_statistics(zeros({0, 2, 2})),
            doctest::Contains("batch_statistics: the input of shape (0, 2, 2) has no values"),
            value_error);
        CHECK_THROWS_AS(batch_statistics(Tensor(xt::xarray<std::int64_t>{{1, 2}})), value_error);
    }
}

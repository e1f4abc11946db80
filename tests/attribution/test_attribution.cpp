#include <cmath>
#include <stdexcept>

#include "testing.hpp"
#include "xgrad/attribution.hpp"

using namespace xgrad;
namespace attr = xgrad::attribution;
using testing::all_close;
using testing::values;

namespace {

const xt::xarray<double> kWeights = {0.5, -1.5, 2.0, 0.25};
constexpr double kBias = 0.3;

// f(x) = w·x + b for each row of a batch (n, 4).
attr::ScoreFunction linear_score() {
    const Tensor w(kWeights);
    return [w](const Tensor& x) { return matmul(x, w) + kBias; };
}

// f(x) = Σ_j x_j² for each row.
attr::ScoreFunction sum_of_squares() {
    return [](const Tensor& x) { return sum(x * x, {1}); };
}

Tensor batch(std::uint64_t seed, std::size_t n = 3, std::size_t features = 4,
             Dtype dtype = Dtype::float64) {
    Generator generator(seed);
    return uniform({n, features}, -2.0, 2.0, generator, dtype);
}

// Each row of `rows` (n, d) multiplied elementwise by `factor` (d).
xt::xarray<double> rows_times(const xt::xarray<double>& rows, const xt::xarray<double>& factor) {
    xt::xarray<double> result = rows;
    for (std::size_t i = 0; i < rows.shape()[0]; ++i) {
        for (std::size_t j = 0; j < rows.shape()[1]; ++j) {
            result(i, j) = rows(i, j) * factor(j);
        }
    }
    return result;
}

xt::xarray<double> repeat_rows(const xt::xarray<double>& row, std::size_t n) {
    xt::xarray<double> result = xt::zeros<double>({n, row.size()});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < row.size(); ++j) {
            result(i, j) = row(j);
        }
    }
    return result;
}

std::shared_ptr<nn::Sequential> tanh_network(std::uint64_t seed, Dtype dtype = Dtype::float64) {
    Generator generator(seed);
    auto layer = [&](std::size_t in, std::size_t out) {
        return std::make_shared<nn::Linear>(
            nn::LinearOptions{.in_features = in, .out_features = out, .dtype = dtype}, generator);
    };
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        layer(6, 8), std::make_shared<nn::Tanh>(), layer(8, 3)});
}

Tensor int64_tensor(const std::vector<std::int64_t>& entries) {
    xt::xarray<std::int64_t> result(Shape{entries.size()});
    for (std::size_t i = 0; i < entries.size(); ++i) {
        result(i) = entries[i];
    }
    return Tensor(std::move(result));
}

constexpr attr::IntegrationRule kRules[] = {
    attr::IntegrationRule::left, attr::IntegrationRule::right, attr::IntegrationRule::midpoint,
    attr::IntegrationRule::trapezoid};

}  // namespace

TEST_SUITE("attribution") {
    TEST_CASE("gradient of a linear model is w") {
        const Tensor x = batch(1);
        const Tensor g = attr::gradient(linear_score(), x);
        CHECK(g.dtype() == Dtype::float64);
        CHECK(all_close(values(g), repeat_rows(kWeights, 3), 1e-14));
    }

    TEST_CASE("saliency is the absolute gradient") {
        const Tensor x = batch(2);
        CHECK(all_close(values(attr::saliency(linear_score(), x)),
                        repeat_rows(xt::abs(kWeights), 3), 1e-14));
    }

    TEST_CASE("input times gradient of a linear model is w times x") {
        const Tensor x = batch(3);
        CHECK(all_close(values(attr::input_x_gradient(linear_score(), x)),
                        rows_times(values(x), kWeights), 1e-14));
    }

    TEST_CASE("integrated gradients of a linear model are exact") {
        const Tensor x = batch(4);
        for (attr::IntegrationRule rule : kRules) {
            CAPTURE(static_cast<int>(rule));
            SUBCASE("from zeros") {
                const attr::IntegratedGradients result =
                    attr::integrated_gradients(linear_score(), x, {.steps = 5, .rule = rule});
                CHECK(
                    all_close(values(result.attributions), rows_times(values(x), kWeights), 1e-12));
                CHECK(result.scores.shape() == Shape{3});
                CHECK(all_close(values(result.baseline_scores),
                                xt::xarray<double>{kBias, kBias, kBias}, 1e-14));
                CHECK(all_close(values(result.completeness_gap()), xt::zeros<double>({3}), 1e-12));
            }
            SUBCASE("from a scalar baseline") {
                const attr::IntegratedGradients result = attr::integrated_gradients(
                    linear_score(), x, {.steps = 2, .rule = rule, .baseline = scalar(0.5)});
                CHECK(all_close(values(result.attributions), rows_times(values(x) - 0.5, kWeights),
                                1e-12));
            }
            SUBCASE("from one example's baseline") {
                const xt::xarray<double> start = {1.0, -1.0, 0.5, 2.0};
                const attr::IntegratedGradients result = attr::integrated_gradients(
                    linear_score(), x, {.steps = 3, .rule = rule, .baseline = Tensor(start)});
                CHECK(all_close(values(result.attributions),
                                rows_times(values(x) - repeat_rows(start, 3), kWeights), 1e-12));
                CHECK(all_close(values(result.completeness_gap()), xt::zeros<double>({3}), 1e-12));
            }
        }
    }

    TEST_CASE("integrated gradients of a sum of squares") {
        // g(α) = 2 α x along the path from 0 is affine in α, so midpoint and
        // trapezoid give x² exactly; left and right miss by x²/N either way.
        const Tensor x = batch(5);
        const xt::xarray<double> squares = values(x) * values(x);
        constexpr std::size_t kSteps = 8;
        auto attributions = [&](attr::IntegrationRule rule) {
            return values(
                attr::integrated_gradients(sum_of_squares(), x, {.steps = kSteps, .rule = rule})
                    .attributions);
        };
        CHECK(all_close(attributions(attr::IntegrationRule::trapezoid), squares, 1e-12));
        CHECK(all_close(attributions(attr::IntegrationRule::midpoint), squares, 1e-12));
        CHECK(all_close(attributions(attr::IntegrationRule::left), squares * (1.0 - 1.0 / kSteps),
                        1e-12));
        CHECK(all_close(attributions(attr::IntegrationRule::right), squares * (1.0 + 1.0 / kSteps),
                        1e-12));
    }

    TEST_CASE("integrated gradients of a smooth network converge") {
        // For a smooth f the trapezoid rule's error falls as 1/N², so
        // doubling the steps divides the completeness gap by about 4.
        auto model = tanh_network(6);
        const Tensor x = batch(7, 4, 6);
        const attr::ScoreFunction score = attr::class_score(*model, 2);
        auto gaps = [&](std::size_t steps) {
            return values(
                attr::integrated_gradients(score, x, {.steps = steps, .baseline = batch(8, 1, 6)})
                    .completeness_gap());
        };
        const xt::xarray<double> coarse = gaps(32);
        const xt::xarray<double> fine = gaps(64);
        for (std::size_t i = 0; i < 4; ++i) {
            CAPTURE(i);
            CAPTURE(coarse(i));
            CAPTURE(fine(i));
            CHECK(std::abs(fine(i)) <= 1e-4);
            CHECK(std::abs(fine(i)) == doctest::Approx(std::abs(coarse(i)) / 4).epsilon(0.05));
        }
    }

    TEST_CASE("an empty batch has an empty gap") {
        const attr::ScoreFunction cubes = [](const Tensor& t) { return sum(t * t * t, {1}); };
        const Tensor empty(xt::xarray<double>(xt::zeros<double>({0, 2})));
        const attr::IntegratedGradients result = attr::integrated_gradients(cubes, empty);
        CHECK(result.attributions.shape() == Shape{0, 2});
        CHECK(result.completeness_gap().shape() == Shape{0});
    }

    TEST_CASE("a scalar score explains the whole tensor") {
        const Tensor x = batch(9);
        const attr::ScoreFunction total = [](const Tensor& t) { return sum(t * t); };
        CHECK(all_close(values(attr::gradient(total, x)), 2.0 * values(x), 1e-14));
        const attr::IntegratedGradients result = attr::integrated_gradients(total, x);
        CHECK(result.scores.shape() == Shape{});
        CHECK(all_close(values(result.attributions), values(x) * values(x), 1e-12));
        CHECK(std::abs(result.completeness_gap().item()) < 1e-12);
    }

    TEST_CASE("gradient matches central differences") {
        auto model = tanh_network(10);
        const attr::ScoreFunction score = attr::class_score(*model, 1);
        const Tensor x = batch(11, 2, 6);
        const xt::xarray<double> analytic = values(attr::gradient(score, x));

        constexpr double kStep = 1e-6;
        NoGradGuard no_grad;
        for (std::size_t i = 0; i < x.numel(); ++i) {
            Tensor plus = x.clone();
            Tensor minus = x.clone();
            plus.mutable_values<double>().flat(i) += kStep;
            minus.mutable_values<double>().flat(i) -= kStep;
            const std::size_t row = i / 6;
            const double numeric =
                (values(score(plus))(row) - values(score(minus))(row)) / (2.0 * kStep);
            CAPTURE(i);
            CHECK(analytic.flat(i) == doctest::Approx(numeric).epsilon(1e-6));
        }
    }

    TEST_CASE("batched results equal one example at a time") {
        auto model = tanh_network(12);
        model->eval();
        const Tensor x = batch(13, 3, 6);
        const std::vector<std::int64_t> classes = {2, 0, 1};
        const Tensor batched_gradient =
            attr::gradient(attr::class_score(*model, int64_tensor(classes)), x);
        const Tensor batched_ig =
            attr::integrated_gradients(attr::class_score(*model, int64_tensor(classes)), x,
                                       {.steps = 16})
                .attributions;
        for (std::size_t i = 0; i < 3; ++i) {
            CAPTURE(i);
            const Tensor row =
                slice(x, 0, static_cast<std::int64_t>(i), static_cast<std::int64_t>(i) + 1);
            const attr::ScoreFunction one = attr::class_score(*model, int64_tensor({classes[i]}));
            const xt::xarray<double> expected_gradient = values(attr::gradient(one, row));
            const xt::xarray<double> expected_ig =
                values(attr::integrated_gradients(one, row, {.steps = 16}).attributions);
            for (std::size_t j = 0; j < 6; ++j) {
                CHECK(values(batched_gradient)(i, j) ==
                      doctest::Approx(expected_gradient(0, j)).epsilon(1e-12));
                CHECK(values(batched_ig)(i, j) ==
                      doctest::Approx(expected_ig(0, j)).epsilon(1e-12));
            }
        }
    }

    TEST_CASE("class_score picks logits and log probabilities") {
        auto model = tanh_network(14);
        const Tensor x = batch(15, 3, 6);
        const xt::xarray<double> logits = values((*model)(x));
        const xt::xarray<double> log_probabilities = values(log_softmax((*model)(x)));
        const Tensor classes = int64_tensor({1, 2, 0});

        const xt::xarray<double> picked = values(attr::class_score(*model, classes)(x));
        const xt::xarray<double> picked_log =
            values(attr::class_score(*model, classes, attr::ClassScore::log_probability)(x));
        const xt::xarray<double> fixed = values(attr::class_score(*model, 2)(x));
        for (std::size_t i = 0; i < 3; ++i) {
            const auto c = static_cast<std::size_t>(classes.values<std::int64_t>()(i));
            CHECK(picked(i) == logits(i, c));
            CHECK(picked_log(i) == log_probabilities(i, c));
            CHECK(fixed(i) == logits(i, 2));
        }
    }

    TEST_CASE("smooth_grad is deterministic for a seed") {
        auto model = tanh_network(16, Dtype::float32);
        const attr::ScoreFunction score = attr::class_score(*model, 0);
        const Tensor x = batch(17, 2, 6, Dtype::float32);
        const attr::SmoothGradOptions options{.samples = 10, .noise_stddev = 0.3};
        Generator first(5);
        Generator second(5);
        Generator other(6);
        const Tensor a = attr::smooth_grad(score, x, options, first);
        const Tensor b = attr::smooth_grad(score, x, options, second);
        const Tensor c = attr::smooth_grad(score, x, options, other);
        CHECK(a.dtype() == Dtype::float32);
        CHECK(a.values<float>() == b.values<float>());
        CHECK(a.values<float>() != c.values<float>());
    }

    TEST_CASE("smooth_grad averages over the documented noise") {
        // ∂/∂x Σ (x + ε)² = 2 (x + ε), so the mean is 2 x + 2 mean(ε_s), with
        // ε_s drawn from a generator of the same seed in the same order.
        const Tensor x = batch(18);
        constexpr std::size_t kSamples = 7;
        constexpr double kStddev = 0.5;
        Generator generator(3);
        const Tensor smoothed = attr::smooth_grad(
            sum_of_squares(), x, {.samples = kSamples, .noise_stddev = kStddev}, generator);

        Generator replay(3);
        xt::xarray<double> noise_sum = xt::zeros<double>(x.shape());
        xt::xarray<double> magnitude_sum = xt::zeros<double>(x.shape());
        for (std::size_t s = 0; s < kSamples; ++s) {
            const xt::xarray<double> noise =
                values(normal(x.shape(), 0.0, kStddev, replay, Dtype::float64));
            noise_sum += noise;
            magnitude_sum += xt::abs(2.0 * (values(x) + noise));
        }
        CHECK(all_close(values(smoothed), 2.0 * values(x) + 2.0 * noise_sum / kSamples, 1e-12));

        SUBCASE("absolute") {
            Generator again(3);
            const Tensor magnitudes = attr::smooth_grad(
                sum_of_squares(), x,
                {.samples = kSamples, .noise_stddev = kStddev, .absolute = true}, again);
            CHECK(all_close(values(magnitudes), magnitude_sum / kSamples, 1e-12));
        }
    }

    TEST_CASE("smooth_grad without noise is the gradient") {
        auto model = tanh_network(19);
        const attr::ScoreFunction score = attr::class_score(*model, 1);
        const Tensor x = batch(20, 2, 6);
        Generator generator(0);
        CHECK(all_close(
            values(attr::smooth_grad(score, x, {.samples = 3, .noise_stddev = 0.0}, generator)),
            values(attr::gradient(score, x)), 1e-14));
    }

    TEST_CASE("parameters keep their gradients and flags") {
        auto model = tanh_network(21);
        const Tensor x = batch(22, 2, 6);
        Generator generator(1);
        const attr::ScoreFunction score = attr::class_score(*model, 0);
        attr::gradient(score, x);
        attr::smooth_grad(score, x, {.samples = 2}, generator);
        attr::integrated_gradients(score, x, {.steps = 4});
        // A plain pair, not a structured binding: clang 14 cannot capture
        // a binding in CAPTURE's lambda.
        for (const auto& named : model->named_parameters()) {
            const std::string& name = named.first;
            CAPTURE(name);
            CHECK(named.second.requires_grad());
            CHECK_FALSE(named.second.grad().defined());
        }

        SUBCASE("unless they are not listed") {
            const attr::ScoreFunction unlisted = [&model](const Tensor& t) {
                return reshape(slice((*model)(t), 1, 0, 1), {-1});
            };
            attr::gradient(unlisted, x);
            CHECK(model->parameters()[0].grad().defined());
        }
        SUBCASE("when the score function throws") {
            const attr::ScoreFunction failing(
                [](const Tensor&) -> Tensor { throw std::runtime_error("score failed"); },
                model->parameters());
            CHECK_THROWS_AS(attr::gradient(failing, x), std::runtime_error);
            for (const Tensor& parameter : model->parameters()) {
                CHECK(parameter.requires_grad());
            }
        }
    }

    TEST_CASE("inputs that require grad are left alone") {
        Tensor x = batch(23);
        x.requires_grad_(true);
        const Tensor product = attr::input_x_gradient(linear_score(), x);
        CHECK_FALSE(product.requires_grad());
        CHECK_FALSE(x.grad().defined());
    }

    TEST_CASE("works inside NoGradGuard") {
        NoGradGuard no_grad;
        const Tensor x = batch(24);
        CHECK(
            all_close(values(attr::gradient(linear_score(), x)), repeat_rows(kWeights, 3), 1e-14));
        CHECK_FALSE(is_grad_enabled());
    }

    TEST_CASE("invalid arguments") {
        const Tensor x = batch(25);
        SUBCASE("integer inputs") {
            CHECK_THROWS_WITH_AS(
                attr::gradient(linear_score(), Tensor(xt::xarray<std::int64_t>{1, 2})),
                doctest::Contains("gradient: inputs must be float32 or float64"), value_error);
        }
        SUBCASE("a score per element") {
            const attr::ScoreFunction elementwise = [](const Tensor& t) { return t * t; };
            CHECK_THROWS_WITH_AS(
                attr::saliency(elementwise, x),
                doctest::Contains("saliency: the score function returned shape (3, 4)"),
                shape_error);
        }
        SUBCASE("a score that ignores its argument") {
            const attr::ScoreFunction constant = [](const Tensor& t) { return sum(t.detach()); };
            CHECK_THROWS_WITH_AS(attr::input_x_gradient(constant, x),
                                 doctest::Contains("input_x_gradient: the score does not depend"),
                                 value_error);
            Tensor other = scalar(1.0, Dtype::float64);
            other.requires_grad_(true);
            const attr::ScoreFunction unrelated = [other](const Tensor& t) {
                return sum(t.detach()) * other;
            };
            CHECK_THROWS_WITH_AS(attr::gradient(unrelated, x), doctest::Contains("does not depend"),
                                 value_error);
        }
        SUBCASE("integration settings") {
            CHECK_THROWS_WITH_AS(
                attr::integrated_gradients(linear_score(), x, {.steps = 0}),
                doctest::Contains("integrated_gradients: steps must be at least 1"), value_error);
            CHECK_THROWS_WITH_AS(
                attr::integrated_gradients(linear_score(), x, {.baseline = batch(26, 3, 5)}),
                doctest::Contains(
                    "integrated_gradients: a baseline of shape (3, 5) does not broadcast"),
                shape_error);
        }
        SUBCASE("smoothing settings") {
            Generator generator(0);
            CHECK_THROWS_WITH_AS(attr::smooth_grad(linear_score(), x, {.samples = 0}, generator),
                                 doctest::Contains("smooth_grad: samples must be at least 1"),
                                 value_error);
            CHECK_THROWS_WITH_AS(
                attr::smooth_grad(linear_score(), x, {.noise_stddev = -1.0}, generator),
                doctest::Contains("smooth_grad: noise_stddev must be finite and at least 0"),
                value_error);
        }
        SUBCASE("classes") {
            auto model = tanh_network(27);
            const Tensor rows = batch(28, 2, 6);
            CHECK_THROWS_WITH_AS(
                attr::gradient(attr::class_score(*model, 3), rows),
                doctest::Contains("class_score: class 3 is out of range for a model "
                                  "with 3 outputs"),
                value_error);
            CHECK_THROWS_WITH_AS(
                attr::gradient(attr::class_score(*model, int64_tensor({0, 1, 2})), rows),
                doctest::Contains("class_score: 3 classes were given for a batch of 2"),
                shape_error);
            CHECK_THROWS_WITH_AS(attr::class_score(*model, Tensor(xt::xarray<double>{1.0})),
                                 doctest::Contains("class_score: classes must be an int64 tensor"),
                                 value_error);
        }
        SUBCASE("an empty result") {
            CHECK_THROWS_WITH_AS(attr::IntegratedGradients{}.completeness_gap(),
                                 doctest::Contains("completeness_gap: the result is empty"),
                                 value_error);
        }
    }
}

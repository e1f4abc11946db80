#include <cmath>

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_away_from_zero;
using xgrad::testing::random_input;
using xgrad::testing::values;

namespace {

bool all_finite(const xt::xarray<double>& x) {
    for (double value : x) {
        if (!std::isfinite(value)) {
            return false;
        }
    }
    return true;
}

// Gradient of sum(f(x)) at the given points.
template <class F>
xt::xarray<double> grad_at(F f, xt::xarray<double> at) {
    Tensor x(std::move(at));
    x.requires_grad_(true);
    sum(f(x)).backward();
    return values(x.grad());
}

}  // namespace

TEST_SUITE("activation") {
    TEST_CASE("tanh gradient") {
        CHECK_GRADCHECK([](const auto& in) { return tanh(in[0]); }, {random_input({3, 1, 4}, 1)});
    }

    TEST_CASE("sigmoid gradient") {
        CHECK_GRADCHECK([](const auto& in) { return sigmoid(in[0]); },
                        {random_input({2, 5}, 2, -6.0, 6.0)});
    }

    TEST_CASE("relu gradient") {
        CHECK_GRADCHECK([](const auto& in) { return relu(in[0]); },
                        {random_away_from_zero({4, 3}, 3)});
    }

    TEST_CASE("leaky_relu gradient") {
        CHECK_GRADCHECK([](const auto& in) { return leaky_relu(in[0], 0.2); },
                        {random_away_from_zero({3, 4}, 4)});
    }

    TEST_CASE("gelu gradient") {
        SUBCASE("exact") {
            CHECK_GRADCHECK([](const auto& in) { return gelu(in[0]); },
                            {random_input({2, 1, 3}, 5, -3.0, 3.0)});
        }
        SUBCASE("tanh approximation") {
            CHECK_GRADCHECK([](const auto& in) { return gelu(in[0], true); },
                            {random_input({4, 2}, 6, -3.0, 3.0)});
        }
    }

    TEST_CASE("clamp gradient") {
        // Elements at least 0.1 from both bounds, on both sides of each.
        Tensor x(xt::xarray<double>{-2.0, -1.3, -0.5, 0.0, 0.4, 0.9, 1.6, 3.0});
        x.requires_grad_(true);
        CHECK_GRADCHECK([](const auto& in) { return clamp(in[0], -1.0, 1.2); }, {x});
    }

    TEST_CASE("softmax gradient") {
        for (std::int64_t axis : {-1, 0, 1}) {
            CAPTURE(axis);
            CHECK_GRADCHECK([axis](const auto& in) { return softmax(in[0], axis); },
                            {random_input({3, 4, 2}, 7)});
        }
    }

    TEST_CASE("log_softmax gradient") {
        for (std::int64_t axis : {-1, 0, 2}) {
            CAPTURE(axis);
            CHECK_GRADCHECK([axis](const auto& in) { return log_softmax(in[0], axis); },
                            {random_input({2, 3, 4}, 8)});
        }
    }

    TEST_CASE("kink conventions") {
        CHECK(grad_at([](const Tensor& x) { return relu(x); }, {0.0, 1.0, -1.0}) ==
              xt::xarray<double>{0.0, 1.0, 0.0});
        CHECK(grad_at([](const Tensor& x) { return leaky_relu(x, 0.1); }, {0.0}) ==
              xt::xarray<double>{0.1});
        // clamp passes the gradient at both bounds, which are inside its range.
        const auto clamp_grad =
            grad_at([](const Tensor& x) { return clamp(x, -1.0, 1.0); }, {-1.0, 1.0, 1.5, -2.0});
        CHECK(clamp_grad == xt::xarray<double>{1.0, 1.0, 0.0, 0.0});
    }

    TEST_CASE("extreme inputs stay finite") {
        SUBCASE("log_softmax of [1000, 0, -1000]") {
            Tensor logits(xt::xarray<double>{1000.0, 0.0, -1000.0});
            logits.requires_grad_(true);
            const Tensor y = log_softmax(logits);
            CHECK(all_finite(values(y)));
            CHECK(values(y).flat(0) == doctest::Approx(0.0));
            CHECK(values(y).flat(2) == doctest::Approx(-2000.0));
            sum(y * Tensor(xt::xarray<double>{1.0, 2.0, 3.0})).backward();
            CHECK(all_finite(values(logits.grad())));
        }
        SUBCASE("softmax in float32") {
            const Tensor y = softmax(Tensor(xt::xarray<float>{1000.0f, 0.0f, -1000.0f}));
            CHECK(y.values<float>() == xt::xarray<float>{1.0f, 0.0f, 0.0f});
        }
        SUBCASE("sigmoid and tanh at plus and minus 50") {
            for (auto op : {+[](const Tensor& x) { return sigmoid(x); },
                            +[](const Tensor& x) { return tanh(x); }}) {
                Tensor x(xt::xarray<double>{-50.0, 50.0});
                x.requires_grad_(true);
                const Tensor y = op(x);
                CHECK(all_finite(values(y)));
                sum(y).backward();
                CHECK(all_finite(values(x.grad())));
            }
            // In float32, sigmoid(-100) is the subnormal 3.8e-44, not 0 or NaN.
            const Tensor y32 = sigmoid(Tensor(xt::xarray<float>{-100.0f, 100.0f}));
            CHECK(y32.values<float>().flat(0) >= 0.0f);
            CHECK(y32.values<float>().flat(0) < 1e-40f);
            CHECK(y32.values<float>().flat(1) == 1.0f);
        }
    }

    TEST_CASE("hand-computed values") {
        const Tensor x(xt::xarray<double>{0.0, 1.0});
        CHECK(values(sigmoid(x)).flat(0) == 0.5);
        CHECK(values(gelu(x)).flat(1) == doctest::Approx(0.8413447460685429));
        CHECK(values(softmax(Tensor(xt::xarray<double>{0.0, std::log(3.0)}))) ==
              xt::xarray<double>{0.25, 0.75});
    }

    TEST_CASE("invalid arguments") {
        CHECK_THROWS_WITH_AS(clamp(zeros({2}), 1.0, 0.0), doctest::Contains("clamp:"), value_error);
        CHECK_THROWS_WITH_AS(softmax(zeros({2, 3}), 2), doctest::Contains("softmax: axis 2 is out of range"),
                             value_error);
        CHECK_THROWS_WITH_AS(log_softmax(scalar(1.0)), doctest::Contains("log_softmax:"), shape_error);
    }
}

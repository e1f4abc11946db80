#include <cmath>
#include <limits>

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_away_from_zero;
using xgrad::testing::random_input;
using xgrad::testing::values;

namespace {

Tensor grad_of(Tensor (*op)(const Tensor&), xt::xarray<double> at) {
    Tensor x(std::move(at));
    x.requires_grad_(true);
    sum(op(x)).backward();
    return x.grad();
}

}  // namespace

TEST_SUITE("unary") {
    TEST_CASE("neg gradient") {
        CHECK_GRADCHECK([](const auto& in) { return neg(in[0]); }, {random_input({3, 4}, 1)});
        CHECK_GRADCHECK([](const auto& in) { return -in[0]; }, {random_input({5}, 2)});
    }

    TEST_CASE("exp gradient") {
        CHECK_GRADCHECK([](const auto& in) { return exp(in[0]); }, {random_input({2, 1, 3}, 3)});
        CHECK_GRADCHECK([](const auto& in) { return exp(in[0]); }, {random_input({}, 4)});
    }

    TEST_CASE("log gradient") {
        CHECK_GRADCHECK([](const auto& in) { return log(in[0]); },
                        {random_input({4, 3}, 5, 0.2, 3.0)});
    }

    TEST_CASE("sqrt gradient") {
        CHECK_GRADCHECK([](const auto& in) { return sqrt(in[0]); },
                        {random_input({3, 1, 2}, 6, 0.2, 3.0)});
    }

    TEST_CASE("abs gradient") {
        CHECK_GRADCHECK([](const auto& in) { return abs(in[0]); },
                        {random_away_from_zero({4, 5}, 7)});
    }

    TEST_CASE("pow gradient") {
        for (double exponent : {2.0, 3.0, -1.5, 0.5}) {
            CAPTURE(exponent);
            CHECK_GRADCHECK([exponent](const auto& in) { return pow(in[0], exponent); },
                            {random_input({2, 3}, 8, 0.3, 2.0)});
        }
        CHECK_GRADCHECK([](const auto& in) { return pow(in[0], 3.0); },
                        {random_away_from_zero({3, 2}, 9)});
    }

    TEST_CASE("to_dtype gradient") {
        // float64 -> float32 -> float64 loses precision only in the forward
        // values; the gradient of a cast is exact.
        GradcheckOptions loose;
        loose.atol = 1e-3;
        loose.rtol = 1e-3;
        loose.eps = 1e-3;
        CHECK_GRADCHECK(
            [](const auto& in) { return to_dtype(to_dtype(in[0], Dtype::float32), Dtype::float64); },
            {random_input({3, 2}, 10)}, loose);
        CHECK_GRADCHECK([](const auto& in) { return to_dtype(in[0], Dtype::float64); },
                        {random_input({4}, 11)});
    }

    TEST_CASE("to_dtype converts values") {
        const Tensor x(xt::xarray<std::int64_t>{1, -2, 3});
        const Tensor y = to_dtype(x, Dtype::float32);
        CHECK(y.dtype() == Dtype::float32);
        CHECK(y.values<float>() == xt::xarray<float>{1.0f, -2.0f, 3.0f});
        CHECK_THROWS_WITH_AS(to_dtype(y, Dtype::int64), doctest::Contains("to_dtype"),
                             not_implemented);
    }

    TEST_CASE("hand-computed values") {
        const Tensor x(xt::xarray<double>{1.0, 4.0});
        CHECK(values(sqrt(x)) == xt::xarray<double>{1.0, 2.0});
        CHECK(values(pow(x, 2.0)) == xt::xarray<double>{1.0, 16.0});
        CHECK(values(log(exp(x))) == xt::xarray<double>{1.0, 4.0});
        CHECK(values(abs(-x)) == xt::xarray<double>{1.0, 4.0});
    }

    TEST_CASE("gradient at kinks") {
        SUBCASE("abs at zero is zero") {
            CHECK(values(grad_of(abs, {0.0, -2.0, 3.0})) == xt::xarray<double>{0.0, -1.0, 1.0});
        }
        SUBCASE("pow with exponent zero at x = 0") {
            Tensor x(xt::xarray<double>{0.0, 2.0});
            x.requires_grad_(true);
            sum(pow(x, 0.0)).backward();
            CHECK(values(x.grad()) == xt::xarray<double>{0.0, 0.0});
        }
        SUBCASE("sqrt at zero is infinite") {
            const Tensor grad = grad_of(sqrt, {0.0});
            CHECK(std::isinf(values(grad).flat(0)));
        }
    }

    TEST_CASE("rejects int64") {
        const Tensor labels(xt::xarray<std::int64_t>{1, 2});
        CHECK_THROWS_WITH_AS(exp(labels), doctest::Contains("exp: expected a float32 or float64"),
                             value_error);
    }
}

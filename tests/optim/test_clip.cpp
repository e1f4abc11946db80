#include <cmath>
#include <limits>
#include <vector>

#include "testing.hpp"
#include "xgrad/optim.hpp"

using namespace xgrad;
using namespace xgrad::optim;
using xgrad::testing::values;

namespace {

Tensor with_grad(xt::xarray<double> grad) {
    Tensor x = zeros(Shape(grad.shape().begin(), grad.shape().end()), Dtype::float64);
    x.requires_grad_(true);
    x.set_grad(Tensor(std::move(grad)));
    return x;
}

const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_SUITE("clip") {
    TEST_CASE("clip_grad_norm_ scales large gradients") {
        // The gradients (3, 4) and ((-12, 0), (0, 0)) form one vector of 2-norm 13.
        Tensor a = with_grad({3.0, 4.0});
        Tensor b = with_grad({{-12.0, 0.0}, {0.0, 0.0}});
        const double total = clip_grad_norm_({a, b}, 6.5);
        CHECK(total == 13.0);
        const double c = 6.5 / (13.0 + 1e-6);
        CHECK(testing::all_close(values(a.grad()), {3.0 * c, 4.0 * c}, 1e-15));
        CHECK(testing::all_close(values(b.grad()), {{-12.0 * c, 0.0}, {0.0, 0.0}}, 1e-15));
    }

    TEST_CASE("clip_grad_norm_ leaves small gradients unchanged") {
        Tensor a = with_grad({3.0, 4.0});
        CHECK(clip_grad_norm_({a}, 5.5) == 5.0);
        CHECK(values(a.grad()) == xt::xarray<double>{3.0, 4.0});

        SUBCASE("norm equal to max_norm still scales") {
            CHECK(clip_grad_norm_({a}, 5.0) == 5.0);
            CHECK(values(a.grad())(0) == 3.0 * (5.0 / (5.0 + 1e-6)));
        }
    }

    TEST_CASE("clip_grad_norm_ other orders") {
        Tensor a = with_grad({3.0, -4.0});
        Tensor b = with_grad({-12.0});
        SUBCASE("1-norm") {
            CHECK(clip_grad_norm_({a, b}, 9.5, 1.0) == 19.0);
            const double c = 9.5 / (19.0 + 1e-6);
            CHECK(testing::all_close(values(a.grad()), {3.0 * c, -4.0 * c}, 1e-15));
        }
        SUBCASE("3-norm") {
            const double expected = std::cbrt(27.0 + 64.0 + 1728.0);
            CHECK(clip_grad_norm_({a, b}, 100.0, 3.0) == doctest::Approx(expected).epsilon(1e-14));
            CHECK(values(b.grad()) == xt::xarray<double>{-12.0});
        }
        SUBCASE("infinity norm") {
            CHECK(clip_grad_norm_({a, b}, 6.0, kInfinityNorm) == 12.0);
            const double c = 6.0 / (12.0 + 1e-6);
            CHECK(testing::all_close(values(b.grad()), {-12.0 * c}, 1e-15));
        }
    }

    TEST_CASE("clip_grad_norm_ float32 gradients") {
        Tensor a = zeros({2}, Dtype::float32);
        a.requires_grad_(true);
        a.set_grad(Tensor(xt::xarray<float>{3.0F, 4.0F}));
        CHECK(clip_grad_norm_({a}, 2.5) == 5.0);
        const float c = static_cast<float>(2.5 / (5.0 + 1e-6));
        CHECK(a.grad().values<float>() == xt::xarray<float>{3.0F * c, 4.0F * c});
    }

    TEST_CASE("clip_grad_norm_ skips parameters without gradient") {
        Tensor a = with_grad({3.0, 4.0});
        Tensor no_grad = zeros({3}, Dtype::float64);
        no_grad.requires_grad_(true);
        CHECK(clip_grad_norm_({a, no_grad}, 10.0) == 5.0);
        CHECK_FALSE(no_grad.grad().defined());
        CHECK(clip_grad_norm_({no_grad}, 1.0) == 0.0);
        CHECK(clip_grad_norm_({}, 1.0) == 0.0);
    }

    TEST_CASE("clip_grad_norm_ non-finite norm") {
        Tensor a = with_grad({kInf, 1.0});
        SUBCASE("rejected with error_if_nonfinite") {
            CHECK_THROWS_WITH_AS(clip_grad_norm_({a}, 1.0, 2.0, true),
                                 doctest::Contains("clip_grad_norm_: the total gradient norm of "
                                                   "order 2 is inf"),
                                 value_error);
            CHECK(values(a.grad())(1) == 1.0);
        }
        SUBCASE("passed on otherwise") {
            CHECK(clip_grad_norm_({a}, 1.0) == kInf);
            CHECK(std::isnan(values(a.grad())(0)));
            CHECK(values(a.grad())(1) == 0.0);
        }
        SUBCASE("nan") {
            Tensor b = with_grad({std::nan(""), 1.0});
            CHECK(std::isnan(clip_grad_norm_({b}, 1.0, kInfinityNorm)));
            CHECK(std::isnan(values(b.grad())(1)));
        }
    }

    TEST_CASE("clip_grad_norm_ invalid arguments") {
        Tensor a = with_grad({1.0});
        CHECK_THROWS_WITH_AS(clip_grad_norm_({a}, -1.0),
                             doctest::Contains("clip_grad_norm_: max_norm must be >= 0, got -1"),
                             value_error);
        CHECK_THROWS_WITH_AS(clip_grad_norm_({a}, 1.0, 0.0),
                             doctest::Contains("clip_grad_norm_: norm_type must be > 0 "
                                               "(kInfinityNorm for the maximum norm), got 0"),
                             value_error);
        CHECK_THROWS_WITH_AS(clip_grad_norm_({a, Tensor()}, 1.0),
                             doctest::Contains("clip_grad_norm_: parameter 1 is an undefined "
                                               "tensor"),
                             value_error);
    }

    TEST_CASE("clip_grad_value_ clamps every element") {
        Tensor a = with_grad({-3.0, 0.5, 2.0});
        Tensor b = zeros({2}, Dtype::float32);
        b.requires_grad_(true);
        b.set_grad(Tensor(xt::xarray<float>{-0.25F, 7.0F}));
        Tensor no_grad = zeros({1}, Dtype::float64);
        no_grad.requires_grad_(true);
        clip_grad_value_({a, b, no_grad}, 1.0);
        CHECK(values(a.grad()) == xt::xarray<double>{-1.0, 0.5, 1.0});
        CHECK(b.grad().values<float>() == xt::xarray<float>{-0.25F, 1.0F});
        CHECK_FALSE(no_grad.grad().defined());
    }

    TEST_CASE("clip_grad_value_ invalid arguments") {
        Tensor a = with_grad({1.0});
        CHECK_THROWS_WITH_AS(clip_grad_value_({a}, -0.5),
                             doctest::Contains("clip_grad_value_: clip_value must be >= 0, got "
                                               "-0.5"),
                             value_error);
        CHECK_THROWS_WITH_AS(clip_grad_value_({Tensor()}, 1.0),
                             doctest::Contains("clip_grad_value_: parameter 0 is an undefined "
                                               "tensor"),
                             value_error);
    }
}

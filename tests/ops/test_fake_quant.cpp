#include "testing.hpp"

using namespace xgrad;
using quant::QScheme;

TEST_SUITE("fake_quant") {
    TEST_CASE("fake_quantize gradient") {
        // A fine grid (scale about 1e-5) seen through a coarse finite
        // difference (step 3e-4) looks like its average slope: 1 inside the
        // range, 0 where values clamp. The error of that view is at most
        // scale / (2 step), about 0.02, and the points stay more than one
        // step away from the clamp ends.
        const quant::QParams params = quant::choose_qparams({-1e-3}, {1.5e-3}, QScheme::affine_uint8);
        Tensor x(xt::xarray<double>{-0.01, -0.0005, 0.0001, 0.0009, 0.01});
        x.requires_grad_(true);
        GradcheckOptions coarse;
        coarse.eps = 3e-4;
        coarse.rtol = 0.05;
        coarse.atol = 1e-3;
        CHECK_GRADCHECK([&](const auto& in) { return fake_quantize(in[0], params); }, {x}, coarse);
    }

    TEST_CASE("fake_quantize per channel gradient") {
        const quant::QParams params =
            quant::choose_qparams({-1e-3, -2e-3}, {1e-3, 2e-3}, QScheme::symmetric_int8, 1);
        Tensor x(xt::xarray<double>{{-0.0004, 0.0011}, {0.0002, -0.05}, {0.003, 0.0}});
        x.requires_grad_(true);
        GradcheckOptions coarse;
        coarse.eps = 3e-4;
        coarse.rtol = 0.05;
        coarse.atol = 1e-3;
        CHECK_GRADCHECK([&](const auto& in) { return fake_quantize(in[0], params); }, {x}, coarse);
    }

    TEST_CASE("fake_quantize values") {
        const quant::QParams params = quant::choose_qparams({-1.0}, {3.0}, QScheme::affine_uint8);
        const double s = params.scales[0];
        const Tensor x(xt::xarray<double>{0.0, 1.5 * s, 2.5 * s, 10.0, -10.0});
        const xt::xarray<double> y = fake_quantize(x, params).values<double>();
        CHECK(y(0) == 0.0);
        CHECK(y(1) == doctest::Approx(2 * s));
        CHECK(y(2) == doctest::Approx(2 * s));
        CHECK(y(3) == doctest::Approx((255 - 64) * s));
        CHECK(y(4) == doctest::Approx(-64 * s));
    }

    TEST_CASE("straight-through estimator at the ends") {
        const quant::QParams params = quant::choose_qparams({-1.0}, {3.0}, QScheme::affine_uint8);
        const double s = params.scales[0];
        // (255 - 64) s lands exactly on qmax, -64 s exactly on qmin: both
        // pass the gradient. One step further clamps and blocks it.
        Tensor x(xt::xarray<double>{191 * s, -64 * s, 192 * s, -65 * s, 0.0});
        x.requires_grad_(true);
        sum(fake_quantize(x, params)).backward();
        CHECK(x.grad().values<double>() == xt::xarray<double>{1.0, 1.0, 0.0, 0.0, 1.0});
    }

    TEST_CASE("fake_quantize_weight gradient and values") {
        Generator generator(3);
        Tensor w = uniform({3, 4}, -1, 1, generator, Dtype::float64);
        w.requires_grad_(true);
        // Its straight-through gradient is the identity; away from the
        // rounding grid (a coarse step) the function's slope is 1 too.
        GradcheckOptions coarse;
        coarse.eps = 0.05;
        coarse.rtol = 0.15;
        coarse.atol = 0.05;
        CHECK_GRADCHECK([](const auto& in) { return fake_quantize_weight(in[0]); }, {w}, coarse);
        const xt::xarray<double> y = fake_quantize_weight(w).values<double>();
        const xt::xarray<double> expected =
            quant::dequantize(quant::quantize(w, quant::weight_qparams(w)), quant::weight_qparams(w))
                .to_xarray<double>();
        CHECK(xt::allclose(y, expected, 0.0, 1e-6));
    }

    TEST_CASE("fake_quantize errors") {
        const quant::QParams two = quant::choose_qparams({-1, -1}, {1, 1}, QScheme::symmetric_int8, 0);
        CHECK_THROWS_WITH_AS(fake_quantize(zeros({3, 2}), two), doctest::Contains("needs 3 scales"), shape_error);
        CHECK_THROWS_WITH_AS(fake_quantize_weight(zeros({3})), doctest::Contains("fake_quantize_weight:"),
                             shape_error);
    }
}

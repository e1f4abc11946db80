#include <xtensor/xview.hpp>

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

    TEST_CASE("fake_quantize_weight on a convolution weight") {
        // One scale per output channel: channel 0 has largest |w| 1.27 and
        // scale 0.01, so 0.5 -> 50 and 0.254 -> 25; channel 1 has largest
        // |w| 0.127 and scale 0.001, so 0.0306 -> 31 and -0.001 -> -1.
        xt::xarray<double> values{0.5, -1.27, 0.254, 0.0, 0.127, 0.0306, -0.001, 0.0};
        values.reshape({2, 1, 2, 2});
        Tensor w(values);
        w.requires_grad_(true);
        const xt::xarray<double> y = fake_quantize_weight(w).values<double>();
        const double s0 = static_cast<float>(1.27 / 127.0);
        const double s1 = static_cast<float>(0.127 / 127.0);
        xt::xarray<double> expected{50 * s0,  -127 * s0, 25 * s0,  0.0,
                                    127 * s1, 31 * s1,   -1 * s1, 0.0};
        expected.reshape({2, 1, 2, 2});
        CHECK(y == expected);
        // The weights int8 inference uses are exactly these.
        const QuantizedWeight q = quantize_conv_weight(w);
        const xt::xarray<double> dequantized =
            xt::cast<double>(q.values.values<std::int8_t>()) *
            xt::view(xt::cast<double>(q.scales.values<float>()), xt::all(), xt::newaxis(),
                     xt::newaxis(), xt::newaxis());
        CHECK(y == dequantized);

        // The straight-through estimator passes every gradient unchanged.
        const Tensor coefficients = testing::random_input({2, 1, 2, 2}, 5);
        sum(mul(fake_quantize_weight(w), coefficients)).backward();
        CHECK(w.grad().values<double>() == coefficients.values<double>());
    }

    TEST_CASE("fake_quantize_weight gradient on a convolution weight") {
        // Moving a channel's largest |w| moves its scale and so every value
        // of the channel, which the estimator ignores. So each channel gets a
        // fixed anchor of magnitude 1 at tap (0, 0, 0), which sets its scale
        // to about 1 / 127, and the checked weights stay within +-0.55.
        Generator generator(6);
        Tensor w = uniform({3, 2, 2, 3}, -0.5, 0.5, generator, Dtype::float64);
        w.requires_grad_(true);
        xt::xarray<double> anchor = xt::zeros<double>({3, 2, 2, 3});
        xt::xarray<double> free = xt::ones<double>({3, 2, 2, 3});
        for (std::size_t o = 0; o < 3; ++o) {
            anchor(o, 0, 0, 0) = o % 2 == 0 ? 1.0 : -1.0;
            free(o, 0, 0, 0) = 0.0;
        }
        const Tensor anchors(anchor);
        const Tensor mask(free);
        GradcheckOptions coarse;
        coarse.eps = 0.05;
        coarse.rtol = 0.15;
        coarse.atol = 0.05;
        CHECK_GRADCHECK(
            [&](const auto& in) { return fake_quantize_weight(add(mul(in[0], mask), anchors)); },
            {w}, coarse);
        const xt::xarray<double> y = fake_quantize_weight(w).values<double>();
        const quant::QParams params = quant::weight_qparams(w);
        REQUIRE(params.scales.size() == 3);
        const xt::xarray<double> expected =
            quant::dequantize(quant::quantize(w, params), params).to_xarray<double>();
        CHECK(xt::allclose(y, expected, 0.0, 1e-6));
    }

    TEST_CASE("fake_quantize errors") {
        const quant::QParams two = quant::choose_qparams({-1, -1}, {1, 1}, QScheme::symmetric_int8, 0);
        CHECK_THROWS_WITH_AS(fake_quantize(zeros({3, 2}), two), doctest::Contains("needs 3 scales"), shape_error);
        CHECK_THROWS_WITH_AS(fake_quantize_weight(zeros({3})), doctest::Contains("fake_quantize_weight:"),
                             shape_error);
        CHECK_THROWS_WITH_AS(fake_quantize_weight(zeros({2, 3, 4})),
                             doctest::Contains("fake_quantize_weight: expected a weight of shape "
                                               "(out_features, in_features) or (C_out, C_in, kH, "
                                               "kW), got (2, 3, 4)"),
                             shape_error);
    }
}

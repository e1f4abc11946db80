#include <cmath>
#include <limits>

#include "testing.hpp"

using namespace xgrad;
using quant::QParams;
using quant::QScheme;

namespace {

QParams affine(double low, double high) { return quant::choose_qparams({low}, {high}, QScheme::affine_uint8); }
QParams symmetric(double low, double high) {
    return quant::choose_qparams({low}, {high}, QScheme::symmetric_int8);
}

std::int64_t q(double x, const QParams& p) {
    return quant::quantize_value(x, p.scales[0], p.zero_points[0], p.qmin(), p.qmax());
}

}  // namespace

TEST_SUITE("qparams") {
    TEST_CASE("affine uint8 by hand") {
        // [-1, 3]: scale = 4 / 255, zero point = round(1 / scale) = round(63.75) = 64.
        const QParams p = affine(-1.0, 3.0);
        CHECK(p.scales[0] == doctest::Approx(4.0 / 255.0));
        CHECK(p.zero_points[0] == 64);
        CHECK(q(0.0, p) == 64);  // zero is exact
        CHECK(q(-1.0, p) == 0);  // -63.75 rounds to -64
        CHECK(q(3.0, p) == 255); // 191.25 rounds to 191
        const double s = p.scales[0];
        CHECK(q(0.5 * s, p) == 64);   // halfway: 0.5 rounds to 0, the even neighbour
        CHECK(q(1.5 * s, p) == 66);   // 1.5 rounds to 2
        CHECK(q(2.5 * s, p) == 66);   // 2.5 rounds to 2
        CHECK(q(-2.5 * s, p) == 62);  // -2.5 rounds to -2
    }

    TEST_CASE("ranges that do not contain zero") {
        const QParams positive = affine(2.0, 5.0);  // widened to [0, 5]
        CHECK(positive.zero_points[0] == 0);
        CHECK(positive.scales[0] == doctest::Approx(5.0 / 255.0));
        const QParams negative = affine(-4.0, -1.0);  // widened to [-4, 0]
        CHECK(negative.zero_points[0] == 255);
        CHECK(q(0.0, negative) == 255);
        CHECK(q(-4.0, negative) == 0);
    }

    TEST_CASE("inputs far outside the range clamp") {
        const QParams p = affine(-1.0, 3.0);
        CHECK(q(1e10, p) == 255);
        CHECK(q(-1e10, p) == 0);
        CHECK(q(std::numeric_limits<double>::infinity(), p) == 255);
        CHECK(q(-std::numeric_limits<double>::infinity(), p) == 0);
        CHECK(q(std::numeric_limits<double>::quiet_NaN(), p) == 64);  // NaN reads as 0
        // Clamping happens after adding the zero point: 1e30 / scale + 64
        // would overflow any integer type before the clamp.
        const QParams s = symmetric(-2.0, 1.0);
        CHECK(q(1e30, s) == 127);
        CHECK(q(-1e30, s) == -127);
    }

    TEST_CASE("symmetric int8 by hand") {
        // [-2, 1]: scale = 2 / 127.
        const QParams p = symmetric(-2.0, 1.0);
        CHECK(p.scales[0] == doctest::Approx(2.0 / 127.0));
        CHECK(p.zero_points[0] == 0);
        CHECK(q(-2.0, p) == -127);
        CHECK(q(1.0, p) == 64);  // 63.5 rounds to 64, the even neighbour
        CHECK(q(0.5 * p.scales[0], p) == 0);
        CHECK(q(-1.5 * p.scales[0], p) == -2);
    }

    TEST_CASE("an all-zero channel keeps a positive scale") {
        const QParams p = quant::choose_qparams({0.0, -1.0}, {0.0, 1.0}, QScheme::symmetric_int8, 0);
        CHECK(p.scales[0] == quant::kMinScale);
        CHECK(std::isfinite(p.scales[0]));
        CHECK(p.scales[0] > 0.0);
        const Tensor w(xt::xarray<float>{{0.0f, 0.0f}, {0.5f, -1.0f}});
        const Tensor restored = quant::dequantize(quant::quantize(w, p), p);
        CHECK(restored.values<float>()(0, 0) == 0.0f);
        CHECK(restored.values<float>()(0, 1) == 0.0f);
        // A tiny channel: 1e-12 is far below the smallest scale, so it reads as 0.
        const QParams tiny = affine(0.0, 1e-12);
        CHECK(tiny.scales[0] == quant::kMinScale);
        CHECK(q(0.0, tiny) == tiny.zero_points[0]);
    }

    TEST_CASE("quantize and dequantize per channel") {
        const Tensor w(xt::xarray<float>{{1.0f, -0.5f, 0.25f}, {-3.0f, 1.5f, 0.0f}});
        const QParams p = quant::weight_qparams(w);
        CHECK(p.axis == 0);
        CHECK(p.scales[0] == doctest::Approx(1.0 / 127.0));
        CHECK(p.scales[1] == doctest::Approx(3.0 / 127.0));
        const Tensor qw = quant::quantize(w, p);
        CHECK(qw.dtype() == Dtype::int8);
        CHECK(qw.values<std::int8_t>() == xt::xarray<std::int8_t>{{127, -64, 32}, {-127, 64, 0}});
        const Tensor restored = quant::dequantize(qw, p);
        CHECK(xt::allclose(restored.values<float>(), w.values<float>(), 0.0, 0.02));
        CHECK_THROWS_WITH_AS(quant::quantize(zeros({3, 3}), p), doctest::Contains("quantize: 2 scales"),
                             shape_error);
    }

    TEST_CASE("invalid ranges are rejected") {
        CHECK_THROWS_WITH_AS(affine(2.0, 1.0), doctest::Contains("invalid range [2"), value_error);
        CHECK_THROWS_AS(affine(std::nan(""), 1.0), value_error);
    }
}

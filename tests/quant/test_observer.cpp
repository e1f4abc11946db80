#include "testing.hpp"

using namespace xgrad;
using quant::QScheme;

TEST_SUITE("observer") {
    TEST_CASE("min max over batches") {
        quant::MinMaxObserver observer(QScheme::affine_uint8);
        CHECK_THROWS_WITH_AS(observer.qparams(), doctest::Contains("no values observed"), value_error);
        observer.observe(Tensor(xt::xarray<float>{0.5f, 2.0f}));
        observer.observe(Tensor(xt::xarray<float>{-1.0f, 1.0f}));
        const auto p = observer.qparams();
        CHECK(p.scales[0] == doctest::Approx(3.0 / 255.0));
        CHECK(p.zero_points[0] == 85);
        CHECK(observer.batches() == 2);
    }

    TEST_CASE("per channel min max") {
        quant::MinMaxObserver observer(QScheme::symmetric_int8, 1);
        observer.observe(Tensor(xt::xarray<float>{{1.0f, -2.0f}, {-0.5f, 0.5f}}));
        const auto p = observer.qparams();
        REQUIRE(p.scales.size() == 2);
        CHECK(p.scales[0] == doctest::Approx(1.0 / 127.0));
        CHECK(p.scales[1] == doctest::Approx(2.0 / 127.0));
    }

    TEST_CASE("moving average") {
        quant::MovingAverageMinMaxObserver observer(QScheme::affine_uint8, -1, 0.5);
        observer.observe(Tensor(xt::xarray<float>{0.0f, 4.0f}));
        observer.observe(Tensor(xt::xarray<float>{0.0f, 2.0f}));  // max: 4 + 0.5 (2 - 4) = 3
        CHECK(observer.qparams().scales[0] == doctest::Approx(3.0 / 255.0));
        CHECK_THROWS_AS(quant::MovingAverageMinMaxObserver(QScheme::affine_uint8, -1, 0.0), value_error);
    }

    TEST_CASE("histogram percentile clips outliers") {
        quant::HistogramObserver observer(QScheme::affine_uint8,
                                          quant::HistogramObserver::Method::percentile, 0.999, 1000);
        xt::xarray<float> values = xt::linspace<float>(0.0f, 1.0f, 10000);
        values(9999) = 100.0f;  // one outlier
        observer.observe(Tensor(values));
        const auto [low, high] = observer.chosen_range();
        CHECK(low == doctest::Approx(0.0).epsilon(0.01));
        CHECK(high < 2.0);  // the outlier is clipped
        quant::MinMaxObserver plain(QScheme::affine_uint8);
        plain.observe(Tensor(values));
        CHECK(observer.qparams().scales[0] < plain.qparams().scales[0] / 10);
    }

    TEST_CASE("histogram mse is no worse than min max") {
        Generator generator(5);
        xt::xarray<float> values = normal({20000}, 0.0, 1.0, generator).values<float>();
        values(0) = 40.0f;
        values(1) = -40.0f;
        quant::HistogramObserver mse(QScheme::affine_uint8, quant::HistogramObserver::Method::mse);
        quant::MinMaxObserver plain(QScheme::affine_uint8);
        mse.observe(Tensor(values));
        plain.observe(Tensor(values));
        // Mean squared error of quantizing the data with each choice. The
        // full range is one of the candidates, so the search can only gain;
        // with two outliers in 20,000 values clipping them would cost more
        // than the finer steps save, so the gain is small.
        auto error = [&](const quant::QParams& p) {
            const Tensor restored = quant::dequantize(quant::quantize(Tensor(values), p), p);
            return xt::mean(xt::square(restored.values<float>() - values))();
        };
        CHECK(error(mse.qparams()) <= error(plain.qparams()));
        CHECK(mse.chosen_range().second <= 40.0);
        // The histogram follows a range that grows after the first batch.
        mse.observe(Tensor(xt::xarray<float>{80.0f}));
        CHECK(mse.chosen_range().second <= 80.0);
        CHECK(mse.batches() == 2);
    }

    TEST_CASE("observers by name") {
        for (const char* name : {"minmax", "moving_average", "histogram_percentile", "histogram_mse"}) {
            CAPTURE(name);
            auto observer = quant::make_activation_observer(name);
            observer->observe(Tensor(xt::xarray<float>{-1.0f, 1.0f}));
            CHECK(observer->qparams().scheme == QScheme::affine_uint8);
        }
        CHECK_THROWS_WITH_AS(quant::make_activation_observer("nope"), doctest::Contains("unknown observer"),
                             value_error);
    }
}

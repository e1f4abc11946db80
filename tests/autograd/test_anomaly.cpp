#include <cmath>

#include "testing.hpp"

using namespace xgrad;

TEST_SUITE("anomaly") {
    TEST_CASE("off by default") {
        CHECK_FALSE(is_anomaly_detection_enabled());
        const Tensor y = log(Tensor(xt::xarray<double>{-1.0, 1.0}));
        CHECK(std::isnan(y.values<double>()(0)));
    }

    TEST_CASE("the first bad forward output throws") {
        AnomalyModeGuard guard;
        const Tensor x(xt::xarray<double>{1.0, -1.0, 2.0});
        const Tensor fine = exp(x);
        CHECK_THROWS_WITH_AS(log(x), doctest::Contains("log: the output contains NaN or infinity (op 2 since"),
                             anomaly_error);
        CHECK_THROWS_WITH_AS(log(x), doctest::Contains("input shapes (3)"), anomaly_error);
        CHECK_THROWS_WITH_AS(x / zeros({3}, Dtype::float64), doctest::Contains("div:"), anomaly_error);
    }

    TEST_CASE("an input that is already bad is named") {
        const Tensor x(xt::xarray<double>{1.0, std::nan(""), 2.0});
        AnomalyModeGuard guard;
        CHECK_THROWS_WITH_AS(exp(x), doctest::Contains("exp: the output contains NaN"), anomaly_error);
        CHECK_THROWS_WITH_AS(exp(x), doctest::Contains("input 0 already contains NaN or infinity"),
                             anomaly_error);
        const Tensor finite(xt::xarray<double>{-1.0, 1.0});
        try {
            (void)log(finite);
            FAIL("log of -1 did not throw");
        } catch (const anomaly_error& e) {
            CHECK(std::string(e.what()).find("already contains") == std::string::npos);
        }
    }

    TEST_CASE("a bad seed gradient throws in backward") {
        Tensor x(xt::xarray<double>{1.0, 2.0});
        x.requires_grad_(true);
        AnomalyModeGuard guard;
        const Tensor y = x * 3.0;
        CHECK_THROWS_WITH_AS(y.backward(Tensor(xt::xarray<double>{1.0, INFINITY})),
                             doctest::Contains("seed gradient passed to backward() for 'mul'"), anomaly_error);
    }

    TEST_CASE("a bad gradient throws in backward") {
        Tensor x(xt::xarray<double>{0.0, 4.0});
        x.requires_grad_(true);
        AnomalyModeGuard guard;
        const Tensor y = sum(sqrt(x));  // finite forward, infinite gradient at 0
        CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("backward: the VJP of 'sqrt' (tape record"),
                             anomaly_error);
    }

    TEST_CASE("graph replay names the node") {
        const Graph captured = capture([](const std::vector<Tensor>& in) { return std::vector<Tensor>{log(in[0]) * 2.0}; },
                                       {Tensor(xt::xarray<double>{1.0, 2.0})});
        Graph graph = captured;
        graph.forward({Tensor(xt::xarray<double>{-1.0, 2.0})});  // no detection: NaN passes
        AnomalyModeGuard guard;
        CHECK_THROWS_WITH_AS(graph.forward({Tensor(xt::xarray<double>{-1.0, 2.0})}),
                             doctest::Contains("Graph::forward: node 0 (%1 = log) produced NaN or infinity"),
                             anomaly_error);
    }

    TEST_CASE("the guard restores the previous mode") {
        {
            AnomalyModeGuard guard;
            CHECK(is_anomaly_detection_enabled());
        }
        CHECK_FALSE(is_anomaly_detection_enabled());
    }
}

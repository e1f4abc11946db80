// The hand-derived numbers of docs/tutorial-seed-network.md, checked against
// the tape.

#include <cmath>

#include "testing.hpp"

using namespace xgrad;

TEST_SUITE("seed network") {
    TEST_CASE("first epoch matches the hand derivation") {
        const Tensor x1(xt::xarray<double>{1.0, 0.0});
        const Tensor x2(xt::xarray<double>{0.0, 1.0});
        const Tensor target(xt::xarray<double>{1.0, 0.0});
        Tensor w1(xt::xarray<double>{0.5});
        Tensor w2(xt::xarray<double>{0.5});
        Tensor b(xt::xarray<double>{0.5});
        for (Tensor* p : {&w1, &w2, &b}) {
            p->requires_grad_(true);
        }

        const Tensor loss = mse_loss(tanh(w1 * x1 + w2 * x2 + b), target);
        loss.backward();

        // Both examples have z = 1, so y = tanh(1) for both.
        const double y = std::tanh(1.0);
        const double delta1 = (y - 1.0) * (1.0 - y * y);  // (2 / N) (y - t) (1 - y^2), N = 2
        const double delta2 = y * (1.0 - y * y);
        CHECK(loss.item() == doctest::Approx(((y - 1.0) * (y - 1.0) + y * y) / 2.0));
        CHECK(loss.item() == doctest::Approx(0.318432).epsilon(1e-6));
        CHECK(w1.grad().item() == doctest::Approx(delta1));
        CHECK(w2.grad().item() == doctest::Approx(delta2));
        CHECK(b.grad().item() == doctest::Approx(delta1 + delta2));
        CHECK(w1.grad().item() == doctest::Approx(-0.100124).epsilon(1e-5));
        CHECK(w2.grad().item() == doctest::Approx(0.319850).epsilon(1e-5));
    }
}

#include <cmath>

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_input;
using xgrad::testing::values;

namespace {

const Reduction kReductions[] = {Reduction::mean, Reduction::sum, Reduction::none};

}  // namespace

TEST_SUITE("loss") {
    TEST_CASE("cross_entropy gradient") {
        const Tensor labels(xt::xarray<std::int64_t>{2, 0, 4, 4});
        for (Reduction reduction : kReductions) {
            CAPTURE(static_cast<int>(reduction));
            CHECK_GRADCHECK([&](const auto& in) { return cross_entropy(in[0], labels, reduction); },
                            {random_input({4, 5}, 1, -3.0, 3.0)});
        }
    }

    TEST_CASE("cross_entropy values") {
        // Uniform logits over 4 classes: every loss is log 4.
        const Tensor logits = zeros({2, 4}, Dtype::float64);
        const Tensor labels(xt::xarray<std::int64_t>{1, 3});
        CHECK(cross_entropy(logits, labels).item() == doctest::Approx(std::log(4.0)));
        CHECK(cross_entropy(logits, labels, Reduction::sum).item() ==
              doctest::Approx(2.0 * std::log(4.0)));
        CHECK(cross_entropy(logits, labels, Reduction::none).shape() == Shape{2});
        // Large logits stay finite: a confident correct prediction has loss 0.
        const Tensor confident(xt::xarray<double>{{1000.0, -1000.0}});
        CHECK(cross_entropy(confident, Tensor(xt::xarray<std::int64_t>{0})).item() == 0.0);
        CHECK(cross_entropy(confident, Tensor(xt::xarray<std::int64_t>{1})).item() == 2000.0);
    }

    TEST_CASE("cross_entropy errors") {
        const Tensor logits = zeros({2, 3});
        CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor(xt::xarray<std::int64_t>{0, 3})),
                             doctest::Contains("cross_entropy: label 3 at position 1 is out of range for 3 classes"),
                             value_error);
        CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor(xt::xarray<std::int64_t>{0})),
                             doctest::Contains("cross_entropy: logits have shape (2, 3) but labels have shape (1)"),
                             shape_error);
        CHECK_THROWS_WITH_AS(cross_entropy(logits, zeros({2})),
                             doctest::Contains("cross_entropy: labels must be an int64"), value_error);
    }

    TEST_CASE("binary_cross_entropy_with_logits gradient") {
        for (Reduction reduction : kReductions) {
            CAPTURE(static_cast<int>(reduction));
            CHECK_GRADCHECK(
                [&](const auto& in) { return binary_cross_entropy_with_logits(in[0], in[1], reduction); },
                {random_input({3, 4}, 2, -4.0, 4.0), random_input({3, 4}, 3, 0.0, 1.0)});
        }
    }

    TEST_CASE("binary_cross_entropy_with_logits at plus and minus 100") {
        Tensor logits(xt::xarray<double>{100.0, -100.0, 100.0});
        logits.requires_grad_(true);
        const Tensor targets(xt::xarray<double>{1.0, 0.0, 0.0});
        const Tensor loss = binary_cross_entropy_with_logits(logits, targets, Reduction::none);
        CHECK(values(loss).flat(0) == doctest::Approx(0.0));
        CHECK(values(loss).flat(1) == doctest::Approx(0.0));
        CHECK(values(loss).flat(2) == doctest::Approx(100.0));
        sum(loss).backward();
        CHECK(testing::all_close(values(logits.grad()), xt::xarray<double>{0.0, 0.0, 1.0}, 1e-12));
    }

    TEST_CASE("mse_loss gradient") {
        for (Reduction reduction : kReductions) {
            CAPTURE(static_cast<int>(reduction));
            CHECK_GRADCHECK([&](const auto& in) { return mse_loss(in[0], in[1], reduction); },
                            {random_input({2, 3}, 4), random_input({2, 3}, 5)});
        }
    }

    TEST_CASE("mse_loss values and shapes") {
        const Tensor prediction(xt::xarray<double>{1.0, 2.0, 3.0});
        const Tensor target(xt::xarray<double>{1.0, 0.0, 0.0});
        CHECK(mse_loss(prediction, target).item() == doctest::Approx(13.0 / 3.0));
        CHECK(mse_loss(prediction, target, Reduction::sum).item() == 13.0);
        CHECK_THROWS_WITH_AS(mse_loss(zeros({3, 1}), zeros({3})),
                             doctest::Contains("mse_loss: the inputs must have the same shape"),
                             shape_error);
    }
}

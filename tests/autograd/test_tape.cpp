#include <thread>

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::values;

namespace {

Tensor parameter(xt::xarray<double> value) {
    Tensor x(std::move(value));
    x.requires_grad_(true);
    return x;
}

}  // namespace

TEST_SUITE("tape") {
    TEST_CASE("diamond sums both paths") {
        Tensor x = parameter({2.0});
        const Tensor a = x * 3.0;
        const Tensor b = x * x;
        (a + b).backward();
        // d/dx (3x + x^2) = 3 + 2x = 7
        CHECK(values(x.grad()) == xt::xarray<double>{7.0});
    }

    TEST_CASE("tensor used twice in one op") {
        Tensor x = parameter({3.0});
        (x * x).backward();
        CHECK(values(x.grad()) == xt::xarray<double>{6.0});
    }

    TEST_CASE("gradients accumulate until zeroed") {
        Tensor x = parameter({1.0, 2.0});
        sum(x * 2.0).backward();
        sum(x * 2.0).backward();
        CHECK(values(x.grad()) == xt::xarray<double>{4.0, 4.0});
        x.zero_grad();
        CHECK_FALSE(x.grad().defined());
        sum(x * 2.0).backward();
        CHECK(values(x.grad()) == xt::xarray<double>{2.0, 2.0});
    }

    TEST_CASE("no-grad guard records nothing") {
        Tensor x = parameter({1.0});
        const std::size_t before = live_tape_records();
        Tensor y;
        {
            NoGradGuard no_grad;
            CHECK_FALSE(is_grad_enabled());
            y = tanh(x) * 2.0;
        }
        CHECK(is_grad_enabled());
        CHECK_FALSE(y.requires_grad());
        CHECK(y.is_leaf());
        CHECK(live_tape_records() == before);
        CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("backward: the tensor does not require grad"),
                             autograd_error);
    }

    TEST_CASE("detach stops the gradient") {
        Tensor x = parameter({2.0});
        const Tensor y = x * x;
        const Tensor z = y.detach() * x + y;
        z.backward();
        // Only the direct paths count: d/dx (c x + x^2) with c = 4 is 4 + 4.
        CHECK(values(x.grad()) == xt::xarray<double>{8.0});
        CHECK_FALSE(y.detach().requires_grad());
    }

    TEST_CASE("second backward through released tape throws") {
        Tensor x = parameter({1.0});
        const Tensor y = tanh(x);
        y.backward();
        CHECK_THROWS_WITH_AS(y.backward(),
                             doctest::Contains("the tape record of 'tanh' was already released"),
                             autograd_error);
    }

    TEST_CASE("shared subgraph released by first backward") {
        Tensor x = parameter({1.0});
        const Tensor shared = exp(x);
        const Tensor first = shared * 2.0;
        const Tensor second = shared * 3.0;
        first.backward();
        CHECK_THROWS_WITH_AS(second.backward(), doctest::Contains("'exp' was already released"),
                             autograd_error);
    }

    TEST_CASE("retain_graph allows a second backward") {
        Tensor x = parameter({0.5});
        const Tensor y = tanh(x);
        const Tensor seed(xt::xarray<double>{1.0});
        y.backward(seed, /*retain_graph=*/true);
        y.backward(seed);
        const double expected = 2.0 * (1.0 - std::tanh(0.5) * std::tanh(0.5));
        CHECK(values(x.grad()).flat(0) == doctest::Approx(expected));
    }

    TEST_CASE("backward needs a scalar or a gradient") {
        Tensor x = parameter({1.0, 2.0});
        const Tensor y = x * 2.0;
        CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("output must have one element, but it has shape (2)"),
                             shape_error);
        CHECK_THROWS_WITH_AS(y.backward(zeros({3}, Dtype::float64)),
                             doctest::Contains("backward: the gradient has shape (3)"), shape_error);
        y.backward(Tensor(xt::xarray<double>{1.0, -1.0}));
        CHECK(values(x.grad()) == xt::xarray<double>{2.0, -2.0});
    }

    TEST_CASE("backward from a leaf") {
        Tensor x = parameter({1.0});
        x.backward();
        CHECK(values(x.grad()) == xt::xarray<double>{1.0});
    }

    TEST_CASE("equal leaves are never merged") {
        Tensor a = parameter({1.0, 2.0});
        Tensor b = parameter({1.0, 2.0});
        CHECK(a.id() != b.id());
        sum(a * 2.0 + b * 5.0).backward();
        CHECK(values(a.grad()) == xt::xarray<double>{2.0, 2.0});
        CHECK(values(b.grad()) == xt::xarray<double>{5.0, 5.0});
    }

    TEST_CASE("in-place change of a saved value is detected") {
        Tensor w = parameter({2.0});
        Tensor input(xt::xarray<double>{3.0});
        SUBCASE("input saved by mul") {
            const Tensor y = w * input;
            input.mutable_values<double>().flat(0) = 10.0;
            CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("mul: input 1 was modified in place"),
                                 autograd_error);
        }
        SUBCASE("parameter changed by an optimizer step before backward") {
            const Tensor y = w * input;
            {
                NoGradGuard no_grad;
                w.mutable_values<double>() -= 0.1;
            }
            CHECK_THROWS_AS(y.backward(), autograd_error);
        }
        SUBCASE("output saved by exp") {
            const Tensor y = exp(w);
            Tensor alias = y.detach();
            alias.mutable_values<double>().flat(0) = 0.0;
            CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("exp: its output was modified in place"),
                                 autograd_error);
        }
        SUBCASE("values an op does not save may change") {
            const Tensor y = w + input;
            input.mutable_values<double>().flat(0) = 10.0;
            y.backward();
            CHECK(values(w.grad()) == xt::xarray<double>{1.0});
        }
    }

    TEST_CASE("mutable_values of a parameter needs no-grad mode") {
        Tensor w = parameter({1.0});
        CHECK_THROWS_WITH_AS(w.mutable_values<double>(), doctest::Contains("mutable_values: the tensor requires grad"),
                             autograd_error);
        NoGradGuard no_grad;
        w.mutable_values<double>().flat(0) = 2.0;
        CHECK(w.version() == 1);
    }

    TEST_CASE("training loop keeps the tape flat") {
        Generator generator(1);
        Tensor w = uniform({4, 1}, -1, 1, generator, Dtype::float64);
        w.requires_grad_(true);
        const Tensor x = uniform({8, 4}, -1, 1, generator, Dtype::float64);
        const Tensor target = uniform({8, 1}, -1, 1, generator, Dtype::float64);
        const std::size_t tensors_before = live_tensors();
        Tensor last_loss;  // kept across steps, which must not pin the tape
        for (int step = 0; step < 10000; ++step) {
            Tensor loss = mse_loss(tanh(matmul(x, w)), target);
            loss.backward();
            {
                NoGradGuard no_grad;
                w.mutable_values<double>() -= 0.01 * values(w.grad());
            }
            w.zero_grad();
            last_loss = loss;
            CHECK(live_tape_records() == 0);
        }
        // Dead records below the kept loss are reclaimed by compaction.
        CHECK(tape_size() < 100);
        CHECK(live_tensors() <= tensors_before + 1);
    }

    TEST_CASE("unused forward results are released") {
        Tensor w = parameter({1.0});
        for (int step = 0; step < 1000; ++step) {
            const Tensor unused = exp(w) * 2.0;
        }
        CHECK(live_tape_records() == 0);
        CHECK(tape_size() == 0);
    }

    TEST_CASE("a long chain is released without deep recursion") {
        Tensor x = parameter({0.5});
        Tensor y = x;
        for (int i = 0; i < 200000; ++i) {
            y = y + 1e-6;
        }
        CHECK(live_tape_records() == 200000);
        y = Tensor();
        CHECK(live_tape_records() == 0);
    }

    TEST_CASE("tensors from another thread's tape are rejected") {
        Tensor x = parameter({1.0});
        Tensor y = x * 2.0;
        std::thread worker([&] {
            CHECK_THROWS_WITH_AS(y * 3.0, doctest::Contains("recorded on another thread's tape"),
                                 autograd_error);
            Tensor z = y.detach() * 3.0;
            CHECK_FALSE(z.requires_grad());
        });
        worker.join();
        y.backward();
        CHECK(values(x.grad()) == xt::xarray<double>{2.0});
    }

    TEST_CASE("requires_grad_ rules") {
        CHECK_THROWS_WITH_AS(Tensor(xt::xarray<std::int64_t>{1}).requires_grad_(),
                             doctest::Contains("only float32 and float64 tensors can require grad"),
                             value_error);
        Tensor x = parameter({1.0});
        Tensor y = x * 2.0;
        CHECK_FALSE(y.is_leaf());
        CHECK_THROWS_WITH_AS(y.requires_grad_(false), doctest::Contains("only leaf tensors"),
                             value_error);
    }
}

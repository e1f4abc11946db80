// Cases found by reviewing the library as a new user: each failed before it
// was fixed.

#include <cmath>
#include <limits>
#include <thread>

#include "testing.hpp"

using namespace xgrad;

TEST_SUITE("regressions") {
    TEST_CASE("large float32 sums stay exact") {
        CHECK(sum(ones({20000000})).item() == 20000000.0);
        CHECK(mean(ones({20000000})).item() == 1.0);
        CHECK(sum(full({10000000}, 0.1)).item() == doctest::Approx(1e6).epsilon(1e-6));
        CHECK(mean(ones({4000, 5000}), {0}).values<float>()(17) == 1.0f);
        const Tensor logits = zeros({20000, 3});
        const Tensor labels = zeros({20000}, Dtype::int64);
        CHECK(cross_entropy(logits, labels, Reduction::sum).item() ==
              doctest::Approx(20000 * std::log(3.0)).epsilon(1e-6));
    }

    TEST_CASE("where with a condition that requires grad") {
        Tensor x(xt::xarray<double>{-1.0, 2.0, 3.0});
        x.requires_grad_(true);
        sum(where(relu(x), x * 2.0, zeros({3}, Dtype::float64))).backward();
        CHECK(x.grad().values<double>() == xt::xarray<double>{0.0, 2.0, 2.0});
    }

    TEST_CASE("a shape changed in place is caught in backward") {
        Tensor w(xt::xarray<double>{1.0, 2.0, 3.0});
        w.requires_grad_(true);
        const Tensor y = sum(w + 1.0);
        {
            NoGradGuard no_grad;
            w.mutable_values<double>() = xt::xarray<double>{1.0, 2.0};
        }
        CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("add: input 0 changed shape from (3) to (2)"),
                             autograd_error);
    }

    TEST_CASE("slice with a huge step") {
        CHECK(slice(ones({2, 3}), 1, 0, 3, std::numeric_limits<std::int64_t>::max()).shape() == Shape{2, 1});
    }

    TEST_CASE("shapes whose size overflows are rejected") {
        CHECK_THROWS_WITH_AS(zeros({std::size_t{1} << 32, std::size_t{1} << 32}),
                             doctest::Contains("more elements than a 64-bit count"), value_error);
        CHECK_THROWS_AS(reshape(zeros({0}), {std::int64_t{1} << 32, std::int64_t{1} << 32}), value_error);
        // Even with a zero extent: xtensor computes strides from the others.
        CHECK_THROWS_AS(zeros({std::size_t{1} << 32, std::size_t{1} << 32, 0}), value_error);
        CHECK(zeros({std::size_t{1} << 20, 0}).numel() == 0);
        CHECK_THROWS_WITH_AS(full({1}, 1e19, Dtype::int64), doctest::Contains("not representable as int64"),
                             value_error);
    }

    TEST_CASE("gradcheck rejects invalid tolerances") {
        Tensor x(xt::xarray<double>{1.0});
        x.requires_grad_(true);
        GradcheckOptions options;
        options.rtol = -1.0;
        CHECK_THROWS_WITH_AS(gradcheck([](const auto& in) { return in[0]; }, {x}, options),
                             doctest::Contains("gradcheck: eps must be positive"), value_error);
        options.rtol = std::nan("");
        CHECK_THROWS_AS(gradcheck([](const auto& in) { return in[0]; }, {x}, options), value_error);
    }

    TEST_CASE("NaN propagates as in PyTorch") {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        CHECK(std::isnan(relu(Tensor(xt::xarray<double>{nan})).item()));
        const Tensor a(xt::xarray<double>{nan, 1.0});
        const Tensor b(xt::xarray<double>{0.0, nan});
        CHECK(xt::all(xt::isnan(maximum(a, b).values<double>())));
        CHECK(xt::all(xt::isnan(maximum(b, a).values<double>())));
        CHECK(xt::all(xt::isnan(minimum(a, b).values<double>())));
        CHECK(argmax(Tensor(xt::xarray<double>{1.0, nan, 3.0})).item() == 1.0);
    }

    TEST_CASE("history lost at thread exit is reported") {
        Tensor w(xt::xarray<double>{1.0});
        w.requires_grad_(true);
        Tensor h;
        std::thread worker([&] { h = w * 2.0; });
        worker.join();
        CHECK_FALSE(h.requires_grad());
        CHECK_THROWS_AS(sum(h * 3.0).backward(), autograd_error);
    }

    TEST_CASE("undefined tensors are reported by op name") {
        const Tensor undefined;
        CHECK_THROWS_WITH_AS(reshape(undefined, {1}), doctest::Contains("reshape:"), value_error);
        CHECK_THROWS_WITH_AS(sum(undefined), doctest::Contains("sum:"), value_error);
        CHECK_THROWS_WITH_AS(argmax(undefined), doctest::Contains("argmax:"), value_error);
        CHECK_THROWS_WITH_AS(transpose(undefined), doctest::Contains("transpose:"), value_error);
        CHECK_THROWS_WITH_AS(nn::Dropout(0.5)(undefined), doctest::Contains("Dropout:"), value_error);
    }

    TEST_CASE("reading a directory as IDX") {
        CHECK_THROWS_WITH_AS(data::read_idx("/tmp"), doctest::Contains("is a directory"), io_error);
    }
}

#include <sstream>

#include "testing.hpp"

using namespace xgrad;

TEST_SUITE("tensor") {
    TEST_CASE("wraps xarray without copying") {
        xt::xarray<float> values = {{1.0f, 2.0f}, {3.0f, 4.0f}};
        const float* data = values.data();
        const Tensor x(std::move(values));
        CHECK(x.values<float>().data() == data);
        CHECK(x.dtype() == Dtype::float32);
        CHECK(x.shape() == Shape{2, 2});
        CHECK(x.numel() == 4);
        CHECK(x.dim() == 2);
    }

    TEST_CASE("values of a temporary are a copy") {
        const Tensor x(xt::xarray<double>{3.0, 1.0, 2.0});
        // argmax returns a temporary; binding its values must not dangle.
        const auto& order = argmax(reshape(x, {1, 3})).values<std::int64_t>();
        CHECK(order == xt::xarray<std::int64_t>{0});
        const auto& kept = x.values<double>();
        CHECK(&kept == &x.values<double>());
    }

    TEST_CASE("converts dtypes on request") {
        const Tensor x(xt::xarray<double>{1.5, -2.0});
        CHECK(x.to_xarray<float>() == xt::xarray<float>{1.5f, -2.0f});
        CHECK(x.to_xarray<double>() == xt::xarray<double>{1.5, -2.0});
        CHECK_THROWS_WITH_AS(x.values<float>(), doctest::Contains("expected a float32 tensor, got float64"),
                             value_error);
    }

    TEST_CASE("factories") {
        CHECK(zeros({2, 3}).values<float>() == xt::zeros<float>({2, 3}));
        CHECK(ones({2}, Dtype::float64).values<double>() == xt::xarray<double>{1.0, 1.0});
        CHECK(full({1}, 7.0, Dtype::int64).values<std::int64_t>() == xt::xarray<std::int64_t>{7});
        CHECK(scalar(3.0).shape() == Shape{});
        CHECK(scalar(3.0).item() == 3.0);
        CHECK(arange(3, Dtype::int64).values<std::int64_t>() == xt::xarray<std::int64_t>{0, 1, 2});
        CHECK_THROWS_WITH_AS(zeros({2}).item(), doctest::Contains("item: expected a tensor with one element"),
                             shape_error);
    }

    TEST_CASE("detach shares values, clone copies them") {
        const Tensor x(xt::xarray<double>{1.0});
        Tensor shared = x.detach();
        Tensor copy = x.clone();
        shared.mutable_values<double>().flat(0) = 5.0;
        CHECK(x.item() == 5.0);
        CHECK(copy.item() == 1.0);
        CHECK(x.version() == 1);
        CHECK(copy.version() == 0);
    }

    TEST_CASE("set_grad checks shape") {
        Tensor x = zeros({2});
        x.set_grad(ones({2}));
        CHECK(x.grad().values<float>() == xt::xarray<float>{1.0f, 1.0f});
        CHECK_THROWS_WITH_AS(x.set_grad(ones({3})), doctest::Contains("set_grad: the gradient has shape (3)"),
                             shape_error);
    }

    TEST_CASE("undefined tensors are reported") {
        const Tensor undefined;
        CHECK_FALSE(undefined.defined());
        CHECK_THROWS_WITH_AS(exp(undefined), doctest::Contains("exp: input 0 is an undefined tensor"),
                             value_error);
        CHECK_THROWS_AS(undefined.shape(), value_error);
    }

    TEST_CASE("prints dtype, shape and values") {
        Tensor x(xt::xarray<double>{1.0, 2.0});
        x.requires_grad_(true);
        const std::string text = to_string(x);
        CHECK(text.find("Tensor(float64, shape (2), requires_grad)") == 0);
        CHECK(text.find("2.") != std::string::npos);
    }

    TEST_CASE("generator is deterministic") {
        Generator a(42);
        Generator b(42);
        for (int i = 0; i < 100; ++i) {
            CHECK(a.next_bits() == b.next_bits());
        }
        Generator c(42);
        const auto state = c.state();
        const double first = c.uniform();
        c.set_state(state);
        CHECK(c.uniform() == first);
        for (int i = 0; i < 1000; ++i) {
            const std::uint64_t value = c.below(7);
            CHECK(value < 7);
            const double u = c.uniform();
            CHECK(u >= 0.0);
            CHECK(u < 1.0);
        }
    }

    TEST_CASE("normal samples have the right moments") {
        Generator generator(3);
        const Tensor samples = normal({20000}, 2.0, 0.5, generator, Dtype::float64);
        const double sample_mean = mean(samples).item();
        const double sample_std = std::sqrt(mean(pow(samples - sample_mean, 2.0)).item());
        CHECK(sample_mean == doctest::Approx(2.0).epsilon(0.01));
        CHECK(sample_std == doctest::Approx(0.5).epsilon(0.02));
    }
}

TEST_SUITE("tensor") {
    TEST_CASE("int8 and uint8 tensors") {
        const Tensor q(xt::xarray<std::int8_t>{-128, 0, 127});
        CHECK(q.dtype() == Dtype::int8);
        CHECK(to_string(q).find("-128,    0,  127") != std::string::npos);
        const Tensor u = full({2}, 255.0, Dtype::uint8);
        CHECK(u.values<std::uint8_t>() == xt::xarray<std::uint8_t>{255, 255});
        CHECK_THROWS_WITH_AS(full({1}, 256.0, Dtype::uint8), doctest::Contains("not representable as uint8"),
                             value_error);
        CHECK_THROWS_WITH_AS(full({1}, -129.0, Dtype::int8), doctest::Contains("not representable as int8"),
                             value_error);
        CHECK(to_dtype(q, Dtype::float32).values<float>() == xt::xarray<float>{-128.0f, 0.0f, 127.0f});
        CHECK_THROWS_AS(Tensor(q).requires_grad_(), value_error);
        CHECK(reshape(q, {3, 1}).shape() == Shape{3, 1});
    }
}

#include <cmath>

#include "testing.hpp"

using namespace xgrad;

TEST_SUITE("conv layers") {
    TEST_CASE("conv2d parameters and forward") {
        Generator generator(1);
        nn::Conv2d layer({.in_channels = 3, .out_channels = 8, .kernel = {3, 2}, .padding = {1, 0}},
                         generator);
        const auto named = layer.named_parameters();
        REQUIRE(named.size() == 2);
        CHECK(named[0].first == "weight");
        CHECK(named[0].second.shape() == Shape{8, 3, 3, 2});
        CHECK(named[1].first == "bias");
        CHECK(named[1].second.shape() == Shape{8});
        CHECK(layer.weight.requires_grad());

        const Tensor x = uniform({2, 3, 6, 5}, -1, 1, generator);
        const Tensor y = layer(x);
        CHECK(y.shape() == Shape{2, 8, 6, 4});
        CHECK(y.values<float>() ==
              conv2d(x, layer.weight, layer.bias, {.padding = {1, 0}}).values<float>());
        CHECK(layer.describe() ==
              "Conv2d(in=3, out=8, kernel=(3, 2), stride=(1, 1), padding=(1, 0), dilation=(1, 1), "
              "bias=true)");
    }

    TEST_CASE("conv2d without bias, with stride and dilation") {
        Generator generator(2);
        nn::Conv2d layer({.in_channels = 2,
                          .out_channels = 4,
                          .kernel = {3, 3},
                          .stride = {2, 1},
                          .padding = {2, 2},
                          .dilation = {2, 2},
                          .bias = false,
                          .dtype = Dtype::float64},
                         generator);
        CHECK_FALSE(layer.bias.defined());
        CHECK(layer.parameters().size() == 1);
        CHECK(layer.weight.dtype() == Dtype::float64);
        const Tensor y = layer(uniform({1, 2, 9, 7}, -1, 1, generator, Dtype::float64));
        CHECK(y.shape() == Shape{1, 4, 5, 7});
    }

    TEST_CASE("conv2d initialisation bounds") {
        Generator generator(3);
        const std::size_t in = 16;
        const std::size_t out = 32;
        nn::Conv2d kaiming({.in_channels = in, .out_channels = out, .kernel = {3, 3}}, generator);
        nn::Conv2d xavier({.in_channels = in,
                           .out_channels = out,
                           .kernel = {3, 3},
                           .init = nn::Init::xavier_uniform},
                          generator);
        const double fan_in = in * 9.0;
        const double fan_out = out * 9.0;
        const double kaiming_bound = std::sqrt(6.0 / fan_in);
        const double xavier_bound = std::sqrt(6.0 / (fan_in + fan_out));
        CHECK(max(abs(kaiming.weight)).item() <= kaiming_bound);
        CHECK(max(abs(kaiming.weight)).item() > 0.95 * kaiming_bound);
        CHECK(max(abs(xavier.weight)).item() <= xavier_bound);
        CHECK(max(abs(xavier.weight)).item() > 0.95 * xavier_bound);
        CHECK(max(abs(kaiming.bias)).item() <= 1.0 / std::sqrt(fan_in));
    }

    TEST_CASE("conv2d is deterministic for a seed") {
        const nn::Conv2dOptions options{.in_channels = 2, .out_channels = 3, .kernel = {3, 3}};
        Generator a(9);
        Generator b(9);
        Generator c(10);
        const nn::Conv2d first(options, a);
        const nn::Conv2d second(options, b);
        const nn::Conv2d third(options, c);
        CHECK(first.weight.values<float>() == second.weight.values<float>());
        CHECK(first.bias.values<float>() == second.bias.values<float>());
        CHECK(first.weight.values<float>() != third.weight.values<float>());
        manual_seed(5);
        const nn::Conv2d from_default(options);
        manual_seed(5);
        const nn::Conv2d again(options);
        CHECK(from_default.weight.values<float>() == again.weight.values<float>());
    }

    TEST_CASE("conv2d rejects bad options") {
        CHECK_THROWS_WITH_AS(
            nn::Conv2d({.in_channels = 0, .out_channels = 3, .kernel = {3, 3}}),
            doctest::Contains("Conv2d: in_channels and out_channels must be positive"),
            value_error);
        CHECK_THROWS_WITH_AS(nn::Conv2d({.in_channels = 1, .out_channels = 3}),
                             doctest::Contains("Conv2d: kernel size must be positive, got (0, 0)"),
                             value_error);
        CHECK_THROWS_WITH_AS(
            nn::Conv2d({.in_channels = 1, .out_channels = 3, .kernel = {3, 3}, .stride = {1, 0}}),
            doctest::Contains("Conv2d: stride must be positive, got (1, 0)"), value_error);
        CHECK_THROWS_WITH_AS(
            nn::Conv2d(
                {.in_channels = 1, .out_channels = 3, .kernel = {3, 3}, .dtype = Dtype::int64}),
            doctest::Contains("Conv2d: dtype must be float32 or float64, got int64"), value_error);
        nn::Conv2d float32_layer({.in_channels = 1, .out_channels = 3, .kernel = {3, 3}});
        CHECK_THROWS_WITH_AS(float32_layer(zeros({1, 1, 5, 5}, Dtype::float64)),
                             doctest::Contains("Conv2d: the input is float64 but the layer's weight "
                                               "is float32"),
                             value_error);
    }

    TEST_CASE("pooling modules match the ops") {
        Generator generator(4);
        const Tensor x = uniform({2, 3, 7, 6}, -1, 1, generator);
        nn::MaxPool2d max_pool({.kernel = {2, 2}});
        nn::AvgPool2d avg_pool({.kernel = {3, 3},
                                .stride = Size2d{2, 1},
                                .padding = {1, 1},
                                .count_include_pad = false});
        nn::GlobalAvgPool2d global_pool;
        CHECK(max_pool(x).values<float>() == max_pool2d(x, {.kernel = {2, 2}}).values<float>());
        CHECK(avg_pool(x).values<float>() == avg_pool2d(x, {.kernel = {3, 3},
                                                            .stride = Size2d{2, 1},
                                                            .padding = {1, 1},
                                                            .count_include_pad = false})
                                                 .values<float>());
        CHECK(global_pool(x).shape() == Shape{2, 3});
        CHECK(global_pool(x).values<float>() == global_avg_pool2d(x).values<float>());
        CHECK(max_pool.parameters().empty());
        CHECK(max_pool.describe() == "MaxPool2d(kernel=(2, 2), stride=(2, 2), padding=(0, 0))");
        CHECK(avg_pool.describe() ==
              "AvgPool2d(kernel=(3, 3), stride=(2, 1), padding=(1, 1), count_include_pad=false)");
        CHECK(global_pool.describe() == "GlobalAvgPool2d()");
    }

    TEST_CASE("pooling modules reject bad options") {
        CHECK_THROWS_WITH_AS(nn::MaxPool2d({.kernel = {2, 2}, .padding = {2, 2}}),
                             doctest::Contains("MaxPool2d: padding (2, 2) must be at most half"),
                             value_error);
        CHECK_THROWS_WITH_AS(nn::AvgPool2d({.kernel = {0, 2}}),
                             doctest::Contains("AvgPool2d: kernel size must be positive"),
                             value_error);
    }

    TEST_CASE("small CNN in sequential trains a step") {
        Generator generator(5);
        nn::Sequential model{
            std::make_shared<nn::Conv2d>(
                nn::Conv2dOptions{
                    .in_channels = 1, .out_channels = 4, .kernel = {3, 3}, .padding = {1, 1}},
                generator),
            std::make_shared<nn::ReLU>(),
            std::make_shared<nn::MaxPool2d>(MaxPool2dParams{.kernel = {2, 2}}),
            std::make_shared<nn::GlobalAvgPool2d>(), std::make_shared<nn::Linear>(4, 3, generator)};
        const Tensor x = uniform({5, 1, 8, 8}, -1, 1, generator);
        const Tensor y = model(x);
        CHECK(y.shape() == Shape{5, 3});
        sum(y).backward();
        for (const auto& entry : model.named_parameters()) {
            CAPTURE(entry.first);
            CHECK(entry.second.grad().defined());
            CHECK(entry.second.grad().shape() == entry.second.shape());
        }
        CHECK(model.named_parameters()[0].first == "0.weight");
    }
}

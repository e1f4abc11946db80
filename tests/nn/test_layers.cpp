#include <cmath>

#include "testing.hpp"

using namespace xgrad;

TEST_SUITE("layers") {
    TEST_CASE("linear shapes and forward") {
        Generator generator(3);
        nn::Linear layer(5, 2, generator);
        CHECK(layer.weight.shape() == Shape{2, 5});
        CHECK(layer.bias.shape() == Shape{2});
        const Tensor x = uniform({7, 5}, -1, 1, generator);
        const Tensor y = layer(x);
        CHECK(y.shape() == Shape{7, 2});
        CHECK(xt::allclose(y.values<float>(),
                           (matmul(x, transpose(layer.weight)) + layer.bias).values<float>()));
        nn::Linear no_bias(nn::LinearOptions{.in_features = 5, .out_features = 2, .bias = false},
                           generator);
        CHECK_FALSE(no_bias.bias.defined());
        CHECK(no_bias.parameters().size() == 1);
    }

    TEST_CASE("linear initialisation bounds") {
        Generator generator(4);
        const std::size_t in = 200;
        const std::size_t out = 50;
        nn::Linear kaiming(in, out, generator);
        nn::Linear xavier(
            nn::LinearOptions{.in_features = in, .out_features = out, .init = nn::Init::xavier_uniform},
            generator);
        const double kaiming_bound = std::sqrt(6.0 / in);
        const double xavier_bound = std::sqrt(6.0 / (in + out));
        CHECK(max(abs(kaiming.weight)).item() <= kaiming_bound);
        CHECK(max(abs(kaiming.weight)).item() > 0.95 * kaiming_bound);
        CHECK(max(abs(xavier.weight)).item() <= xavier_bound);
        CHECK(max(abs(xavier.weight)).item() > 0.95 * xavier_bound);
        CHECK(max(abs(kaiming.bias)).item() <= 1.0 / std::sqrt(in));
    }

    TEST_CASE("linear is deterministic for a seed") {
        Generator a(9);
        Generator b(9);
        Generator c(10);
        const nn::Linear first(3, 4, a);
        const nn::Linear second(3, 4, b);
        const nn::Linear third(3, 4, c);
        CHECK(first.weight.values<float>() == second.weight.values<float>());
        CHECK(first.weight.values<float>() != third.weight.values<float>());
        manual_seed(5);
        const nn::Linear from_default(3, 4);
        manual_seed(5);
        const nn::Linear again(3, 4);
        CHECK(from_default.weight.values<float>() == again.weight.values<float>());
    }

    TEST_CASE("linear rejects bad options") {
        CHECK_THROWS_WITH_AS(nn::Linear(0, 3), doctest::Contains("Linear: in_features and out_features must be positive"),
                             value_error);
    }

    TEST_CASE("dropout in training and eval") {
        Generator generator(11);
        nn::Dropout dropout(0.25, generator);
        const Tensor x = ones({100, 100});
        const Tensor y = dropout(x);
        const xt::xarray<float>& values = y.values<float>();
        std::size_t dropped = 0;
        for (float value : values) {
            if (value == 0.0f) {
                ++dropped;
            } else {
                CHECK(value == doctest::Approx(1.0 / 0.75));
            }
        }
        CHECK(static_cast<double>(dropped) / values.size() == doctest::Approx(0.25).epsilon(0.05));
        dropout.eval();
        CHECK(dropout(x).id() == x.id());
        CHECK(nn::Dropout(1.0)(x).values<float>() == xt::zeros<float>({100, 100}));
        CHECK_THROWS_WITH_AS(nn::Dropout(1.5), doctest::Contains("Dropout: p must be in [0, 1]"),
                             value_error);
    }

    TEST_CASE("dropout refuses capture in training mode only") {
        Generator generator(14);
        nn::Dropout dropout(0.5, generator);
        const Tensor x = ones({8});
        CHECK_THROWS_WITH_AS(capture(dropout, x), doctest::Contains("freeze one dropout mask"),
                             not_implemented);
        dropout.eval();
        Graph graph = capture(dropout, x);
        CHECK(graph.forward({x})[0].values<float>() == x.values<float>());
    }

    TEST_CASE("dropout gradient follows the mask") {
        Generator generator(12);
        nn::Dropout dropout(0.5, generator);
        Tensor x = ones({50}, Dtype::float64);
        x.requires_grad_(true);
        const Tensor y = dropout(x);
        sum(y).backward();
        CHECK(x.grad().values<double>() == y.values<double>());
    }

    TEST_CASE("dropout masks repeat for a seed") {
        Generator a(13);
        Generator b(13);
        nn::Dropout first(0.5, a);
        nn::Dropout second(0.5, b);
        const Tensor x = ones({64});
        CHECK(first(x).values<float>() == second(x).values<float>());
    }

    TEST_CASE("activation modules match the ops") {
        Generator generator(14);
        const Tensor x = uniform({3, 4}, -2, 2, generator);
        CHECK(nn::ReLU()(x).values<float>() == relu(x).values<float>());
        CHECK(nn::Tanh()(x).values<float>() == tanh(x).values<float>());
        CHECK(nn::Sigmoid()(x).values<float>() == sigmoid(x).values<float>());
        CHECK(nn::LeakyReLU(0.2)(x).values<float>() == leaky_relu(x, 0.2).values<float>());
        CHECK(nn::GELU(true)(x).values<float>() == gelu(x, true).values<float>());
        CHECK(nn::Softmax(0)(x).values<float>() == softmax(x, 0).values<float>());
        CHECK(nn::LogSoftmax()(x).values<float>() == log_softmax(x).values<float>());
        CHECK(nn::Flatten()(zeros({2, 3, 4})).shape() == Shape{2, 12});
    }

    TEST_CASE("sequential runs children in order") {
        Generator generator(15);
        auto first = std::make_shared<nn::Linear>(3, 4, generator);
        auto second = std::make_shared<nn::Linear>(4, 2, generator);
        nn::Sequential model{first, std::make_shared<nn::Tanh>(), second};
        const Tensor x = uniform({5, 3}, -1, 1, generator);
        CHECK(model(x).values<float>() == (*second)(tanh((*first)(x))).values<float>());
        CHECK(model.size() == 3);
        CHECK(&model[2] == second.get());
        CHECK_THROWS_WITH_AS(model[3], doctest::Contains("Sequential: index 3 is out of range"),
                             value_error);
    }

    TEST_CASE("loss modules match the ops") {
        const Tensor prediction(xt::xarray<double>{{1.0, 2.0}, {0.5, -1.0}});
        const Tensor target(xt::xarray<double>{{0.0, 2.0}, {1.0, 1.0}});
        CHECK(nn::MSELoss()(prediction, target).item() == mse_loss(prediction, target).item());
        CHECK(nn::MSELoss(Reduction::sum)(prediction, target).item() ==
              mse_loss(prediction, target, Reduction::sum).item());
        const Tensor labels(xt::xarray<std::int64_t>{1, 0});
        CHECK(nn::CrossEntropyLoss()(prediction, labels).item() == cross_entropy(prediction, labels).item());
        CHECK(nn::BCEWithLogitsLoss()(prediction, target).item() ==
              binary_cross_entropy_with_logits(prediction, target).item());
        CHECK(nn::CrossEntropyLoss(Reduction::none).describe() == "CrossEntropyLoss(reduction=none)");
    }
}

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::all_close;
using xgrad::testing::values;

namespace {

struct ScratchDir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("xgrad-batchnorm-test-" + std::to_string(::getpid()));
    ScratchDir() { std::filesystem::create_directories(path); }
    ~ScratchDir() { std::filesystem::remove_all(path); }
};

nn::BatchNormOptions float64_options(std::size_t num_features) {
    return {.num_features = num_features, .dtype = Dtype::float64};
}

Tensor random_batch(const Shape& shape, std::uint64_t seed) {
    Generator generator(seed);
    return uniform(shape, -2.0, 3.0, generator, Dtype::float64);
}

// A batch of shape (n, 1): one feature per example.
Tensor column(std::initializer_list<double> entries) {
    xt::xarray<double> result(Shape{entries.size(), 1});
    std::copy(entries.begin(), entries.end(), result.begin());
    return Tensor(std::move(result));
}

std::int64_t batches_tracked(const nn::BatchNorm& layer) {
    return layer.num_batches_tracked.values<std::int64_t>()();
}

// Sets gamma and beta, so that tests do not run with gamma = 1 and beta = 0 only.
void set_affine(nn::BatchNorm& layer, const xt::xarray<double>& gamma,
                const xt::xarray<double>& beta) {
    NoGradGuard no_grad;
    layer.weight.mutable_values<double>() = gamma;
    layer.bias.mutable_values<double>() = beta;
}

}  // namespace

TEST_SUITE("batchnorm") {
    TEST_CASE("batchnorm registers parameters and buffers") {
        nn::BatchNorm2d layer(3);
        const nn::NamedTensors state = layer.state_dict();
        REQUIRE(state.size() == 5);
        CHECK(state[0].first == "weight");
        CHECK(state[1].first == "bias");
        CHECK(state[2].first == "running_mean");
        CHECK(state[3].first == "running_var");
        CHECK(state[4].first == "num_batches_tracked");
        CHECK(layer.parameters().size() == 2);
        CHECK(layer.weight.values<float>() == xt::xarray<float>{1.0f, 1.0f, 1.0f});
        CHECK(layer.bias.values<float>() == xt::xarray<float>{0.0f, 0.0f, 0.0f});
        CHECK(layer.running_mean.values<float>() == xt::xarray<float>{0.0f, 0.0f, 0.0f});
        CHECK(layer.running_var.values<float>() == xt::xarray<float>{1.0f, 1.0f, 1.0f});
        CHECK(layer.num_batches_tracked.dtype() == Dtype::int64);
        CHECK(layer.num_batches_tracked.shape() == Shape{});
        CHECK(batches_tracked(layer) == 0);
        CHECK(layer.describe() ==
              "BatchNorm2d(num_features=3, eps=1e-05, momentum=0.1, affine=true, "
              "track_running_stats=true)");
        CHECK(nn::BatchNorm1d({.num_features = 2, .momentum = std::nullopt, .affine = false})
                  .describe() ==
              "BatchNorm1d(num_features=2, eps=1e-05, momentum=none, affine=false, "
              "track_running_stats=true)");
    }

    TEST_CASE("batchnorm training mode uses batch statistics") {
        nn::BatchNorm1d layer(float64_options(3));
        set_affine(layer, {0.5, 2.0, -1.0}, {0.1, 0.2, 0.3});
        for (const Shape& shape : {Shape{6, 3}, Shape{4, 3, 5}}) {
            CAPTURE(shape_string(shape));
            const Tensor x = random_batch(shape, 1);
            CHECK(values(layer(x)) == values(batch_norm(x, layer.weight, layer.bias)));
        }
        nn::BatchNorm2d images(float64_options(2));
        const Tensor x = random_batch({3, 2, 4, 5}, 2);
        CHECK(values(images(x)) == values(batch_norm(x, images.weight, images.bias)));
    }

    TEST_CASE("batchnorm running statistics after two steps") {
        nn::BatchNorm1d layer(float64_options(2));
        const double momentum = 0.1;

        // Step 1: channel 0 contains {1, 3, 5}, with mean 3, squared
        // deviations 4 + 0 + 4 and unbiased variance 8 / 2 = 4. Channel 1
        // contains {2, 6, 10}, with mean 6 and unbiased variance 32 / 2 = 16.
        layer(Tensor(xt::xarray<double>{{1.0, 2.0}, {3.0, 6.0}, {5.0, 10.0}}));
        const double mean1[] = {3.0, 6.0};
        const double var1[] = {4.0, 16.0};
        // Step 2: channel 0 contains {0, 2}, with mean 1 and unbiased variance
        // 2 / 1. Channel 1 contains {1, -1}, with mean 0 and unbiased variance 2 / 1.
        layer(Tensor(xt::xarray<double>{{0.0, 1.0}, {2.0, -1.0}}));
        const double mean2[] = {1.0, 0.0};
        const double var2[] = {2.0, 2.0};

        for (std::size_t c = 0; c < 2; ++c) {
            CAPTURE(c);
            const double running_mean1 = (1 - momentum) * 0.0 + momentum * mean1[c];
            const double running_var1 = (1 - momentum) * 1.0 + momentum * var1[c];
            const double running_mean2 = (1 - momentum) * running_mean1 + momentum * mean2[c];
            const double running_var2 = (1 - momentum) * running_var1 + momentum * var2[c];
            CHECK(values(layer.running_mean)(c) == doctest::Approx(running_mean2).epsilon(1e-14));
            CHECK(values(layer.running_var)(c) == doctest::Approx(running_var2).epsilon(1e-14));
        }
        // The same numbers written out: (0.37, 0.54) and (1.37, 2.45).
        CHECK(all_close(values(layer.running_mean), xt::xarray<double>{0.37, 0.54}, 1e-14));
        CHECK(all_close(values(layer.running_var), xt::xarray<double>{1.37, 2.45}, 1e-14));
        CHECK(batches_tracked(layer) == 2);
    }

    TEST_CASE("batchnorm2d unbiased variance counts every pixel") {
        // One channel, M = 2 * 2 * 2 = 8 values alternating 1 and 3: mean 2,
        // biased variance 1, unbiased variance 8 / 7.
        nn::BatchNorm2d layer(float64_options(1));
        const Tensor x(xt::xarray<double>{{{{1.0, 3.0}, {1.0, 3.0}}}, {{{1.0, 3.0}, {1.0, 3.0}}}});
        layer(x);
        CHECK(values(layer.running_mean)(0) == doctest::Approx(0.1 * 2.0).epsilon(1e-14));
        CHECK(values(layer.running_var)(0) ==
              doctest::Approx(0.9 + 0.1 * 8.0 / 7.0).epsilon(1e-14));
    }

    TEST_CASE("batchnorm1d on sequences counts every position") {
        // Shape (2, 1, 3): M = 6 values {0, 1, 2, 3, 4, 5}, mean 2.5, squared
        // deviations sum to 17.5, unbiased variance 17.5 / 5 = 3.5.
        nn::BatchNorm1d layer(float64_options(1));
        layer(Tensor(xt::xarray<double>{{{0.0, 1.0, 2.0}}, {{3.0, 4.0, 5.0}}}));
        CHECK(values(layer.running_mean)(0) == doctest::Approx(0.25).epsilon(1e-14));
        CHECK(values(layer.running_var)(0) == doctest::Approx(0.9 + 0.35).epsilon(1e-14));
    }

    TEST_CASE("batchnorm momentum none averages every batch") {
        nn::BatchNormOptions options = float64_options(1);
        options.momentum = std::nullopt;
        nn::BatchNorm1d layer(options);
        // The batch means are 2, 10 and 0, the unbiased variances 2, 8 and 0.5.
        layer(column({1.0, 3.0}));
        layer(column({8.0, 12.0}));
        layer(column({-0.5, 0.5}));
        CHECK(values(layer.running_mean)(0) == doctest::Approx(12.0 / 3.0).epsilon(1e-14));
        CHECK(values(layer.running_var)(0) == doctest::Approx(10.5 / 3.0).epsilon(1e-14));
        CHECK(batches_tracked(layer) == 3);
    }

    TEST_CASE("batchnorm eval mode uses running statistics") {
        nn::BatchNorm1d layer(float64_options(2));
        set_affine(layer, {2.0, 0.5}, {1.0, -1.0});
        layer(random_batch({8, 2}, 3));
        layer(random_batch({8, 2}, 4));
        layer.eval();
        const auto running_mean = values(layer.running_mean);
        const auto running_var = values(layer.running_var);

        const Tensor x(xt::xarray<double>{{0.5, -1.0}});
        const Tensor y = layer(x);
        for (std::size_t c = 0; c < 2; ++c) {
            CAPTURE(c);
            const double gamma = c == 0 ? 2.0 : 0.5;
            const double beta = c == 0 ? 1.0 : -1.0;
            const double expected =
                (values(x)(0, c) - running_mean(c)) / std::sqrt(running_var(c) + 1e-5) * gamma +
                beta;
            CHECK(values(y)(0, c) == doctest::Approx(expected).epsilon(1e-14));
        }
        // Eval mode changes no statistics, and a single example is fine.
        CHECK(values(layer.running_mean) == running_mean);
        CHECK(values(layer.running_var) == running_var);
        CHECK(batches_tracked(layer) == 2);
    }

    TEST_CASE("batchnorm updates are not recorded") {
        nn::BatchNorm2d layer(float64_options(2));
        Tensor x = random_batch({3, 2, 2, 2}, 5);
        x.requires_grad_(true);
        const Tensor weights = random_batch({3, 2, 2, 2}, 6);
        sum(layer(x) * weights).backward();
        CHECK_FALSE(layer.running_mean.requires_grad());
        CHECK_FALSE(layer.running_var.requires_grad());
        CHECK(layer.running_mean.is_leaf());
        CHECK(layer.weight.grad().defined());

        // The gradients are those of the batch_norm op on its own.
        Tensor same_x = x.detach().clone().requires_grad_(true);
        sum(batch_norm(same_x, layer.weight.detach(), layer.bias.detach()) * weights).backward();
        CHECK(all_close(values(x.grad()), values(same_x.grad()), 1e-15));

        // Training under NoGradGuard still updates the statistics, as in PyTorch.
        NoGradGuard no_grad;
        layer(x);
        CHECK(batches_tracked(layer) == 2);
    }

    TEST_CASE("batchnorm without affine parameters") {
        nn::BatchNormOptions options = float64_options(3);
        options.affine = false;
        nn::BatchNorm1d layer(options);
        CHECK(layer.parameters().empty());
        CHECK_FALSE(layer.weight.defined());
        CHECK(layer.state_dict().size() == 3);
        const Tensor x = random_batch({5, 3}, 7);
        CHECK(values(layer(x)) == values(batch_norm(x)));
        layer.eval();
        CHECK(values(layer(x)) ==
              values(batch_norm_inference(x, layer.running_mean, layer.running_var)));
    }

    TEST_CASE("batchnorm without running statistics") {
        nn::BatchNormOptions options = float64_options(3);
        options.track_running_stats = false;
        nn::BatchNorm1d layer(options);
        CHECK(layer.named_buffers().empty());
        CHECK_FALSE(layer.running_mean.defined());
        const Tensor x = random_batch({5, 3}, 8);
        const Tensor training = layer(x);
        layer.eval();
        CHECK(values(layer(x)) == values(training));
        CHECK(values(training) == values(batch_norm(x, layer.weight, layer.bias)));
    }

    TEST_CASE("batchnorm float32") {
        nn::BatchNorm2d layer(4);
        Generator generator(9);
        const Tensor x = uniform({2, 4, 3, 3}, -1.0, 1.0, generator);
        const Tensor y = layer(x);
        CHECK(y.dtype() == Dtype::float32);
        CHECK(layer.running_mean.dtype() == Dtype::float32);
        CHECK(all_close(y.to_xarray<double>(), values(batch_norm(to_dtype(x, Dtype::float64))),
                        1e-5));
    }

    TEST_CASE("batchnorm errors") {
        nn::BatchNorm1d features(4);
        nn::BatchNorm2d images(4);
        CHECK_THROWS_WITH_AS(features(zeros({2, 4, 3, 3})),
                             doctest::Contains("BatchNorm1d: expected an input of shape (N, C) or "
                                               "(N, C, L), got shape (2, 4, 3, 3)"),
                             shape_error);
        CHECK_THROWS_WITH_AS(
            images(zeros({2, 4})),
            doctest::Contains("BatchNorm2d: expected an input of shape (N, C, H, W), "
                              "got shape (2, 4)"),
            shape_error);
        CHECK_THROWS_WITH_AS(images(zeros({2, 3, 5, 5})),
                             doctest::Contains("BatchNorm2d: the input of shape (2, 3, 5, 5) has 3 "
                                               "channels along axis 1 but num_features is 4"),
                             shape_error);
        CHECK_THROWS_WITH_AS(features(zeros({2, 4}, Dtype::float64)),
                             doctest::Contains("BatchNorm1d: the input is float64 but the layer's "
                                               "parameters and buffers are float32"),
                             value_error);
        CHECK_THROWS_WITH_AS(
            features(zeros({1, 4})),
            doctest::Contains("BatchNorm1d: expected more than 1 value per channel"), value_error);
        CHECK_THROWS_WITH_AS(features(Tensor()), doctest::Contains("BatchNorm1d"), value_error);
        CHECK(batches_tracked(features) == 0);
        features.eval();
        CHECK(features(zeros({1, 4})).shape() == Shape{1, 4});

        CHECK_THROWS_WITH_AS(nn::BatchNorm2d(0),
                             doctest::Contains("BatchNorm2d: num_features must be positive"),
                             value_error);
        CHECK_THROWS_WITH_AS(nn::BatchNorm1d({.num_features = 2, .momentum = 1.5}),
                             doctest::Contains("BatchNorm1d: momentum must be in [0, 1]"),
                             value_error);
        CHECK_THROWS_WITH_AS(
            nn::BatchNorm1d({.num_features = 2, .eps = -1.0}),
            doctest::Contains("BatchNorm1d: eps must be a finite non-negative number"),
            value_error);
        CHECK_THROWS_WITH_AS(nn::BatchNorm1d({.num_features = 2, .dtype = Dtype::int64}),
                             doctest::Contains("BatchNorm1d: dtype must be float32 or float64"),
                             value_error);
    }

    TEST_CASE("batchnorm checkpoint keeps the buffers") {
        ScratchDir dir;
        nn::Sequential model{std::make_shared<nn::Linear>(3, 4),
                             std::make_shared<nn::BatchNorm1d>(4)};
        Generator generator(10);
        for (int step = 0; step < 3; ++step) {
            model(uniform({6, 3}, -1.0, 1.0, generator));
        }
        save_model(model, dir.path / "model.npz");

        nn::Sequential restored{std::make_shared<nn::Linear>(3, 4),
                                std::make_shared<nn::BatchNorm1d>(4)};
        load_model(restored, dir.path / "model.npz");
        const auto& layer = dynamic_cast<const nn::BatchNorm1d&>(*model.named_children()[1].second);
        const auto& copy =
            dynamic_cast<const nn::BatchNorm1d&>(*restored.named_children()[1].second);
        CHECK(copy.running_mean.values<float>() == layer.running_mean.values<float>());
        CHECK(copy.running_var.values<float>() == layer.running_var.values<float>());
        CHECK(batches_tracked(copy) == 3);
        CHECK(copy.running_mean.values<float>() != xt::zeros<float>({4}));

        model.eval();
        restored.eval();
        const Tensor x = uniform({5, 3}, -1.0, 1.0, generator);
        CHECK(restored(x).values<float>() == model(x).values<float>());
    }

    TEST_CASE("batchnorm replayed graph matches eager gradients") {
        Generator generator(11);
        auto model =
            std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                std::make_shared<nn::Linear>(
                    nn::LinearOptions{.in_features = 5, .out_features = 4, .dtype = Dtype::float64},
                    generator),
                std::make_shared<nn::BatchNorm1d>(float64_options(4)),
                std::make_shared<nn::ReLU>()});
        const Tensor labels(xt::xarray<std::int64_t>{0, 3, 1, 2, 2, 0});
        auto loss_of = [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{cross_entropy((*model)(in[0]), in[1])};
        };
        Graph graph = capture(loss_of, {random_batch({6, 5}, 12), labels}, model.get());
        const auto& layer =
            dynamic_cast<const nn::BatchNorm1d&>(*model->named_children()[1].second);
        const std::int64_t tracked = batches_tracked(layer);

        const Tensor x = random_batch({6, 5}, 13);
        model->zero_grad();
        const Tensor replayed = graph.forward({x, labels})[0];
        graph.backward();
        std::vector<xt::xarray<double>> replay_grads;
        for (const Tensor& parameter : model->parameters()) {
            replay_grads.push_back(values(parameter.grad()));
        }
        // Replay normalizes with the new batch's statistics, but the running
        // statistics are updated only by eager calls.
        CHECK(batches_tracked(layer) == tracked);

        model->zero_grad();
        const Tensor eager = loss_of({x, labels})[0];
        eager.backward();
        CHECK(replayed.item() == doctest::Approx(eager.item()).epsilon(1e-14));
        const auto parameters = model->parameters();
        for (std::size_t i = 0; i < parameters.size(); ++i) {
            CAPTURE(i);
            CHECK(all_close(replay_grads[i], values(parameters[i].grad()), 1e-12));
        }
    }
}

#include <memory>

#include <xtensor/xview.hpp>

#include "testing.hpp"

using namespace xgrad;
namespace tf = xgrad::transforms;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed, double low = -1.0, double high = 1.0) {
    Generator generator(seed);
    return uniform(shape, low, high, generator, Dtype::float64);
}

// conv (3 -> 4 channels, 3x3, padding 1) and batch norm in float64, with
// running statistics from three training steps and gamma, beta away from
// their initial 1 and 0, so that every term of the fold matters.
std::shared_ptr<nn::Sequential> conv_batch_norm(bool conv_bias, bool affine) {
    Generator generator(3);
    auto conv = std::make_shared<nn::Conv2d>(
        nn::Conv2dOptions{.in_channels = 3, .out_channels = 4, .kernel = {3, 3}, .padding = {1, 1},
                          .bias = conv_bias, .dtype = Dtype::float64},
        generator);
    auto norm = std::make_shared<nn::BatchNorm2d>(
        nn::BatchNormOptions{.num_features = 4, .affine = affine, .dtype = Dtype::float64});
    auto model = std::make_shared<nn::Sequential>(
        std::initializer_list<std::shared_ptr<nn::Module>>{conv, norm, std::make_shared<nn::ReLU>()});
    NoGradGuard no_grad;
    for (std::uint64_t step = 0; step < 3; ++step) {
        (*model)(random_tensor({5, 3, 6, 6}, 10 + step, -1.0, 3.0));
    }
    if (affine) {
        norm->weight.mutable_values<double>() = xt::xarray<double>{0.5, -1.5, 2.0, 1.25};
        norm->bias.mutable_values<double>() = xt::xarray<double>{0.1, -0.2, 0.3, 0.0};
    }
    model->eval();
    return model;
}

std::size_t count_ops(const Graph& graph, const std::string& name) {
    std::size_t count = 0;
    for (const Node& node : graph.nodes()) {
        count += node.op->info.name == name ? 1 : 0;
    }
    return count;
}

// find_value() looks up parameters and buffers only; the fold adds constants.
xt::xarray<double> constant_named(const Graph& graph, const std::string& name) {
    for (const Value& value : graph.values()) {
        if (value.kind == ValueKind::constant && value.name == name) {
            return value.tensor.values<double>();
        }
    }
    FAIL("no constant named " << name);
    return {};
}

}  // namespace

TEST_SUITE("fold_batch_norm") {
    TEST_CASE("a folded pair computes what the pair computes") {
        for (const bool conv_bias : {false, true}) {
            for (const bool affine : {false, true}) {
                CAPTURE(conv_bias);
                CAPTURE(affine);
                const auto model = conv_batch_norm(conv_bias, affine);
                const Tensor x = random_tensor({2, 3, 6, 6}, 20);
                Graph graph = capture(*model, x);
                REQUIRE(count_ops(graph, "batch_norm_inference") == 1);

                Graph folded = tf::fold_batch_norm(graph);
                CHECK(count_ops(folded, "batch_norm_inference") == 0);
                CHECK(count_ops(folded, "conv2d") == 1);
                const xt::xarray<double> expected = graph.forward({x})[0].values<double>();
                const xt::xarray<double> actual = folded.forward({x})[0].values<double>();
                CHECK(xt::allclose(actual, expected, 1e-12, 1e-12));
            }
        }
    }

    TEST_CASE("the folded weight and bias follow the formula") {
        // One input channel, two output channels, a 1x1 kernel: W = (2, -1),
        // b = (0.5, 1). Statistics: mean (1, -2), var (3, 0.25), gamma
        // (2, 4), beta (0.5, -1), eps 1. Then s = gamma / sqrt(var + eps) =
        // (2 / 2, 4 / sqrt(1.25)) and
        //   W' = (1 * 2, -4 / sqrt(1.25)),
        //   b' = (1 * (0.5 - 1) + 0.5, 4 / sqrt(1.25) * (1 + 2) - 1).
        auto conv = std::make_shared<nn::Conv2d>(nn::Conv2dOptions{
            .in_channels = 1, .out_channels = 2, .kernel = {1, 1}, .dtype = Dtype::float64});
        auto norm = std::make_shared<nn::BatchNorm2d>(
            nn::BatchNormOptions{.num_features = 2, .eps = 1.0, .dtype = Dtype::float64});
        {
            NoGradGuard no_grad;
            xt::xarray<double> weight{2.0, -1.0};
            weight.reshape({2, 1, 1, 1});
            conv->weight.mutable_values<double>() = weight;
            conv->bias.mutable_values<double>() = xt::xarray<double>{0.5, 1.0};
            norm->running_mean.mutable_values<double>() = xt::xarray<double>{1.0, -2.0};
            norm->running_var.mutable_values<double>() = xt::xarray<double>{3.0, 0.25};
            norm->weight.mutable_values<double>() = xt::xarray<double>{2.0, 4.0};
            norm->bias.mutable_values<double>() = xt::xarray<double>{0.5, -1.0};
        }
        nn::Sequential model({conv, norm});
        model.eval();
        const Graph folded = tf::fold_batch_norm(capture(model, random_tensor({1, 1, 2, 2}, 1)));

        const double s1 = 4.0 / std::sqrt(1.25);
        const xt::xarray<double> weight = constant_named(folded, "0.weight.folded");
        const xt::xarray<double> bias = constant_named(folded, "0.weight.folded_bias");
        CHECK(weight.flat(0) == doctest::Approx(2.0).epsilon(1e-15));
        CHECK(weight.flat(1) == doctest::Approx(-s1).epsilon(1e-15));
        CHECK(bias(0) == doctest::Approx(0.0).epsilon(1e-15));
        CHECK(bias(1) == doctest::Approx(3.0 * s1 - 1.0).epsilon(1e-15));
    }

    TEST_CASE("a convolution whose output has another use keeps its batch norm") {
        const auto model = conv_batch_norm(true, true);
        const Tensor x = random_tensor({2, 3, 6, 6}, 21);
        Graph graph = capture(
            [&](const std::vector<Tensor>& in) {
                const Tensor features = (*model)[0](in[0]);
                return std::vector<Tensor>{(*model)[1](features), features};
            },
            {x}, model.get());
        const Graph folded = tf::fold_batch_norm(graph);
        CHECK(count_ops(folded, "batch_norm_inference") == 1);
        CHECK(count_ops(folded, "conv2d") == 1);
    }

    TEST_CASE("training-mode batch norm does not fold") {
        auto model = conv_batch_norm(false, true);
        model->train();
        const Graph graph = capture(*model, random_tensor({2, 3, 6, 6}, 22));
        const Graph folded = tf::fold_batch_norm(graph);
        CHECK(count_ops(folded, "batch_norm") == 1);
        CHECK(count_ops(folded, "conv2d") == 1);
    }
}

TEST_SUITE("conv pruning") {
    TEST_CASE("conv weights are found and pruned by channel") {
        // conv (3 -> 4), batch norm, ReLU, then a linear layer: conv_weights()
        // names only the convolution's weight.
        auto model = conv_batch_norm(false, true);
        model->push_back(std::make_shared<nn::Flatten>());
        Generator generator(5);
        model->push_back(std::make_shared<nn::Linear>(
            nn::LinearOptions{.in_features = 4 * 6 * 6, .out_features = 2, .dtype = Dtype::float64},
            generator));
        const Graph graph = capture(*model, random_tensor({2, 3, 6, 6}, 23));
        CHECK(tf::conv_weights(graph) == std::vector<std::string>{"0.weight"});
        CHECK(tf::linear_weights(graph) == std::vector<std::string>{"4.weight"});

        // Channel 2 gets the smallest L1 norm, so structured pruning of one
        // row masks exactly its 27 weights.
        {
            NoGradGuard no_grad;
            auto& conv = dynamic_cast<nn::Conv2d&>((*model)[0]);
            xt::xarray<double>& w = conv.weight.mutable_values<double>();
            xt::view(w, 2) *= 1e-3;
        }
        const Graph pruned = tf::prune(graph, {.method = tf::PruneMethod::structured_l1,
                                               .count = 1,
                                               .parameters = tf::conv_weights(graph)});
        const xt::xarray<double> mask =
            pruned.value(pruned.find_value("0.weight.mask")).tensor.values<double>();
        for (std::size_t channel = 0; channel < 4; ++channel) {
            CAPTURE(channel);
            CHECK(xt::sum(xt::view(mask, channel))() == (channel == 2 ? 0.0 : 27.0));
        }
        // The report covers every masked weight, the conv weight included.
        const std::vector<tf::LayerSparsity> report = tf::sparsity_report(pruned);
        REQUIRE(report.size() == 1);
        CHECK(report[0].name == "0.weight");
        CHECK(report[0].zeros == 27);
    }
}

#include <algorithm>
#include <memory>

#include "testing.hpp"

using namespace xgrad;
namespace tf = xgrad::transforms;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed, Dtype dtype = Dtype::float64) {
    Generator generator(seed);
    return uniform(shape, -1.0, 1.0, generator, dtype);
}

struct Widths {
    std::size_t first = 4;   // output channels of the first convolution
    std::size_t second = 6;  // of the second
};

// conv(2 -> first, no bias) - bn - relu - maxpool 2 - conv(first -> second,
// bias) - bn - relu - flatten - linear(second * 3 * 3 -> 5), in float64,
// for (N, 2, 6, 6) inputs. Module indices: 0 conv, 1 bn, 4 conv, 5 bn,
// 8 linear.
std::shared_ptr<nn::Sequential> small_cnn(Widths widths) {
    Generator generator(1);
    auto model = std::make_shared<nn::Sequential>();
    model->push_back(std::make_shared<nn::Conv2d>(
        nn::Conv2dOptions{.in_channels = 2, .out_channels = widths.first, .kernel = {3, 3},
                          .padding = {1, 1}, .bias = false, .dtype = Dtype::float64},
        generator));
    model->push_back(std::make_shared<nn::BatchNorm2d>(
        nn::BatchNormOptions{.num_features = widths.first, .dtype = Dtype::float64}));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::MaxPool2d>(MaxPool2dParams{.kernel = {2, 2}}));
    model->push_back(std::make_shared<nn::Conv2d>(
        nn::Conv2dOptions{.in_channels = widths.first, .out_channels = widths.second,
                          .kernel = {3, 3}, .padding = {1, 1}, .dtype = Dtype::float64},
        generator));
    model->push_back(std::make_shared<nn::BatchNorm2d>(
        nn::BatchNormOptions{.num_features = widths.second, .dtype = Dtype::float64}));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::Flatten>());
    model->push_back(std::make_shared<nn::Linear>(
        nn::LinearOptions{.in_features = widths.second * 9, .out_features = 5,
                          .dtype = Dtype::float64},
        generator));
    return model;
}

// Running statistics from a few training batches, and gamma and beta away
// from 1 and 0, so that every batch norm term matters in eval mode.
void settle(nn::Sequential& model) {
    NoGradGuard no_grad;
    for (std::uint64_t step = 0; step < 3; ++step) {
        model(random_tensor({4, 2, 6, 6}, 30 + step));
    }
    for (const auto& [name, tensor] : model.named_parameters()) {
        if (tensor.dim() == 1 && (name == "1.weight" || name == "5.weight")) {
            Tensor gamma = tensor;
            gamma.mutable_values<double>() += 0.25;
        } else if (tensor.dim() == 1 && (name == "1.bias" || name == "5.bias")) {
            Tensor beta = tensor;
            beta.mutable_values<double>() += 0.1;
        }
    }
    model.eval();
}

Tensor parameter(nn::Module& model, const std::string& name) {
    for (const auto& [key, tensor] : model.state_dict()) {
        if (key == name) {
            return tensor;
        }
    }
    FAIL("no tensor named " << name);
    return {};
}

// Sets channel c of a 1-D tensor, or row c of a weight, to `value`.
void set_channel(Tensor tensor, std::size_t c, double value) {
    NoGradGuard no_grad;
    xt::xarray<double>& values = tensor.mutable_values<double>();
    const std::size_t per_row = values.size() / values.shape()[0];
    std::fill(values.begin() + static_cast<std::ptrdiff_t>(c * per_row),
              values.begin() + static_cast<std::ptrdiff_t>((c + 1) * per_row), value);
}

const Shape& shape_of(const Graph& graph, const std::string& name) {
    return graph.value(graph.find_value(name)).shape;
}

const tf::LayerChannels& layer(const tf::ChannelRemoval& removal, const std::string& weight) {
    for (const tf::LayerChannels& entry : removal.layers) {
        if (entry.weight == weight) {
            return entry;
        }
    }
    FAIL("no layer " << weight);
    return removal.layers.front();
}

xt::xarray<double> output_of(Graph& graph, const Tensor& x) {
    return graph.forward({x})[0].values<double>();
}

// Indices of the zero rows of a mask.
std::vector<std::size_t> pruned_rows(const Graph& graph, const std::string& mask) {
    const xt::xarray<double> values = graph.value(graph.find_value(mask)).tensor.values<double>();
    const std::size_t per_row = values.size() / values.shape()[0];
    std::vector<std::size_t> rows;
    for (std::size_t r = 0; r < values.shape()[0]; ++r) {
        if (values.flat(r * per_row) == 0.0) {
            rows.push_back(r);
        }
    }
    return rows;
}

CapturedFunction loss_of(nn::Module& model, const Tensor& labels) {
    return [&model, labels](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{cross_entropy(model(in[0]), labels)};
    };
}

Tensor labels(std::size_t n) {
    xt::xarray<std::int64_t> values(Shape{n});
    for (std::size_t i = 0; i < n; ++i) {
        values(i) = static_cast<std::int64_t>(i % 5);
    }
    return Tensor(values);
}

}  // namespace

TEST_SUITE("channel pruning") {
    TEST_CASE("channel parameters of layers") {
        auto model = small_cnn({});
        const Graph graph = capture(*model, random_tensor({2, 2, 6, 6}, 1));
        CHECK(tf::channel_parameters(graph, {"0.weight"}) ==
              std::vector<std::string>{"1.weight", "1.bias"});
        CHECK(tf::channel_parameters(graph, {"4.weight", "8.weight"}) ==
              std::vector<std::string>{"4.bias", "5.weight", "5.bias", "8.bias"});
    }

    TEST_CASE("structured pruning masks the channel parameters") {
        auto model = small_cnn({});
        settle(*model);
        const Graph graph = capture(*model, random_tensor({2, 2, 6, 6}, 1));
        const Graph pruned = tf::prune(graph, {.method = tf::PruneMethod::structured_l1,
                                               .sparsity = 0.5,
                                               .parameters = {"0.weight", "4.weight"}});
        const std::vector<std::size_t> rows = pruned_rows(pruned, "4.weight.mask");
        REQUIRE(rows.size() == 3);
        for (const std::string name : {"4.bias", "5.weight", "5.bias"}) {
            CAPTURE(name);
            const xt::xarray<double> mask =
                pruned.value(pruned.find_value(name + ".mask")).tensor.values<double>();
            const xt::xarray<double> values =
                pruned.value(pruned.find_value(name)).tensor.values<double>();
            for (std::size_t c = 0; c < 6; ++c) {
                const bool is_pruned = std::find(rows.begin(), rows.end(), c) != rows.end();
                CHECK(mask(c) == (is_pruned ? 0.0 : 1.0));
                if (is_pruned) {
                    CHECK(values(c) == 0.0);
                }
            }
        }
        // The report lists the weights only.
        const std::vector<tf::LayerSparsity> report = tf::sparsity_report(pruned);
        REQUIRE(report.size() == 2);
        CHECK(report[0].name == "0.weight");
        CHECK(report[1].name == "4.weight");
        CHECK(report[1].zeros == 3 * 4 * 9);

        const Graph unlinked = tf::prune(graph, {.method = tf::PruneMethod::structured_l1,
                                                 .sparsity = 0.5,
                                                 .parameters = {"0.weight"},
                                                 .prune_channel_parameters = false});
        CHECK_THROWS_AS(unlinked.find_value("1.weight.mask"), value_error);
    }

    TEST_CASE("pruned channels stay zero in training") {
        // Batch norm in training mode maps an all-zero channel to beta, which
        // the optimizer moves away from zero unless it is masked too.
        for (const bool linked : {true, false}) {
            CAPTURE(linked);
            auto model = small_cnn({});
            settle(*model);  // beta = 0.1, so ReLU passes the pruned channels' gradient
            model->train();
            const Tensor x = random_tensor({4, 2, 6, 6}, 2);
            Graph graph = capture(loss_of(*model, labels(4)), {x}, model.get());
            optim::Adam optimizer(model->parameters(), {.lr = 0.05});
            graph = tf::prune(graph, {.method = tf::PruneMethod::structured_l1, .count = 2,
                                      .parameters = {"0.weight"},
                                      .prune_channel_parameters = linked},
                              &optimizer);
            std::size_t norm_output = 0;
            for (const Node& node : graph.nodes()) {
                if (node.op->info.name == std::string("batch_norm")) {
                    norm_output = node.output;
                    break;
                }
            }
            REQUIRE(norm_output != 0);
            for (int step = 0; step < 5; ++step) {
                graph.forward({x});
                optimizer.zero_grad();
                graph.backward();
                optimizer.step();
            }
            graph.forward({x});
            const xt::xarray<double> normalized = graph.value_tensor(norm_output).values<double>();
            const xt::xarray<double> beta = parameter(*model, "1.bias").values<double>();
            for (std::size_t c : pruned_rows(graph, "0.weight.mask")) {
                CAPTURE(c);
                std::size_t nonzero = 0;
                for (std::size_t n = 0; n < 4; ++n) {
                    for (std::size_t i = 0; i < 36; ++i) {
                        nonzero += normalized.flat((n * 4 + c) * 36 + i) != 0.0 ? 1 : 0;
                    }
                }
                if (linked) {
                    CHECK(nonzero == 0);
                    CHECK(beta(c) == 0.0);
                } else {
                    // The channel outputs beta, which training moved.
                    CHECK(beta(c) != 0.0);
                    CHECK(nonzero == 4 * 36);
                }
            }
        }
    }

    TEST_CASE("removal matches the masked graph") {
        auto model = small_cnn({});
        settle(*model);
        const Tensor x = random_tensor({3, 2, 6, 6}, 4);
        Graph pruned = tf::prune(capture(*model, x), {.method = tf::PruneMethod::structured_l1,
                                                      .sparsity = 0.5,
                                                      .parameters = {"0.weight", "4.weight"}});
        const xt::xarray<double> weight_before =
            pruned.value(pruned.find_value("4.weight")).tensor.values<double>();
        tf::ChannelRemoval removal = tf::remove_pruned_channels(pruned);

        CHECK(xt::allclose(output_of(removal.graph, x), output_of(pruned, x), 1e-12, 1e-12));
        const Graph& slim = removal.graph;
        CHECK(shape_of(slim, "0.weight") == Shape{2, 2, 3, 3});
        CHECK(shape_of(slim, "0.weight.mask") == Shape{2, 2, 3, 3});
        for (const std::string name : {"1.weight", "1.bias", "1.running_mean", "1.running_var"}) {
            CHECK(shape_of(slim, name) == Shape{2});
        }
        CHECK(shape_of(slim, "4.weight") == Shape{3, 2, 3, 3});
        CHECK(shape_of(slim, "4.bias") == Shape{3});
        CHECK(shape_of(slim, "5.running_var") == Shape{3});
        CHECK(shape_of(slim, "8.weight") == Shape{5, 27});
        CHECK(shape_of(slim, "8.bias") == Shape{5});
        // The input graph keeps its shapes.
        CHECK(shape_of(pruned, "8.weight") == Shape{5, 54});

        CHECK(layer(removal, "0.weight").before == 4);
        CHECK(layer(removal, "0.weight").after == 2);
        CHECK(layer(removal, "4.weight").after == 3);
        CHECK(layer(removal, "8.weight").after == 5);
        CHECK(layer(removal, "8.weight").kept_zero == 0);
        // Before: conv 72, bn 8, conv 216 + 6, bn 12, linear 270 + 5.
        // After: conv 36, bn 4, conv 54 + 3, bn 6, linear 135 + 5.
        CHECK(tf::parameter_count(pruned) == 589);
        CHECK(tf::parameter_count(slim) == 243);

        // The kept rows of the second convolution are the original's kept
        // rows without the removed input channels.
        const std::vector<std::size_t> removed_rows = pruned_rows(pruned, "4.weight.mask");
        const std::vector<std::size_t> removed_inputs = pruned_rows(pruned, "0.weight.mask");
        const xt::xarray<double> weight_after = slim.value(slim.find_value("4.weight")).tensor.values<double>();
        std::size_t row = 0;
        for (std::size_t r = 0; r < 6; ++r) {
            if (std::find(removed_rows.begin(), removed_rows.end(), r) != removed_rows.end()) {
                continue;
            }
            std::size_t column = 0;
            for (std::size_t c = 0; c < 4; ++c) {
                if (std::find(removed_inputs.begin(), removed_inputs.end(), c) != removed_inputs.end()) {
                    continue;
                }
                for (std::size_t k = 0; k < 9; ++k) {
                    CHECK(weight_after.flat((row * 2 + column) * 9 + k) ==
                          weight_before.flat((r * 4 + c) * 9 + k));
                }
                ++column;
            }
            ++row;
        }
    }

    TEST_CASE("channels with a nonzero constant stay") {
        // Channel by channel of the first convolution (zero weight rows, eval
        // mode): 0 keeps gamma and beta (beta != 0), 1 has gamma = beta = 0,
        // 2 has beta = 0 and a nonzero mean and gamma, 3 is not zero.
        auto model = small_cnn({});
        settle(*model);
        const Tensor weight = parameter(*model, "0.weight");
        for (std::size_t c : {0, 1, 2}) {
            set_channel(weight, c, 0.0);
        }
        set_channel(parameter(*model, "1.weight"), 1, 0.0);
        set_channel(parameter(*model, "1.bias"), 1, 0.0);
        set_channel(parameter(*model, "1.bias"), 2, 0.0);
        set_channel(parameter(*model, "1.running_mean"), 2, 0.5);
        // In the second convolution, a zero row with a nonzero bias.
        set_channel(parameter(*model, "4.weight"), 0, 0.0);
        set_channel(parameter(*model, "5.weight"), 0, 0.0);
        set_channel(parameter(*model, "5.bias"), 0, 0.0);
        set_channel(parameter(*model, "4.bias"), 0, 0.25);

        const Tensor x = random_tensor({3, 2, 6, 6}, 5);
        Graph graph = capture(*model, x);
        tf::ChannelRemoval removal = tf::remove_pruned_channels(graph);
        CHECK(xt::allclose(output_of(removal.graph, x), output_of(graph, x), 1e-12, 1e-12));

        const tf::LayerChannels& first = layer(removal, "0.weight");
        CHECK(first.after == 3);
        CHECK(first.kept_zero == 2);
        CHECK(first.reason.find("beta") != std::string::npos);
        CHECK(first.reason.find("mean and weight are nonzero") != std::string::npos);
        const tf::LayerChannels& second = layer(removal, "4.weight");
        CHECK(second.after == 6);
        CHECK(second.kept_zero == 1);
        CHECK(second.reason == "its bias is nonzero");
        const std::string table = tf::format_channel_report(removal.layers);
        CHECK(table.find("0.weight") != std::string::npos);
        CHECK(table.find("2 zero kept") != std::string::npos);
    }

    TEST_CASE("training batch norm needs beta = 0") {
        auto model = small_cnn({});
        const Tensor weight = parameter(*model, "0.weight");
        set_channel(weight, 3, 0.0);  // gamma stays 1, beta 0
        const Tensor x = random_tensor({3, 2, 6, 6}, 6);
        Graph graph = capture(*model, x);  // training mode: batch_norm
        tf::ChannelRemoval removal = tf::remove_pruned_channels(graph);
        CHECK(layer(removal, "0.weight").after == 3);
        CHECK(xt::allclose(output_of(removal.graph, x), output_of(graph, x), 1e-12, 1e-12));
    }

    TEST_CASE("untraceable paths keep channels") {
        Generator generator(2);
        auto conv = std::make_shared<nn::Conv2d>(
            nn::Conv2dOptions{.in_channels = 3, .out_channels = 3, .kernel = {1, 1},
                              .bias = false, .dtype = Dtype::float64},
            generator);
        set_channel(conv->weight, 1, 0.0);
        const Tensor x = random_tensor({1, 3, 2, 2}, 7);

        SUBCASE("graph output") {
            const tf::ChannelRemoval removal = tf::remove_pruned_channels(capture(*conv, x));
            CHECK(removal.layers.at(0).after == 3);
            CHECK(removal.layers.at(0).kept_zero == 1);
            CHECK(removal.layers.at(0).reason == "its output reaches a graph output");
        }
        SUBCASE("residual sum") {
            auto second = std::make_shared<nn::Conv2d>(
                nn::Conv2dOptions{.in_channels = 3, .out_channels = 2, .kernel = {1, 1},
                                  .dtype = Dtype::float64},
                generator);
            nn::Sequential model({conv, second});
            const Graph graph = capture(
                [&](const std::vector<Tensor>& in) {
                    return std::vector<Tensor>{(*second)(relu((*conv)(in[0])) + in[0])};
                },
                {x}, &model);
            const tf::ChannelRemoval removal = tf::remove_pruned_channels(graph);
            CHECK(removal.layers.size() == 2);
            CHECK(removal.layers.at(0).after == 3);
            CHECK(removal.layers.at(0).reason ==
                  "its output is read by add, which may not map a zero channel to zero");
        }
        SUBCASE("an op that moves zero") {
            auto second = std::make_shared<nn::Conv2d>(
                nn::Conv2dOptions{.in_channels = 3, .out_channels = 2, .kernel = {1, 1},
                                  .dtype = Dtype::float64},
                generator);
            nn::Sequential model({conv, std::make_shared<nn::Sigmoid>(), second});
            const tf::ChannelRemoval removal = tf::remove_pruned_channels(capture(model, x));
            CHECK(removal.layers.at(0).after == 3);
            CHECK(removal.layers.at(0).reason.find("sigmoid") != std::string::npos);
        }
    }

    TEST_CASE("a layer keeps one channel") {
        auto model = small_cnn({});
        settle(*model);
        const Tensor x = random_tensor({2, 2, 6, 6}, 8);
        Graph pruned = tf::prune(capture(*model, x), {.method = tf::PruneMethod::structured_l2,
                                                      .sparsity = 1.0,
                                                      .parameters = {"4.weight"}});
        tf::ChannelRemoval removal = tf::remove_pruned_channels(pruned);
        CHECK(layer(removal, "4.weight").after == 1);
        CHECK(layer(removal, "4.weight").kept_zero == 1);
        CHECK(shape_of(removal.graph, "8.weight") == Shape{5, 9});
        CHECK(xt::allclose(output_of(removal.graph, x), output_of(pruned, x), 1e-12, 1e-12));
    }

    TEST_CASE("only the named layers lose channels") {
        auto model = small_cnn({});
        settle(*model);
        Graph pruned = tf::prune(capture(*model, random_tensor({2, 2, 6, 6}, 9)),
                                 {.method = tf::PruneMethod::structured_l1, .sparsity = 0.5,
                                  .parameters = {"0.weight", "4.weight"}});
        const tf::ChannelRemoval removal = tf::remove_pruned_channels(pruned, {"4.weight"});
        CHECK(layer(removal, "0.weight").after == 4);
        CHECK(layer(removal, "0.weight").reason == "the layer is not among the named weights");
        CHECK(layer(removal, "4.weight").after == 3);
    }

    TEST_CASE("invalid layer names") {
        auto model = small_cnn({});
        const Graph graph = capture(*model, random_tensor({2, 2, 6, 6}, 10));
        CHECK_THROWS_WITH_AS(tf::remove_pruned_channels(graph, {"9.weight"}),
                             doctest::Contains("remove_pruned_channels: '9.weight' is not the weight"),
                             value_error);
        CHECK_THROWS_WITH_AS(tf::remove_pruned_channels(graph, {"1.weight"}),
                             doctest::Contains("0.weight, 4.weight, 8.weight"), value_error);
    }

    TEST_CASE("smaller graph trains and loads") {
        auto model = small_cnn({});
        settle(*model);
        const Tensor x = random_tensor({4, 2, 6, 6}, 11);
        Graph pruned = tf::prune(capture(loss_of(*model, labels(4)), {x}, model.get()),
                                 {.method = tf::PruneMethod::structured_l1, .sparsity = 0.5,
                                  .parameters = {"0.weight", "4.weight"}});
        tf::ChannelRemoval removal = tf::remove_pruned_channels(pruned);
        Graph& slim = removal.graph;
        CHECK(slim.forward({x})[0].item() == doctest::Approx(pruned.forward({x})[0].item()).epsilon(1e-12));

        // Gradients of the kept weights match the masked graph's.
        model->zero_grad();
        pruned.backward();
        slim.backward();
        const std::vector<std::size_t> kept_outputs = [&] {
            std::vector<std::size_t> rows;
            const std::vector<std::size_t> removed = pruned_rows(pruned, "0.weight.mask");
            for (std::size_t r = 0; r < 4; ++r) {
                if (std::find(removed.begin(), removed.end(), r) == removed.end()) {
                    rows.push_back(r);
                }
            }
            return rows;
        }();
        const xt::xarray<double> full = parameter(*model, "0.weight").grad().values<double>();
        const xt::xarray<double> sliced =
            slim.value(slim.find_value("0.weight")).tensor.grad().values<double>();
        for (std::size_t i = 0; i < kept_outputs.size(); ++i) {
            for (std::size_t k = 0; k < 18; ++k) {
                CHECK(sliced.flat(i * 18 + k) ==
                      doctest::Approx(full.flat(kept_outputs[i] * 18 + k)).epsilon(1e-10));
            }
        }

        // An optimizer over the graph's own parameters trains it.
        std::vector<Tensor> parameters;
        for (std::size_t id : slim.parameter_values()) {
            parameters.push_back(slim.value(id).tensor);
        }
        optim::SGD optimizer(parameters, {.lr = 0.1});
        const double first_loss = slim.forward({x})[0].item();
        for (int step = 0; step < 20; ++step) {
            slim.forward({x});
            optimizer.zero_grad();
            slim.backward();
            optimizer.step();
        }
        CHECK(slim.forward({x})[0].item() < first_loss);

        // A model of the report's widths loads the state and computes the
        // trained graph's loss in eager mode.
        CHECK(tf::graph_state_dict(slim).size() == 13);  // 9 parameters, 4 running statistics
        auto narrow = small_cnn({.first = layer(removal, "0.weight").after,
                                 .second = layer(removal, "4.weight").after});
        narrow->eval();
        tf::load_graph_state(*narrow, slim);
        CHECK(cross_entropy((*narrow)(x), labels(4)).item() ==
              doctest::Approx(slim.forward({x})[0].item()).epsilon(1e-12));

        auto wrong = small_cnn({});
        CHECK_THROWS_WITH_AS(tf::load_graph_state(*wrong, slim),
                             doctest::Contains("'0.weight' is float64 (2, 2, 3, 3) in the graph but float64 "
                                               "(4, 2, 3, 3) in the module"),
                             value_error);
    }

    TEST_CASE("fashion_cnn at half the channels") {
        // The model of examples/fashion_cnn: conv 1 -> 32, 32 -> 64, 64 -> 64,
        // each without bias and with batch norm and ReLU, max pooling after
        // the first two, then linear 3136 -> 128 -> 10.
        Generator generator(3);
        auto model = std::make_shared<nn::Sequential>();
        std::size_t in = 1;
        for (std::size_t block = 0; block < 3; ++block) {
            const std::size_t out = block == 0 ? 32 : 64;
            model->push_back(std::make_shared<nn::Conv2d>(
                nn::Conv2dOptions{.in_channels = in, .out_channels = out, .kernel = {3, 3},
                                  .padding = {1, 1}, .bias = false},
                generator));
            model->push_back(std::make_shared<nn::BatchNorm2d>(out));
            model->push_back(std::make_shared<nn::ReLU>());
            if (block < 2) {
                model->push_back(std::make_shared<nn::MaxPool2d>(MaxPool2dParams{.kernel = {2, 2}}));
            }
            in = out;
        }
        model->push_back(std::make_shared<nn::Flatten>());
        model->push_back(std::make_shared<nn::Dropout>(0.3, generator));
        model->push_back(std::make_shared<nn::Linear>(64 * 7 * 7, 128, generator));
        model->push_back(std::make_shared<nn::ReLU>());
        model->push_back(std::make_shared<nn::Dropout>(0.3, generator));
        model->push_back(std::make_shared<nn::Linear>(128, 10, generator));
        {
            NoGradGuard no_grad;
            (*model)(random_tensor({8, 1, 28, 28}, 12, Dtype::float32));  // running statistics
        }
        model->eval();

        const Tensor x = random_tensor({2, 1, 28, 28}, 13, Dtype::float32);
        const Graph graph = capture(*model, x);
        Graph pruned = tf::prune(graph, {.method = tf::PruneMethod::structured_l1, .sparsity = 0.5,
                                         .parameters = tf::conv_weights(graph)});
        tf::ChannelRemoval removal = tf::remove_pruned_channels(pruned);

        CHECK(model->parameter_count() == 458730);
        CHECK(tf::parameter_count(pruned) == 458730);
        // conv 144 + 4,608 + 9,216, batch norms 32 + 64 + 64, linear
        // 1,568 * 128 + 128 and 1,290.
        CHECK(tf::parameter_count(removal.graph) == 216250);
        CHECK(shape_of(removal.graph, "13.weight") == Shape{128, 1568});
        const xt::xarray<float> expected = pruned.forward({x})[0].values<float>();
        const xt::xarray<float> actual = removal.graph.forward({x})[0].values<float>();
        CHECK(xt::allclose(actual, expected, 1e-4, 1e-5));
    }
}

#include <filesystem>
#include <memory>

#include "testing.hpp"

using namespace xgrad;
namespace tf = xgrad::transforms;

namespace {

std::shared_ptr<nn::Sequential> make_mlp(std::uint64_t seed) {
    Generator generator(seed);
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Linear>(12, 16, generator), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(16, 8, generator), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(8, 4, generator)});
}

Tensor batch(std::uint64_t seed, std::size_t n = 32) {
    Generator generator(seed);
    return uniform({n, 12}, -1, 1, generator);
}

Tensor labels(std::uint64_t seed, std::size_t n = 32) {
    Generator generator(seed);
    xt::xarray<std::int64_t> values(Shape{n});
    for (auto& value : values) {
        value = static_cast<std::int64_t>(generator.below(4));
    }
    return Tensor(values);
}

std::size_t count_ops(const Graph& graph, const std::string& name) {
    std::size_t count = 0;
    for (const Node& node : graph.nodes()) {
        count += name == node.op->info.name ? 1 : 0;
    }
    return count;
}

}  // namespace

TEST_SUITE("quantize") {
    TEST_CASE("calibration observes every linear input") {
        auto model = make_mlp(1);
        const Graph graph = capture(*model, batch(2));
        tf::Calibration calibration = tf::prepare_quantization(graph, {.activation_observer = "minmax"});
        CHECK(calibration.weights() == std::vector<std::string>{"0.weight", "2.weight", "4.weight"});
        CHECK_THROWS_AS(calibration.activation_params(), value_error);
        for (std::uint64_t seed = 3; seed < 6; ++seed) {
            calibration.observe({batch(seed)});
        }
        const tf::ActivationParams params = calibration.activation_params();
        REQUIRE(params.size() == 3);
        // The first layer sees the raw inputs in [-1, 1): scale about 2 / 255.
        CHECK(params.at("0.weight").scales[0] == doctest::Approx(2.0 / 255.0).epsilon(0.02));
        CHECK(params.at("0.weight").zero_points[0] == doctest::Approx(128).epsilon(0.02));
        // Later layers see ReLU outputs: zero point 0.
        CHECK(params.at("2.weight").zero_points[0] == 0);
    }

    TEST_CASE("qat graph computes near the float graph and trains") {
        auto model = make_mlp(7);
        const auto loss_of = [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{cross_entropy((*model)(in[0]), in[1])};
        };
        Graph float_graph = capture(loss_of, {batch(8), labels(9)}, model.get());
        tf::Calibration calibration = tf::prepare_quantization(float_graph);
        for (std::uint64_t seed = 10; seed < 14; ++seed) {
            calibration.observe({batch(seed), labels(seed)});
        }
        Graph qat = tf::convert_qat(float_graph, calibration.activation_params());
        CHECK(count_ops(qat, "fake_quantize") == 3);
        CHECK(count_ops(qat, "fake_quantize_weight") == 3);
        // Converting twice adds nothing.
        CHECK(count_ops(tf::convert_qat(qat, calibration.activation_params()), "fake_quantize") == 3);

        const std::vector<Tensor> inputs = {batch(20), labels(21)};
        const double float_loss = float_graph.forward(inputs)[0].item();
        const double qat_loss = qat.forward(inputs)[0].item();
        CHECK(qat_loss == doctest::Approx(float_loss).epsilon(0.02));

        optim::Adam optimizer(model->parameters(), {.lr = 0.01});
        double last = 0.0;
        for (int step = 0; step < 60; ++step) {
            last = qat.forward(inputs)[0].item();
            optimizer.zero_grad();
            qat.backward();
            optimizer.step();
        }
        CHECK(last < 0.8 * qat_loss);
    }

    TEST_CASE("masked weights keep their names") {
        auto model = make_mlp(30);
        const Graph masked = tf::add_masks(capture(*model, batch(31)), {"0.weight"});
        const tf::Calibration calibration = tf::prepare_quantization(masked);
        CHECK(calibration.weights() == std::vector<std::string>{"0.weight", "2.weight", "4.weight"});
    }
}

TEST_SUITE("quantize") {
    TEST_CASE("int8 graph computes near the float graph") {
        auto model = make_mlp(40);
        const Tensor x = batch(41, 64);
        Graph float_graph = capture(*model, x);
        tf::Calibration calibration = tf::prepare_quantization(float_graph);
        for (std::uint64_t seed = 42; seed < 46; ++seed) {
            calibration.observe({batch(seed, 64)});
        }
        Graph int8 = tf::convert_int8(float_graph, calibration.activation_params());
        CHECK(count_ops(int8, "quantized_linear") == 3);
        CHECK(count_ops(int8, "linear") == 0);
        const xt::xarray<float> expected = float_graph.forward({x})[0].values<float>();
        const xt::xarray<float> actual = int8.forward({x})[0].values<float>();
        const float spread = xt::amax(xt::abs(expected))();
        CHECK(xt::amax(xt::abs(actual - expected))() < 0.05f * spread);
        const Tensor predicted = argmax(Tensor(actual));
        const Tensor reference = argmax(Tensor(expected));
        const double agreement = xt::mean(xt::cast<double>(
            xt::equal(predicted.values<std::int64_t>(), reference.values<std::int64_t>())))();
        CHECK(agreement > 0.9);
    }

    TEST_CASE("a converted qat graph drops its fake quantization") {
        auto model = make_mlp(50);
        const Tensor x = batch(51);
        const Graph float_graph = capture(*model, x);
        tf::Calibration calibration = tf::prepare_quantization(float_graph);
        calibration.observe({x});
        const Graph qat = tf::convert_qat(float_graph, calibration.activation_params());
        const Graph int8 = tf::convert_int8(qat, calibration.activation_params());
        CHECK(count_ops(int8, "fake_quantize") == 0);
        CHECK(count_ops(int8, "fake_quantize_weight") == 0);
        CHECK(count_ops(int8, "quantized_linear") == 3);
    }

    TEST_CASE("quantized state saves and loads") {
        auto model = make_mlp(60);
        auto other = make_mlp(61);
        const Tensor x = batch(62);
        tf::Calibration calibration = tf::prepare_quantization(capture(*model, x));
        calibration.observe({x});
        Graph int8 = tf::convert_int8(capture(*model, x), calibration.activation_params());
        const io::NamedTensors state = tf::quantized_state_dict(int8);
        CHECK(state.size() == 3 * 6);
        CHECK(state[0].first == "0.weight.int8");
        CHECK(state[0].second.dtype() == Dtype::int8);

        // Another model's int8 graph takes over the saved layers.
        tf::Calibration other_calibration = tf::prepare_quantization(capture(*other, x));
        other_calibration.observe({batch(63)});
        Graph restored = tf::convert_int8(capture(*other, x), other_calibration.activation_params());
        CHECK(restored.forward({x})[0].values<float>() != int8.forward({x})[0].values<float>());
        tf::load_quantized_state_dict(restored, state);
        CHECK(restored.forward({x})[0].values<float>() == int8.forward({x})[0].values<float>());

        io::NamedTensors broken = state;
        broken.pop_back();
        broken[0].second = zeros({3});
        try {
            tf::load_quantized_state_dict(restored, broken);
            FAIL("a mismatched state was accepted");
        } catch (const value_error& error) {
            const std::string message = error.what();
            CHECK(message.find("'0.weight.int8' is float32 (3) but the graph needs int8 (16, 12)") !=
                  std::string::npos);
            CHECK(message.find("missing '4.weight.input_zero_point'") != std::string::npos);
        }
    }
}

namespace {

// conv (1 -> 4) + batch norm + ReLU + max pool, conv (4 -> 6, with bias) +
// batch norm + ReLU, flatten, linear (96 -> 5), on (N, 1, 8, 8) images, in
// eval mode with running statistics from a few training batches.
std::shared_ptr<nn::Sequential> make_cnn(std::uint64_t seed) {
    Generator generator(seed);
    auto model = std::make_shared<nn::Sequential>();
    model->push_back(std::make_shared<nn::Conv2d>(
        nn::Conv2dOptions{.in_channels = 1, .out_channels = 4, .kernel = {3, 3},
                          .padding = {1, 1}, .bias = false},
        generator));
    model->push_back(std::make_shared<nn::BatchNorm2d>(4));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::MaxPool2d>(MaxPool2dParams{.kernel = {2, 2}}));
    model->push_back(std::make_shared<nn::Conv2d>(
        nn::Conv2dOptions{.in_channels = 4, .out_channels = 6, .kernel = {3, 3},
                          .padding = {1, 1}},
        generator));
    model->push_back(std::make_shared<nn::BatchNorm2d>(6));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::Flatten>());
    model->push_back(std::make_shared<nn::Linear>(96, 5, generator));
    NoGradGuard no_grad;
    for (std::uint64_t step = 0; step < 3; ++step) {
        Generator images(seed + 100 + step);
        (*model)(uniform({16, 1, 8, 8}, 0.0, 1.0, images));
    }
    model->eval();
    return model;
}

Tensor images(std::uint64_t seed, std::size_t n = 32) {
    Generator generator(seed);
    return uniform({n, 1, 8, 8}, 0.0, 1.0, generator);
}

// The capture, fold, calibrate and convert pipeline of a CNN.
struct ConvertedCnn {
    Graph folded;
    Graph int8;
    tf::ActivationParams params;
};

ConvertedCnn convert_cnn(nn::Sequential& model, std::uint64_t calibration_seed) {
    ConvertedCnn result;
    result.folded = tf::fold_batch_norm(capture(model, images(1)));
    tf::Calibration calibration = tf::prepare_quantization(result.folded);
    for (std::uint64_t seed = calibration_seed; seed < calibration_seed + 4; ++seed) {
        calibration.observe({images(seed)});
    }
    result.params = calibration.activation_params();
    result.int8 = tf::convert_int8(result.folded, result.params);
    return result;
}

// The int8 values constant convert_int8() stored under this name.
Tensor int8_constant(const Graph& graph, const std::string& name) {
    for (const Value& value : graph.values()) {
        if (value.kind == ValueKind::constant && value.name == name &&
            value.tensor.dtype() == Dtype::int8) {
            return value.tensor;
        }
    }
    FAIL("no int8 constant named " << name);
    return {};
}

}  // namespace

TEST_SUITE("quantize") {
    TEST_CASE("calibration observes every conv2d input") {
        auto model = make_cnn(70);
        const Graph folded = tf::fold_batch_norm(capture(*model, images(71)));
        tf::Calibration calibration =
            tf::prepare_quantization(folded, {.activation_observer = "minmax"});
        CHECK(calibration.weights() ==
              std::vector<std::string>{"0.weight.folded", "4.weight.folded", "8.weight"});
        calibration.observe({images(72)});
        const tf::ActivationParams params = calibration.activation_params();
        // The images lie in [0, 1): zero point 0 and a scale just under 1 / 255.
        CHECK(params.at("0.weight.folded").zero_points[0] == 0);
        CHECK(params.at("0.weight.folded").scales[0] == doctest::Approx(1.0 / 255.0).epsilon(0.01));
        // The second convolution reads pooled ReLU outputs: zero point 0.
        CHECK(params.at("4.weight.folded").zero_points[0] == 0);

        // Without folding, the convolutions are known by their parameters.
        const tf::Calibration unfolded = tf::prepare_quantization(capture(*model, images(71)));
        CHECK(unfolded.weights() == std::vector<std::string>{"0.weight", "4.weight", "8.weight"});
    }

    TEST_CASE("folded int8 cnn computes near the float graph") {
        auto model = make_cnn(73);
        ConvertedCnn cnn = convert_cnn(*model, 74);
        CHECK(count_ops(cnn.int8, "quantized_conv2d") == 2);
        CHECK(count_ops(cnn.int8, "quantized_linear") == 1);
        CHECK(count_ops(cnn.int8, "conv2d") == 0);
        CHECK(count_ops(cnn.int8, "linear") == 0);
        CHECK(count_ops(cnn.int8, "batch_norm_inference") == 0);

        const Tensor x = images(80);
        const xt::xarray<float> expected = cnn.folded.forward({x})[0].values<float>();
        const xt::xarray<float> actual = cnn.int8.forward({x})[0].values<float>();
        const float spread = xt::amax(xt::abs(expected))();
        CHECK(xt::amax(xt::abs(actual - expected))() < 0.05f * spread);
        CHECK(xt::amax(xt::abs(actual - expected))() > 0.0f);
        const Tensor predicted = argmax(Tensor(actual));
        const Tensor reference = argmax(Tensor(expected));
        const double agreement = xt::mean(xt::cast<double>(
            xt::equal(predicted.values<std::int64_t>(), reference.values<std::int64_t>())))();
        CHECK(agreement > 0.9);
    }

    TEST_CASE("int8 convolutions keep the conv2d hyperparameters") {
        Generator generator(75);
        auto model = std::make_shared<nn::Sequential>();
        model->push_back(std::make_shared<nn::Conv2d>(
            nn::Conv2dOptions{.in_channels = 1, .out_channels = 3, .kernel = {3, 3},
                              .stride = {2, 1}, .padding = {2, 1}, .dilation = {1, 2}},
            generator));
        const Tensor x = images(76, 8);
        const Graph graph = capture(*model, x);
        tf::Calibration calibration = tf::prepare_quantization(graph);
        calibration.observe({x});
        Graph int8 = tf::convert_int8(graph, calibration.activation_params());
        REQUIRE(count_ops(int8, "quantized_conv2d") == 1);
        for (const Node& node : int8.nodes()) {
            if (node.op->info.name == std::string("quantized_conv2d")) {
                const std::vector<std::int64_t> window(node.attrs.ints.begin() + 2,
                                                       node.attrs.ints.end());
                CHECK(window == std::vector<std::int64_t>{2, 1, 2, 1, 1, 2});
            }
        }
        // (8 + 4 - 2 - 1) / 2 + 1 = 5 rows and (8 + 2 - 4 - 1) + 1 = 6 columns.
        Graph float_graph = graph;
        const xt::xarray<float> expected = float_graph.forward({x})[0].values<float>();
        const Tensor actual = int8.forward({x})[0];
        REQUIRE(actual.shape() == Shape{8, 3, 5, 6});
        const float spread = xt::amax(xt::abs(expected))();
        CHECK(xt::amax(xt::abs(actual.values<float>() - expected))() < 0.02f * spread);
    }

    TEST_CASE("quantized cnn state saves and loads") {
        auto model = make_cnn(77);
        auto other = make_cnn(78);
        ConvertedCnn cnn = convert_cnn(*model, 79);
        const io::NamedTensors state = tf::quantized_state_dict(cnn.int8);
        // Three layers, each with int8 values, scales, row sums, bias, input
        // scale and input zero point; the folded convolutions have a bias.
        REQUIRE(state.size() == 3 * 6);
        CHECK(state[0].first == "0.weight.folded.int8");
        CHECK(state[0].second.shape() == Shape{4, 1, 3, 3});
        CHECK(state[0].second.dtype() == Dtype::int8);

        ConvertedCnn restored = convert_cnn(*other, 90);
        const Tensor x = images(91);
        const Tensor before = restored.int8.forward({x})[0];
        CHECK(before.values<float>() != cnn.int8.forward({x})[0].values<float>());
        tf::load_quantized_state_dict(restored.int8, state);
        CHECK(restored.int8.forward({x})[0].values<float>() ==
              cnn.int8.forward({x})[0].values<float>());

        // A saved file round-trips too.
        const auto path = std::filesystem::temp_directory_path() / "xgrad_test_int8_cnn.npz";
        io::save_npz(path, state);
        ConvertedCnn from_file = convert_cnn(*other, 90);
        tf::load_quantized_state_dict(from_file.int8, io::load_npz(path));
        std::filesystem::remove(path);
        CHECK(from_file.int8.forward({x})[0].values<float>() ==
              cnn.int8.forward({x})[0].values<float>());

        io::NamedTensors broken = state;
        broken[0].second = Tensor(xt::xarray<std::int8_t>::from_shape({4, 9}));
        broken.pop_back();
        try {
            tf::load_quantized_state_dict(restored.int8, broken);
            FAIL("a mismatched state was accepted");
        } catch (const value_error& error) {
            const std::string message = error.what();
            CHECK(message.find("'0.weight.folded.int8' is int8 (4, 9) but the graph needs int8 "
                               "(4, 1, 3, 3)") != std::string::npos);
            CHECK(message.find("missing '8.weight.input_zero_point'") != std::string::npos);
        }
    }

    TEST_CASE("qat on convolutions") {
        Generator generator(81);
        auto model = std::make_shared<nn::Sequential>();
        model->push_back(std::make_shared<nn::Conv2d>(
            nn::Conv2dOptions{.in_channels = 1, .out_channels = 4, .kernel = {3, 3},
                              .padding = {1, 1}},
            generator));
        model->push_back(std::make_shared<nn::ReLU>());
        model->push_back(std::make_shared<nn::Flatten>());
        model->push_back(std::make_shared<nn::Linear>(256, 4, generator));
        const auto loss_of = [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{cross_entropy((*model)(in[0]), in[1])};
        };
        const std::vector<Tensor> inputs = {images(82), labels(83)};
        Graph float_graph = capture(loss_of, inputs, model.get());
        tf::Calibration calibration = tf::prepare_quantization(float_graph);
        calibration.observe(inputs);
        Graph qat = tf::convert_qat(float_graph, calibration.activation_params());
        CHECK(count_ops(qat, "fake_quantize") == 2);
        CHECK(count_ops(qat, "fake_quantize_weight") == 2);

        const double float_loss = float_graph.forward(inputs)[0].item();
        const double qat_loss = qat.forward(inputs)[0].item();
        CHECK(qat_loss == doctest::Approx(float_loss).epsilon(0.02));
        optim::Adam optimizer(model->parameters(), {.lr = 0.01});
        double last = 0.0;
        for (int step = 0; step < 60; ++step) {
            last = qat.forward(inputs)[0].item();
            optimizer.zero_grad();
            qat.backward();
            optimizer.step();
        }
        CHECK(last < 0.8 * qat_loss);

        const Graph int8 = tf::convert_int8(qat, calibration.activation_params());
        CHECK(count_ops(int8, "quantized_conv2d") == 1);
        CHECK(count_ops(int8, "fake_quantize_weight") == 0);
    }

    TEST_CASE("pruned conv weights stay zero in int8") {
        auto model = make_cnn(84);
        const Graph graph = capture(*model, images(85));
        Graph masked =
            tf::prune(graph, {.sparsity = 0.5, .parameters = {"0.weight", "4.weight"}});
        // A pruned entry whose parameter grew back (as eager training can
        // make it) still quantizes to 0, because the mask applies.
        Value& weight = masked.value(masked.find_value("4.weight"));
        const xt::xarray<float> mask =
            masked.value(masked.find_value("4.weight.mask")).tensor.values<float>();
        std::size_t regrown = 0;
        const NoGradGuard no_grad;
        for (std::size_t i = 0; i < mask.size(); ++i) {
            if (mask.flat(i) == 0.0f && regrown < 5) {
                weight.tensor.mutable_values<float>().flat(i) = 0.3f;
                ++regrown;
            }
        }
        REQUIRE(regrown == 5);

        tf::Calibration calibration = tf::prepare_quantization(masked);
        CHECK(calibration.weights() ==
              std::vector<std::string>{"0.weight", "4.weight", "8.weight"});
        calibration.observe({images(86)});
        const Graph int8 = tf::convert_int8(masked, calibration.activation_params());
        CHECK(count_ops(int8, "quantized_conv2d") == 2);
        for (const std::string name : {"0.weight", "4.weight"}) {
            const xt::xarray<float> layer_mask =
                masked.value(masked.find_value(name + ".mask")).tensor.values<float>();
            const xt::xarray<std::int8_t> codes = int8_constant(int8, name).values<std::int8_t>();
            REQUIRE(codes.shape() == layer_mask.shape());
            std::size_t pruned = 0;
            std::size_t nonzero_pruned = 0;
            for (std::size_t i = 0; i < codes.size(); ++i) {
                if (layer_mask.flat(i) == 0.0f) {
                    ++pruned;
                    nonzero_pruned += codes.flat(i) != 0 ? 1 : 0;
                }
            }
            CAPTURE(name);
            CHECK(pruned == codes.size() / 2);
            CHECK(nonzero_pruned == 0);
        }
    }

    TEST_CASE("convert_int8 rejects per-channel conv input parameters") {
        auto model = make_cnn(87);
        const Graph folded = tf::fold_batch_norm(capture(*model, images(88)));
        tf::Calibration calibration = tf::prepare_quantization(folded);
        calibration.observe({images(89)});
        tf::ActivationParams params = calibration.activation_params();
        params["0.weight.folded"] =
            quant::choose_qparams({0.0, 0.0}, {1.0, 1.0}, quant::QScheme::affine_uint8, 1);
        CHECK_THROWS_WITH_AS(tf::convert_int8(folded, params),
                             doctest::Contains("convert_int8: the input of '0.weight.folded' has"),
                             not_implemented);
    }
}

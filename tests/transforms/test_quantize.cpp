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

#include <atomic>
#include <cstdlib>
#include <new>

#include "testing.hpp"

using namespace xgrad;

// Counts heap allocations while `counting` is set, to prove that a replayed
// training step allocates nothing. Replacing operator new affects this whole
// test binary, which only counts inside the allocation test.
namespace {
std::atomic<bool> counting{false};
std::atomic<std::size_t> allocations{0};
}  // namespace

// g++ cannot see that this operator new and the operator delete below pair up.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t size) {
    if (counting.load(std::memory_order_relaxed)) {
        allocations.fetch_add(1, std::memory_order_relaxed);
    }
    if (void* pointer = std::malloc(size == 0 ? 1 : size)) {
        return pointer;
    }
    throw std::bad_alloc();
}
void operator delete(void* pointer) noexcept { std::free(pointer); }
void operator delete(void* pointer, std::size_t) noexcept { std::free(pointer); }

namespace {

std::shared_ptr<nn::Sequential> make_mlp(std::uint64_t seed, Dtype dtype = Dtype::float32) {
    Generator generator(seed);
    auto layer = [&](std::size_t in, std::size_t out) {
        return std::make_shared<nn::Linear>(
            nn::LinearOptions{.in_features = in, .out_features = out, .dtype = dtype}, generator);
    };
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        layer(12, 16), std::make_shared<nn::ReLU>(), layer(16, 8), std::make_shared<nn::Tanh>(),
        layer(8, 4)});
}

Tensor random_batch(std::uint64_t seed, std::size_t n = 6, Dtype dtype = Dtype::float32) {
    Generator generator(seed);
    return uniform({n, 12}, -1, 1, generator, dtype);
}

Tensor random_labels(std::uint64_t seed, std::size_t n = 6) {
    Generator generator(seed);
    xt::xarray<std::int64_t> labels(Shape{n});
    for (std::size_t i = 0; i < n; ++i) {
        labels(i) = static_cast<std::int64_t>(generator.below(4));
    }
    return Tensor(labels);
}

// The training loss as a function of (inputs, labels), for capture().
CapturedFunction loss_of(nn::Module& model) {
    return [&model](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{cross_entropy(model(in[0]), in[1])};
    };
}

// A small CNN that uses every convolution and pooling op, for (N, 1, 10, 12)
// inputs and 3 classes: conv, relu, max pool, a strided and dilated conv
// without bias, average pool, global average pool, linear.
std::shared_ptr<nn::Sequential> make_cnn(std::uint64_t seed, Dtype dtype = Dtype::float32) {
    Generator generator(seed);
    auto first = std::make_shared<nn::Conv2d>(nn::Conv2dOptions{.in_channels = 1,
                                                                .out_channels = 3,
                                                                .kernel = {3, 3},
                                                                .padding = {1, 1},
                                                                .dtype = dtype},
                                              generator);
    auto second = std::make_shared<nn::Conv2d>(nn::Conv2dOptions{.in_channels = 3,
                                                                 .out_channels = 4,
                                                                 .kernel = {2, 3},
                                                                 .padding = {1, 0},
                                                                 .dilation = {2, 1},
                                                                 .bias = false,
                                                                 .dtype = dtype},
                                               generator);
    auto classifier = std::make_shared<nn::Linear>(
        nn::LinearOptions{.in_features = 4, .out_features = 3, .dtype = dtype}, generator);
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        first, std::make_shared<nn::ReLU>(),
        std::make_shared<nn::MaxPool2d>(MaxPool2dParams{.kernel = {2, 2}}), second,
        std::make_shared<nn::AvgPool2d>(AvgPool2dParams{.kernel = {2, 2},
                                                        .stride = Size2d{1, 1},
                                                        .padding = {1, 1},
                                                        .count_include_pad = false}),
        std::make_shared<nn::GlobalAvgPool2d>(), classifier});
}

Tensor random_images(std::uint64_t seed, Dtype dtype = Dtype::float32) {
    Generator generator(seed);
    return uniform({5, 1, 10, 12}, -1, 1, generator, dtype);
}

Tensor random_classes(std::uint64_t seed) {
    Generator generator(seed);
    xt::xarray<std::int64_t> labels(Shape{5});
    for (std::size_t i = 0; i < 5; ++i) {
        labels(i) = static_cast<std::int64_t>(generator.below(3));
    }
    return Tensor(labels);
}

std::vector<xt::xarray<double>> gradients(const nn::Module& model) {
    std::vector<xt::xarray<double>> grads;
    for (const Tensor& parameter : model.parameters()) {
        grads.push_back(parameter.grad().to_xarray<double>());
    }
    return grads;
}

}  // namespace

TEST_SUITE("graph") {
    TEST_CASE("capture lists inputs, parameters and nodes") {
        auto model = make_mlp(1);
        const Graph graph = capture(*model, random_batch(2));
        CHECK(graph.inputs().size() == 1);
        CHECK(graph.outputs().size() == 1);
        CHECK(graph.parameter_values().size() == 6);
        CHECK(graph.nodes().size() == 5);
        CHECK(graph.value(graph.find_value("2.weight")).shape == Shape{8, 16});
        CHECK(std::string(graph.nodes()[1].op->info.name) == "relu");
        CHECK(graph.value(graph.outputs()[0]).shape == Shape{6, 4});
    }

    TEST_CASE("replay matches eager values and gradients") {
        auto model = make_mlp(3, Dtype::float64);
        Graph graph = capture(loss_of(*model), {random_batch(4, 6, Dtype::float64), random_labels(5)},
                              model.get());
        for (std::uint64_t seed = 10; seed < 13; ++seed) {
            const Tensor x = random_batch(seed, 6, Dtype::float64);
            const Tensor labels = random_labels(seed + 100);

            model->zero_grad();
            const Tensor eager = cross_entropy((*model)(x), labels);
            eager.backward();
            const auto eager_grads = gradients(*model);

            model->zero_grad();
            const Tensor replayed = graph.forward({x, labels})[0];
            CHECK(replayed.item() == eager.item());
            graph.backward();
            const auto replay_grads = gradients(*model);
            REQUIRE(replay_grads.size() == eager_grads.size());
            for (std::size_t i = 0; i < eager_grads.size(); ++i) {
                CHECK(testing::all_close(replay_grads[i], eager_grads[i], 1e-12));
            }
        }
    }

    TEST_CASE("replayed gradients accumulate like eager ones") {
        auto model = make_mlp(6, Dtype::float64);
        Graph graph = capture(loss_of(*model), {random_batch(7, 6, Dtype::float64), random_labels(8)},
                              model.get());
        const Tensor x = random_batch(9, 6, Dtype::float64);
        const Tensor labels = random_labels(10);
        model->zero_grad();
        cross_entropy((*model)(x), labels).backward();
        const auto once = gradients(*model);
        graph.forward({x, labels});
        graph.backward();  // no zero_grad: adds to the eager gradients
        const auto twice = gradients(*model);
        for (std::size_t i = 0; i < once.size(); ++i) {
            CHECK(testing::all_close(twice[i], 2.0 * once[i], 1e-12));
        }
    }

    TEST_CASE("replayed training step reuses buffers and allocates nothing") {
        auto model = make_mlp(11);
        Graph graph = capture(loss_of(*model), {random_batch(12), random_labels(13)}, model.get());
        optim::Adam optimizer(model->parameters(), {.lr = 1e-2});
        const Tensor x = random_batch(14);
        const Tensor labels = random_labels(15);
        const std::vector<Tensor> inputs = {x, labels};

        auto step = [&] {
            const Tensor& loss = graph.forward(inputs)[0];
            optimizer.zero_grad();
            graph.backward();
            optimizer.step();
            return loss.item();
        };
        const double first = step();
        step();
        const Tensor& output = graph.forward(inputs)[0];
        const void* output_buffer = output.values<float>().data();
        const Tensor first_grad = model->parameters()[0].grad();

        allocations = 0;
        counting = true;
        double last = 0.0;
        for (int i = 0; i < 5; ++i) {
            last = step();
        }
        counting = false;
        CHECK(allocations.load() == 0);
        CHECK(graph.forward(inputs)[0].values<float>().data() == output_buffer);
        CHECK(graph.forward(inputs)[0].id() == output.id());
        const Tensor last_grad = model->parameters()[0].grad();
        CHECK(last_grad.values<float>().data() == first_grad.values<float>().data());
        CHECK(last < first);  // and it trains
    }

    TEST_CASE("replay rejects other shapes") {
        auto model = make_mlp(16);
        Graph graph = capture(*model, random_batch(17));
        CHECK_THROWS_WITH_AS(graph.forward({random_batch(18, 5)}),
                             doctest::Contains("Graph::forward: input 0 is float32 (5, 12) but the graph was captured with float32 (6, 12)"),
                             shape_error);
        CHECK_THROWS_WITH_AS(graph.forward({}), doctest::Contains("expected 1 inputs"), value_error);
        Graph fresh = capture(*model, random_batch(17));
        CHECK_THROWS_WITH_AS(fresh.backward(), doctest::Contains("Graph::backward:"), shape_error);
    }

    TEST_CASE("backward before forward") {
        auto model = make_mlp(19);
        Graph graph = capture(loss_of(*model), {random_batch(20), random_labels(21)}, model.get());
        CHECK_THROWS_WITH_AS(graph.backward(), doctest::Contains("run forward() first"), autograd_error);
    }

    TEST_CASE("capture records constants and buffers") {
        Generator generator(22);
        Tensor w = uniform({3}, -1, 1, generator, Dtype::float64);
        w.requires_grad_(true);
        const Graph graph = capture(
            [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{sum(in[0] * w * 2.0)}; },
            {uniform({3}, -1, 1, generator, Dtype::float64)});
        std::size_t constants = 0;
        std::size_t parameters = 0;
        for (const Value& v : graph.values()) {
            constants += v.kind == ValueKind::constant ? 1 : 0;
            parameters += v.kind == ValueKind::parameter ? 1 : 0;
        }
        CHECK(constants == 1);   // the scalar 2.0
        CHECK(parameters == 1);  // w, which requires grad
        CHECK(graph.nodes().size() == 3);
    }

    TEST_CASE("capture under no-grad still records everything") {
        auto model = make_mlp(23);
        NoGradGuard no_grad;
        const Graph graph = capture(*model, random_batch(24));
        CHECK(graph.nodes().size() == 5);
    }

    TEST_CASE("listing and DOT show ops, shapes and parameters") {
        auto model = make_mlp(25);
        const Graph graph = capture(loss_of(*model), {random_batch(26), random_labels(27)}, model.get());
        const std::string text = graph.to_string();
        CHECK(text.find("graph(x0: float32 (6, 12), x1: int64 (6))") == 0);
        CHECK(text.find("parameter 0.weight: float32 (16, 12)") != std::string::npos);
        CHECK(text.find("= linear(x0, 0.weight, 0.bias): float32 (6, 16)") != std::string::npos);
        CHECK(text.find("cross_entropy(") != std::string::npos);
        CHECK(text.find("[reduction=mean]: float32 ()") != std::string::npos);
        const std::string dot = graph.to_dot("mlp");
        CHECK(dot.find("digraph \"mlp\"") == 0);
        CHECK(dot.find("label=\"0.weight\\nfloat32 (16, 12)\", style=filled, fillcolor=\"#ffd966\"") !=
              std::string::npos);
        CHECK(dot.find("label=\"relu\\n(6, 16)\"") != std::string::npos);
        CHECK(dot.find("-> out0") != std::string::npos);
    }

    TEST_CASE("replayed CNN matches eager values and gradients") {
        auto model = make_cnn(30, Dtype::float64);
        Graph graph = capture(loss_of(*model),
                              {random_images(31, Dtype::float64), random_classes(32)}, model.get());
        for (std::uint64_t seed = 33; seed < 36; ++seed) {
            const Tensor x = random_images(seed, Dtype::float64);
            const Tensor labels = random_classes(seed + 100);

            model->zero_grad();
            const Tensor eager = cross_entropy((*model)(x), labels);
            eager.backward();
            const auto eager_grads = gradients(*model);

            model->zero_grad();
            const Tensor replayed = graph.forward({x, labels})[0];
            CHECK(replayed.item() == eager.item());
            graph.backward();
            const auto replay_grads = gradients(*model);
            REQUIRE(replay_grads.size() == eager_grads.size());
            REQUIRE(replay_grads.size() == 5);
            for (std::size_t i = 0; i < eager_grads.size(); ++i) {
                CAPTURE(i);
                CHECK(testing::all_close(replay_grads[i], eager_grads[i], 1e-12));
            }
        }
    }

    TEST_CASE("replayed CNN training step allocates nothing") {
        auto model = make_cnn(40);
        Graph graph =
            capture(loss_of(*model), {random_images(41), random_classes(42)}, model.get());
        optim::SGD optimizer(model->parameters(), {.lr = 0.1, .momentum = 0.9});
        const std::vector<Tensor> inputs = {random_images(43), random_classes(44)};
        auto step = [&] {
            const Tensor& loss = graph.forward(inputs)[0];
            optimizer.zero_grad();
            graph.backward();
            optimizer.step();
            return loss.item();
        };
        const double first = step();
        step();

        allocations = 0;
        counting = true;
        double last = 0.0;
        for (int i = 0; i < 5; ++i) {
            last = step();
        }
        counting = false;
        CHECK(allocations.load() == 0);
        CHECK(last < first);
    }

    TEST_CASE("listing and DOT show convolution and pooling") {
        auto model = make_cnn(45);
        const Graph graph = capture(*model, random_images(46));
        const std::string text = graph.to_string();
        CHECK(text.find("parameter 0.weight: float32 (3, 1, 3, 3)") != std::string::npos);
        CHECK(text.find("= conv2d(x0, 0.weight, 0.bias) [stride=(1, 1), padding=(1, 1), "
                        "dilation=(1, 1)]: float32 (5, 3, 10, 12)") != std::string::npos);
        CHECK(text.find("= max_pool2d(%") != std::string::npos);
        CHECK(text.find("[kernel=(2, 2), stride=(2, 2), padding=(0, 0)]: float32 (5, 3, 5, 6)") !=
              std::string::npos);
        CHECK(text.find(", 3.weight) [stride=(1, 1), padding=(1, 0), dilation=(2, 1)]: float32 "
                        "(5, 4, 5, 4)") != std::string::npos);
        CHECK(text.find("[kernel=(2, 2), stride=(1, 1), padding=(1, 1), count_include_pad=false]: "
                        "float32 (5, 4, 6, 5)") != std::string::npos);
        CHECK(text.find("= global_avg_pool2d(%") != std::string::npos);
        const std::string dot = graph.to_dot("cnn");
        CHECK(dot.find("label=\"conv2d\\nstride=(1, 1), padding=(1, 1), dilation=(1, 1)\\n(5, 3, "
                       "10, 12)\"") != std::string::npos);
        CHECK(dot.find("label=\"max_pool2d\\nkernel=(2, 2), stride=(2, 2), padding=(0, 0)\\n(5, 3, "
                       "5, 6)\"") != std::string::npos);
        CHECK(dot.find("label=\"global_avg_pool2d\\n(5, 4)\"") != std::string::npos);
        CHECK(dot.find("label=\"0.weight\\nfloat32 (3, 1, 3, 3)\", style=filled") !=
              std::string::npos);
    }
}

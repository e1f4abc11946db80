#include <cmath>
#include <functional>
#include <memory>

#include "testing.hpp"

using namespace xgrad;
namespace tf = xgrad::transforms;

namespace {

// A one-layer model whose weight the tests set by hand.
struct Tiny {
    std::shared_ptr<nn::Linear> layer;
    Graph graph;

    // Rows as nested vectors, because xtensor's nested initializer lists are
    // ambiguous for a single row.
    explicit Tiny(const std::vector<std::vector<double>>& rows) {
        xt::xarray<double> weight(Shape{rows.size(), rows[0].size()});
        for (std::size_t r = 0; r < rows.size(); ++r) {
            for (std::size_t c = 0; c < rows[r].size(); ++c) {
                weight(r, c) = rows[r][c];
            }
        }
        Generator generator(0);
        layer = std::make_shared<nn::Linear>(
            nn::LinearOptions{.in_features = weight.shape()[1], .out_features = weight.shape()[0],
                              .bias = false, .dtype = Dtype::float64},
            generator);
        NoGradGuard no_grad;
        layer->weight.mutable_values<double>() = weight;
        graph = capture(*layer, zeros({1, weight.shape()[1]}, Dtype::float64));
    }

    xt::xarray<double> mask(const Graph& masked) const {
        return masked.value(masked.find_value("weight.mask")).tensor.values<double>();
    }
};

// Tanh rather than ReLU keeps every upstream gradient nonzero, so a zero
// gradient can only come from a mask.
std::shared_ptr<nn::Sequential> make_mlp(std::uint64_t seed) {
    Generator generator(seed);
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Linear>(10, 20, generator), std::make_shared<nn::Tanh>(),
        std::make_shared<nn::Linear>(20, 5, generator)});
}

CapturedFunction loss_of(nn::Module& model) {
    return [&model](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{cross_entropy(model(in[0]), in[1])};
    };
}

Tensor batch(std::uint64_t seed) {
    Generator generator(seed);
    return uniform({16, 10}, -1, 1, generator);
}

Tensor labels(std::uint64_t seed) {
    Generator generator(seed);
    xt::xarray<std::int64_t> values(Shape{16});
    for (auto& value : values) {
        value = static_cast<std::int64_t>(generator.below(5));
    }
    return Tensor(values);
}

std::size_t zeros_in(const Tensor& tensor) {
    const xt::xarray<double> values = tensor.to_xarray<double>();
    return static_cast<std::size_t>(std::count(values.begin(), values.end(), 0.0));
}

}  // namespace

TEST_SUITE("prune") {
    TEST_CASE("masks start as ones and change nothing") {
        auto model = make_mlp(1);
        const Tensor x = batch(2);
        const Graph graph = capture(*model, x);
        CHECK(tf::linear_weights(graph) == std::vector<std::string>{"0.weight", "2.weight"});
        Graph masked = tf::add_masks(graph, tf::linear_weights(graph));
        CHECK(masked.nodes().size() == graph.nodes().size() + 2);
        CHECK(masked.value(masked.find_value("0.weight.mask")).kind == ValueKind::buffer);
        CHECK(masked.forward({x})[0].values<float>() == (*model)(x).values<float>());
        // Masks are inserted once.
        CHECK(tf::add_masks(masked, {"0.weight"}).nodes().size() == masked.nodes().size());
    }

    TEST_CASE("magnitude pruning removes the smallest weights") {
        Tiny tiny({{0.5, -0.1, 0.3}, {0.2, -0.4, 0.05}});
        const Graph pruned = tf::prune(tiny.graph, {.sparsity = 0.5});
        CHECK(tiny.mask(pruned) == xt::xarray<double>{{1, 0, 1}, {0, 1, 0}});
        CHECK(tiny.layer->weight.values<double>() == xt::xarray<double>{{0.5, 0, 0.3}, {0, -0.4, 0}});
    }

    TEST_CASE("count selects the number of weights") {
        Tiny tiny({{0.5, -0.1, 0.3}, {0.2, -0.4, 0.05}});
        const Graph pruned = tf::prune(tiny.graph, {.count = 1});
        CHECK(tiny.mask(pruned) == xt::xarray<double>{{1, 1, 1}, {1, 1, 0}});
        CHECK_THROWS_WITH_AS(tf::prune(tiny.graph, {.count = 7}),
                             doctest::Contains("cannot prune 7 of the 6 weights of 'weight'"), value_error);
    }

    TEST_CASE("ties go to the earlier position") {
        Tiny tiny({{1.0, -1.0, 1.0, 1.0}, {1.0, 2.0, 2.0, 2.0}});
        CHECK(tiny.mask(tf::prune(tiny.graph, {.sparsity = 0.25})) ==
              xt::xarray<double>{{0, 0, 1, 1}, {1, 1, 1, 1}});
    }

    TEST_CASE("sparsity 0 and 1") {
        Tiny keep({{0.5, -0.1}, {0.3, 0.2}});
        CHECK(keep.mask(tf::prune(keep.graph, {.sparsity = 0.0})) == xt::ones<double>({2, 2}));
        Tiny drop({{0.5, -0.1}, {0.3, 0.2}});
        CHECK(drop.mask(tf::prune(drop.graph, {.sparsity = 1.0})) == xt::zeros<double>({2, 2}));
        CHECK(zeros_in(drop.layer->weight) == 4);
        CHECK_THROWS_WITH_AS(tf::prune(drop.graph, {.sparsity = 1.5}),
                             doctest::Contains("sparsity must be in [0, 1]"), value_error);
    }

    TEST_CASE("rounding in a tiny layer") {
        // round(0.9 * 3) = 3: the whole layer goes, as documented.
        Tiny whole({{0.1, 0.2, 0.3}});
        CHECK(whole.mask(tf::prune(whole.graph, {.sparsity = 0.9})) == xt::zeros<double>({1, 3}));
        // round(0.5 * 3) = round(1.5) = 2, ties to even.
        Tiny half({{0.1, 0.2, 0.3}});
        const xt::xarray<double> half_mask = half.mask(tf::prune(half.graph, {.sparsity = 0.5}));
        CHECK(half_mask(0, 0) == 0.0);
        CHECK(half_mask(0, 1) == 0.0);
        CHECK(half_mask(0, 2) == 1.0);
        // round(0.1 * 3) = 0: nothing is pruned.
        Tiny none({{0.1, 0.2, 0.3}});
        CHECK(none.mask(tf::prune(none.graph, {.sparsity = 0.1})) == xt::ones<double>({1, 3}));
    }

    TEST_CASE("global magnitude ranks all layers together") {
        auto model = make_mlp(3);
        NoGradGuard no_grad;
        // Layer 0 (200 weights) gets tiny weights, so a global ranking takes
        // them before any of layer 2's 100.
        model->parameters()[0].mutable_values<float>() *= 0.001f;
        const Graph pruned = tf::prune(capture(*model, batch(4)), {.method = tf::PruneMethod::global_magnitude,
                                                                   .sparsity = 0.5});
        const auto report = tf::sparsity_report(pruned);
        REQUIRE(report.size() == 2);
        CHECK(report[0].zeros == 150);  // round(0.5 * 300), all from layer 0
        CHECK(report[1].zeros == 0);
        CHECK(tf::overall_sparsity(report) == 0.5);
    }

    TEST_CASE("structured pruning removes whole rows") {
        Tiny tiny({{0.5, -0.5, 0.1}, {0.9, 0.0, 0.0}, {0.2, 0.2, 0.2}});
        // L1 norms 1.1, 0.9, 0.6; L2 norms 0.714, 0.9, 0.346.
        CHECK(tiny.mask(tf::prune(tiny.graph, {.method = tf::PruneMethod::structured_l1, .sparsity = 0.34})) ==
              xt::xarray<double>{{1, 1, 1}, {1, 1, 1}, {0, 0, 0}});
        Tiny other({{0.5, -0.5, 0.1}, {0.9, 0.0, 0.0}, {0.2, 0.2, 0.2}});
        CHECK(other.mask(tf::prune(other.graph, {.method = tf::PruneMethod::structured_l2, .count = 2})) ==
              xt::xarray<double>{{0, 0, 0}, {1, 1, 1}, {0, 0, 0}});
    }

    TEST_CASE("random pruning is seeded and exact in count") {
        auto first = make_mlp(5);
        auto second = make_mlp(5);
        const tf::PruneSpec spec{.method = tf::PruneMethod::random, .sparsity = 0.3, .seed = 9};
        const Graph a = tf::prune(capture(*first, batch(6)), spec);
        const Graph b = tf::prune(capture(*second, batch(6)), spec);
        CHECK(a.value(a.find_value("0.weight.mask")).tensor.values<float>() ==
              b.value(b.find_value("0.weight.mask")).tensor.values<float>());
        CHECK(zeros_in(first->parameters()[0]) == 60);  // round(0.3 * 200)
    }

    TEST_CASE("pruned weights stay zero under every optimizer") {
        using Factory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
        const std::vector<std::pair<std::string, Factory>> optimizers = {
            {"sgd nesterov", [](auto p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true}); }},
            {"adam", [](auto p) { return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.01}); }},
            {"adamw", [](auto p) { return std::make_unique<optim::AdamW>(p, optim::AdamWOptions{.lr = 0.01, .weight_decay = 0.1}); }},
            {"amsgrad", [](auto p) { return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 0.01, .amsgrad = true}); }},
            {"rmsprop", [](auto p) { return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions{.lr = 0.01, .momentum = 0.5, .centered = true}); }},
            {"adagrad", [](auto p) { return std::make_unique<optim::Adagrad>(p, optim::AdagradOptions{.lr = 0.1, .initial_accumulator_value = 0.1}); }},
        };
        for (const auto& entry : optimizers) {
            // Named copies, not structured bindings: clang 14 cannot capture
            // those in the lambdas of CAPTURE and the checks below.
            const auto& name = std::get<0>(entry);
            const auto& make = std::get<1>(entry);
            CAPTURE(name);
            auto model = make_mlp(7);
            auto optimizer = make(model->parameters());
            Graph graph = tf::add_masks(capture(loss_of(*model), {batch(8), labels(9)}, model.get()),
                                        {"0.weight", "2.weight"});
            const std::vector<Tensor> inputs = {batch(10), labels(11)};
            auto train = [&](int steps) {
                for (int i = 0; i < steps; ++i) {
                    graph.forward(inputs);
                    optimizer->zero_grad();
                    graph.backward();
                    optimizer->step();
                }
            };
            train(10);  // build up momentum and moment estimates first
            // Only the first layer, so that every unit keeps a nonzero
            // gradient from the second.
            tf::update_masks(graph, {.sparsity = 0.7, .parameters = {"0.weight"}}, optimizer.get());
            const std::size_t pruned = zeros_in(model->parameters()[0]);
            CHECK(pruned == 140);
            train(50);
            // Still exactly the pruned ones, while the gradient reaching the
            // mask was nonzero everywhere and only the mask zeroed it.
            CHECK(zeros_in(model->parameters()[0]) == pruned);
            const Tensor grad = model->parameters()[0].grad();
            CHECK(zeros_in(grad) == pruned);
            CHECK(zeros_in(model->parameters()[2]) == 0);
        }
    }

    TEST_CASE("schedule follows the cubic curve") {
        const tf::PruningSchedule schedule{.initial_sparsity = 0.1, .final_sparsity = 0.9,
                                           .begin_step = 100, .end_step = 500, .frequency = 100};
        CHECK(schedule.sparsity_at(0) == 0.0);
        CHECK(schedule.sparsity_at(100) == doctest::Approx(0.1));
        // Step 250 keeps the value of the update at 200: progress 1/4.
        const double at_200 = 0.9 + (0.1 - 0.9) * std::pow(1.0 - 0.25, 3);
        CHECK(schedule.sparsity_at(200) == doctest::Approx(at_200));
        CHECK(schedule.sparsity_at(250) == doctest::Approx(at_200));
        CHECK(schedule.sparsity_at(500) == doctest::Approx(0.9));
        CHECK(schedule.sparsity_at(10000) == doctest::Approx(0.9));
        CHECK(schedule.is_update_step(300));
        CHECK_FALSE(schedule.is_update_step(350));
        CHECK_FALSE(schedule.is_update_step(600));
        CHECK_THROWS_WITH_AS((tf::PruningSchedule{.initial_sparsity = 0.5, .final_sparsity = 0.2}.validate()),
                             doctest::Contains("final_sparsity"), value_error);
    }

    TEST_CASE("gradual pruning stopped early keeps its promise") {
        auto model = make_mlp(12);
        optim::Adam optimizer(model->parameters(), {.lr = 0.01});
        Graph graph = tf::add_masks(capture(loss_of(*model), {batch(13), labels(14)}, model.get()),
                                    {"0.weight", "2.weight"});
        const tf::PruningSchedule schedule{.initial_sparsity = 0.0, .final_sparsity = 0.9,
                                           .begin_step = 0, .end_step = 100, .frequency = 10};
        tf::GradualPruner pruner(graph, {}, schedule, &optimizer);
        const std::vector<Tensor> inputs = {batch(15), labels(16)};
        xt::xarray<double> previous_mask = xt::ones<double>({20, 10});
        for (std::int64_t step = 0; step <= 45; ++step) {  // stops before the schedule ends
            if (pruner.step(step)) {
                const xt::xarray<double> mask =
                    graph.value(graph.find_value("0.weight.mask")).tensor.to_xarray<double>();
                CHECK(xt::all(mask <= previous_mask));  // masks only grow
                previous_mask = mask;
            }
            graph.forward(inputs);
            optimizer.zero_grad();
            graph.backward();
            optimizer.step();
        }
        const double promised = schedule.sparsity_at(45);
        CHECK(pruner.current_sparsity() == promised);
        for (const auto& layer : tf::sparsity_report(graph)) {
            CAPTURE(layer.name);
            CHECK(layer.zeros == static_cast<std::size_t>(std::nearbyint(promised * layer.size)));
        }
        CHECK(tf::sparsity_report(*model)[0].zeros == tf::sparsity_report(graph)[0].zeros);
    }

    TEST_CASE("baking removes the masks and training goes on") {
        auto model = make_mlp(17);
        optim::SGD optimizer(model->parameters(), {.lr = 0.1, .momentum = 0.9});
        const Graph captured = capture(loss_of(*model), {batch(18), labels(19)}, model.get());
        Graph masked = tf::prune(captured, {.sparsity = 0.5}, &optimizer);
        const std::vector<Tensor> inputs = {batch(20), labels(21)};
        const double masked_loss = masked.forward(inputs)[0].item();

        Graph baked = tf::bake_masks(masked);
        CHECK(baked.nodes().size() == captured.nodes().size());
        CHECK(baked.forward(inputs)[0].item() == masked_loss);

        const Tensor weight = model->parameters()[0];
        const xt::xarray<float> before = weight.values<float>();
        for (int i = 0; i < 5; ++i) {
            baked.forward(inputs);
            optimizer.zero_grad();
            baked.backward();
            optimizer.step();
        }
        const xt::xarray<float>& after = weight.values<float>();
        std::size_t survivors_changed = 0;
        for (std::size_t i = 0; i < after.size(); ++i) {
            survivors_changed += before.flat(i) != 0.0f && after.flat(i) != before.flat(i) ? 1 : 0;
        }
        CHECK(survivors_changed > 90);  // of the 100 survivors
    }

    TEST_CASE("update_masks needs masks") {
        auto model = make_mlp(22);
        Graph graph = capture(*model, batch(23));
        CHECK_THROWS_WITH_AS(tf::update_masks(graph, {}), doctest::Contains("'0.weight' has no mask"),
                             value_error);
    }

    TEST_CASE("report formatting") {
        const std::string text = tf::format_sparsity_report({{"a.weight", 100, 90}, {"b.weight", 100, 50}});
        CHECK(text.find("a.weight") != std::string::npos);
        CHECK(text.find("90.00%") != std::string::npos);
        CHECK(text.find("total") != std::string::npos);
        CHECK(text.find("70.00%") != std::string::npos);
    }
}

#include <cmath>
#include <limits>

#include "testing.hpp"
#include "xgrad/graph/sparsify.hpp"

using namespace xgrad;

namespace {

std::size_t count_nodes(const Graph& graph, const std::string& op) {
    std::size_t count = 0;
    for (const Node& node : graph.nodes()) {
        count += op == node.op->info.name ? 1 : 0;
    }
    return count;
}

// Sets round(fraction * size) entries of a parameter, at random positions, to
// exactly zero.
void prune(Tensor& parameter, double fraction, std::uint64_t seed) {
    NoGradGuard no_grad;
    Generator generator(seed);
    auto& values = parameter.mutable_values<float>();
    std::vector<std::size_t> positions(values.size());
    for (std::size_t i = 0; i < positions.size(); ++i) {
        positions[i] = i;
    }
    const auto zeros =
        static_cast<std::size_t>(fraction * static_cast<double>(values.size()) + 0.5);
    for (std::size_t i = 0; i < zeros; ++i) {
        std::swap(positions[i], positions[i + generator.below(positions.size() - i)]);
        values.flat(positions[i]) = 0.0f;
    }
}

// A float32 MLP, 12 -> 16 -> 8 -> 4 with ReLUs between.
std::shared_ptr<nn::Sequential> make_mlp(std::uint64_t seed) {
    Generator generator(seed);
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Linear>(12, 16, generator), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(16, 8, generator), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(8, 4, generator)});
}

// The graph's nodes as text, independent of value numbering: each node's op
// and inputs, where an input is a leaf's kind and name or the node that
// computes it.
std::vector<std::string> node_listing(const Graph& graph) {
    std::vector<std::string> lines;
    for (const Node& node : graph.nodes()) {
        std::string line = node.op->info.name;
        for (std::size_t input : node.inputs) {
            const Value& value = graph.value(input);
            line += value.kind == ValueKind::op
                        ? " node" + std::to_string(value.node)
                        : std::string(" ") + value_kind_name(value.kind) + ":" + value.name;
        }
        lines.push_back(line);
    }
    return lines;
}

Tensor& weight_of(nn::Sequential& model, std::size_t layer) {
    auto* linear = dynamic_cast<nn::Linear*>(model.named_children().at(layer).second.get());
    REQUIRE(linear != nullptr);
    return linear->weight;
}

}  // namespace

TEST_SUITE("sparsify") {
    TEST_CASE("sparsify replaces only the sparse layer") {
        auto model = make_mlp(1);
        // Halfway between the default threshold and 1, so the default applies.
        prune(weight_of(*model, 2), (1.0 + kSparseLinearThreshold) / 2, 2);
        Generator generator(3);
        const Tensor x = uniform({5, 12}, -1, 1, generator);
        Graph graph = capture(*model, x);
        const xt::xarray<float> expected = graph.forward({x})[0].values<float>();

        Graph sparse = sparsify(graph);
        CHECK(count_nodes(sparse, "linear") == 2);
        CHECK(count_nodes(sparse, "sparse_linear") == 1);
        REQUIRE(sparse.nodes().size() == graph.nodes().size());
        for (std::size_t n = 0; n < graph.nodes().size(); ++n) {
            CAPTURE(n);
            const std::string original = graph.nodes()[n].op->info.name;
            CHECK(sparse.nodes()[n].op->info.name == (n == 2 ? "sparse_linear" : original));
        }
        CHECK(count_nodes(graph, "linear") == 3);  // the input graph is left as it was

        const xt::xarray<float> actual = sparse.forward({x})[0].values<float>();
        CHECK(xt::allclose(actual, expected, 1e-5, 1e-6));
        // Against eager mode as well, on a second batch.
        const Tensor other = uniform({5, 12}, -1, 1, generator);
        CHECK(xt::allclose(sparse.forward({other})[0].values<float>(),
                           (*model)(other).values<float>(), 1e-5, 1e-6));
    }

    TEST_CASE("sparsify keeps the bias and names the CSR constants") {
        auto model = make_mlp(4);
        prune(weight_of(*model, 0), 0.75, 5);
        Generator generator(6);
        const Tensor x = uniform({3, 12}, -1, 1, generator);
        const Graph graph = capture(*model, x);
        const Graph sparse = sparsify(graph, 0.7);

        const Node& node = sparse.nodes()[0];
        REQUIRE(std::string(node.op->info.name) == "sparse_linear");
        REQUIRE(node.inputs.size() == 5);
        CHECK(sparse.value(node.inputs[0]).kind == ValueKind::input);
        CHECK(sparse.value(node.inputs[1]).name == "0.weight.csr_values");
        CHECK(sparse.value(node.inputs[2]).name == "0.weight.csr_column_indices");
        CHECK(sparse.value(node.inputs[3]).name == "0.weight.csr_row_offsets");
        for (std::size_t i = 1; i <= 3; ++i) {
            CHECK(sparse.value(node.inputs[i]).kind == ValueKind::constant);
        }
        CHECK(sparse.value(node.inputs[1]).shape == Shape{48});  // a quarter of 16 x 12
        CHECK(sparse.value(node.inputs[4]).name == "0.bias");
        CHECK(node.attrs.ints[0] == 12);
    }

    TEST_CASE("sparsify leaves layers below the threshold alone") {
        auto model = make_mlp(7);
        prune(weight_of(*model, 2), 0.6, 8);
        Generator generator(9);
        const Tensor x = uniform({2, 12}, -1, 1, generator);
        const Graph graph = capture(*model, x);
        const Graph unchanged = sparsify(graph, 0.65);
        CHECK(count_nodes(unchanged, "sparse_linear") == 0);
        CHECK(node_listing(unchanged) == node_listing(graph));
        CHECK(unchanged.values().size() == graph.values().size());
        // A weight exactly at the threshold is replaced.
        const double measured = sparsity(weight_of(*model, 2));
        CHECK(count_nodes(sparsify(graph, measured), "sparse_linear") == 1);
    }

    TEST_CASE("sparsify without bias, in float64, with a constant weight") {
        Generator generator(10);
        const Tensor weight = uniform({6, 5}, -1, 1, generator, Dtype::float64);
        Tensor pruned = weight.clone();
        for (std::size_t i = 0; i < pruned.numel(); i += 3) {
            pruned.mutable_values<double>().flat(i) = 0.0;
        }
        const Tensor x = uniform({4, 5}, -1, 1, generator, Dtype::float64);
        const Graph graph = capture(
            [&](const std::vector<Tensor>& in) {
                return std::vector<Tensor>{linear(in[0], pruned)};
            },
            {x});
        REQUIRE(graph.value(graph.nodes()[0].inputs[1]).kind == ValueKind::constant);
        Graph sparse = sparsify(graph, 0.2);
        REQUIRE(count_nodes(sparse, "sparse_linear") == 1);
        CHECK(sparse.nodes()[0].inputs.size() == 4);
        CHECK(testing::all_close(sparse.forward({x})[0].values<double>(),
                                 linear(x, pruned).values<double>(), 1e-12));
    }

    TEST_CASE("sparsify skips weights computed in the graph") {
        Generator generator(11);
        const Tensor weight = zeros({3, 4});
        const Tensor x = uniform({2, 4}, -1, 1, generator);
        const Graph graph = capture(
            [&](const std::vector<Tensor>& in) {
                return std::vector<Tensor>{linear(in[0], weight * 2.0)};
            },
            {x});
        CHECK(count_nodes(sparsify(graph, 0.0), "sparse_linear") == 0);
    }

    TEST_CASE("sparsify copies the weight when it runs") {
        auto model = make_mlp(12);
        Tensor& weight = weight_of(*model, 4);
        prune(weight, 0.9, 13);
        Generator generator(14);
        const Tensor x = uniform({2, 12}, -1, 1, generator);
        Graph sparse = sparsify(capture(*model, x), 0.9);
        const xt::xarray<float> before = sparse.forward({x})[0].values<float>();
        {
            NoGradGuard no_grad;
            weight.mutable_values<float>().fill(1.0f);
        }
        CHECK(sparse.forward({x})[0].values<float>() == before);
    }

    TEST_CASE("dead code elimination drops the replaced weight") {
        auto model = make_mlp(15);
        prune(weight_of(*model, 2), 0.9, 16);
        Generator generator(17);
        const Tensor x = uniform({2, 12}, -1, 1, generator);
        const Graph graph = capture(*model, x);
        const Graph sparse = sparsify(graph, 0.85);
        CHECK(sparse.parameter_values().size() == graph.parameter_values().size());
        const Graph cleaned = eliminate_dead_code(sparse);
        CHECK(cleaned.parameter_values().size() == graph.parameter_values().size() - 1);
        CHECK_THROWS_AS(cleaned.find_value("2.weight"), value_error);
        CHECK(cleaned.find_value("2.bias") < cleaned.values().size());
    }

    TEST_CASE("sparsify rejects an invalid threshold") {
        const Graph graph;
        CHECK_THROWS_WITH_AS(
            sparsify(graph, -0.1),
            doctest::Contains("sparsify: min_sparsity must be in [0, 1], got -0.1"), value_error);
        CHECK_THROWS_WITH_AS(sparsify(graph, 1.5), doctest::Contains("sparsify: min_sparsity"),
                             value_error);
        CHECK_THROWS_WITH_AS(sparsify(graph, std::numeric_limits<double>::quiet_NaN()),
                             doctest::Contains("sparsify: min_sparsity"), value_error);
    }
}

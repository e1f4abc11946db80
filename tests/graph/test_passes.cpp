#include "testing.hpp"

using namespace xgrad;

namespace {

// The worked example of docs/graph.md: every relu becomes a leaky_relu.
Graph relu_to_leaky_relu(const Graph& graph) {
    const OpDef& leaky = find_op("leaky_relu");
    return rewrite_nodes(graph, [&](Graph& out, const Node& node, const std::vector<std::size_t>& inputs) {
        if (std::string(node.op->info.name) != "relu") {
            return out.add_node(*node.op, inputs, node.attrs);
        }
        OpAttrs attrs;
        attrs.scalars[0] = 0.1;  // negative slope
        return out.add_node(leaky, inputs, attrs);
    });
}

std::size_t count_ops(const Graph& graph, const std::string& name) {
    std::size_t count = 0;
    for (const Node& node : graph.nodes()) {
        count += name == node.op->info.name ? 1 : 0;
    }
    return count;
}

}  // namespace

TEST_SUITE("passes") {
    TEST_CASE("a pass replaces relu by leaky_relu") {
        Generator generator(1);
        nn::Sequential model{std::make_shared<nn::Linear>(3, 5, generator), std::make_shared<nn::ReLU>(),
                             std::make_shared<nn::Linear>(5, 2, generator)};
        const Tensor x = uniform({4, 3}, -1, 1, generator);
        const Graph graph = capture(model, x);
        Graph leaky = relu_to_leaky_relu(graph);
        CHECK(count_ops(leaky, "relu") == 0);
        CHECK(count_ops(leaky, "leaky_relu") == 1);
        // The rewritten graph computes what the eager model with LeakyReLU computes.
        nn::Sequential expected{model.named_children()[0].second, std::make_shared<nn::LeakyReLU>(0.1),
                                model.named_children()[2].second};
        CHECK(xt::allclose(leaky.forward({x})[0].values<float>(), expected(x).values<float>()));
    }

    TEST_CASE("dead code elimination drops unused work") {
        Generator generator(2);
        const Tensor example = uniform({3}, -1, 1, generator, Dtype::float64);
        const Graph graph = capture(
            [](const std::vector<Tensor>& in) {
                const Tensor unused = exp(in[0]) * 3.0;
                const Tensor used = tanh(in[0]);
                return std::vector<Tensor>{used, unused * 0.0 + used};
            },
            {example});
        // Keep only the first output, then clean up.
        Graph first = graph;
        first.set_outputs({graph.outputs()[0]});
        const Graph cleaned = eliminate_dead_code(first);
        CHECK(cleaned.nodes().size() == 1);
        CHECK(cleaned.inputs().size() == 1);
        Graph replay = cleaned;
        CHECK(replay.forward({example})[0].values<double>() == tanh(example).values<double>());
    }

    TEST_CASE("constant folding computes constant subexpressions once") {
        Generator generator(3);
        const Tensor table = uniform({4}, 0, 1, generator, Dtype::float64);
        const Tensor example = uniform({4}, -1, 1, generator, Dtype::float64);
        const Graph graph = capture(
            [&](const std::vector<Tensor>& in) {
                return std::vector<Tensor>{in[0] * exp(table * 2.0)};  // exp(table * 2) is constant
            },
            {example});
        CHECK(graph.nodes().size() == 3);
        Graph folded = fold_constants(graph);
        CHECK(folded.nodes().size() == 1);
        CHECK(count_ops(folded, "mul") == 1);
        CHECK(testing::all_close(folded.forward({example})[0].values<double>(),
                                 (example * exp(table * 2.0)).values<double>(), 1e-15));
    }

    TEST_CASE("passes compose") {
        Generator generator(4);
        const Tensor example = uniform({2, 3}, -1, 1, generator, Dtype::float64);
        const Graph graph = capture(
            [](const std::vector<Tensor>& in) { return std::vector<Tensor>{relu(in[0]) + 1.0 * 2.0}; },
            {example});
        const Pass pipeline = compose({relu_to_leaky_relu, fold_constants, eliminate_dead_code});
        const Graph result = pipeline(graph);
        CHECK(count_ops(result, "leaky_relu") == 1);
    }

    TEST_CASE("find_op names the registered ops") {
        CHECK(std::string(find_op("matmul").info.name) == "matmul");
        CHECK_THROWS_WITH_AS(find_op("no_such_op"), doctest::Contains("find_op: no op named 'no_such_op'"),
                             value_error);
    }

    TEST_CASE("add_node runs the shape rule") {
        Graph graph;
        Value a;
        a.kind = ValueKind::input;
        a.name = "a";
        a.shape = {2, 3};
        a.dtype = Dtype::float32;
        const std::size_t id = graph.add_value(a);
        a.shape = {4, 5};
        a.name = "b";
        const std::size_t other = graph.add_value(a);
        CHECK_THROWS_WITH_AS(graph.add_node(find_op("matmul"), {id, other}),
                             doctest::Contains("matmul: inner dimensions differ"), shape_error);
    }
}

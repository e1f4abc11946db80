#include <memory>

#include "testing.hpp"

using namespace xgrad;

namespace {

// A custom model as docs/custom-models.md describes it: children registered
// in the constructor, a hand-written forward.
class TwoLayerNet : public nn::Module {
public:
    explicit TwoLayerNet(Generator& generator)
        : layers(register_module("layers", std::make_shared<nn::Sequential>(
                                               std::initializer_list<std::shared_ptr<nn::Module>>{
                                                   std::make_shared<nn::Linear>(4, 8, generator),
                                                   std::make_shared<nn::ReLU>(),
                                                   std::make_shared<nn::Linear>(8, 3, generator)}))),
          scale(register_buffer("scale", ones({3}))) {}

    Tensor forward(const Tensor& x) override { return layers->forward(x) * scale; }

    std::shared_ptr<nn::Sequential> layers;
    Tensor scale;
};

class NoForward : public nn::Module {};

class BadNames : public nn::Module {
public:
    void add_parameter(const std::string& name) { register_parameter(name, zeros({1})); }
};

}  // namespace

TEST_SUITE("module") {
    TEST_CASE("dotted parameter names") {
        Generator generator(1);
        TwoLayerNet model(generator);
        std::vector<std::string> names;
        for (const auto& entry : model.named_parameters()) {
            // Named copies, not structured bindings: clang 14 cannot capture
            // those in the lambdas of CAPTURE and the checks below.
            const auto& name = std::get<0>(entry);
            const auto& tensor = std::get<1>(entry);
            names.push_back(name);
            CHECK(tensor.requires_grad());
        }
        CHECK(names == std::vector<std::string>{"layers.0.weight", "layers.0.bias",
                                                "layers.2.weight", "layers.2.bias"});
        CHECK(model.named_parameters(false).empty());
        CHECK(model.named_buffers().size() == 1);
        CHECK(model.named_buffers()[0].first == "scale");
        CHECK(model.parameter_count() == 4 * 8 + 8 + 8 * 3 + 3);
    }

    TEST_CASE("state_dict holds parameters and buffers") {
        Generator generator(1);
        TwoLayerNet model(generator);
        const auto state = model.state_dict();
        CHECK(state.size() == 5);
        CHECK(state.back().first == "scale");
        CHECK(state[0].second.id() == model.parameters()[0].id());
    }

    TEST_CASE("train and eval reach every child") {
        Generator generator(1);
        TwoLayerNet model(generator);
        CHECK(model.is_training());
        model.eval();
        CHECK_FALSE(model.is_training());
        CHECK_FALSE((*model.layers)[0].is_training());
        model.train();
        CHECK((*model.layers)[2].is_training());
    }

    TEST_CASE("zero_grad drops every gradient") {
        Generator generator(1);
        TwoLayerNet model(generator);
        sum(model(zeros({2, 4}) + 1.0)).backward();
        for (const Tensor& parameter : model.parameters()) {
            CHECK(parameter.grad().defined());
        }
        model.zero_grad();
        for (const Tensor& parameter : model.parameters()) {
            CHECK_FALSE(parameter.grad().defined());
        }
    }

    TEST_CASE("prints as a tree") {
        Generator generator(1);
        TwoLayerNet model(generator);
        CHECK(model.to_string() ==
              "TwoLayerNet(\n"
              "  (layers): Sequential(\n"
              "    (0): Linear(in=4, out=8, bias=true)\n"
              "    (1): ReLU()\n"
              "    (2): Linear(in=8, out=3, bias=true)\n"
              "  )\n"
              ")");
        CHECK(nn::Dropout(0.25).describe() == "Dropout(p=0.250000)");
    }

    TEST_CASE("invalid registrations") {
        BadNames module;
        module.add_parameter("w");
        CHECK_THROWS_WITH_AS(module.add_parameter("w"), doctest::Contains("the name 'w' is already registered"),
                             value_error);
        CHECK_THROWS_WITH_AS(module.add_parameter("a.b"), doctest::Contains("invalid name 'a.b'"),
                             value_error);
        CHECK_THROWS_WITH_AS(module.add_parameter(""), doctest::Contains("invalid name ''"), value_error);
    }

    TEST_CASE("forward without override") {
        NoForward module;
        CHECK_THROWS_WITH_AS(module(zeros({1})),
                             doctest::Contains("NoForward: forward(const Tensor&) is not implemented"),
                             not_implemented);
    }

    TEST_CASE("load_state_dict copies values") {
        Generator a(1);
        Generator b(2);
        TwoLayerNet source(a);
        TwoLayerNet target(b);
        const Tensor x = uniform({5, 4}, -1, 1, a);
        target.load_state_dict(source.state_dict());
        CHECK(target(x).values<float>() == source(x).values<float>());
        // The values were copied, not shared.
        CHECK(target.parameters()[0].id() != source.parameters()[0].id());
    }

    TEST_CASE("load_state_dict lists every mismatch and changes nothing") {
        Generator a(1);
        Generator b(2);
        TwoLayerNet model(a);
        TwoLayerNet other(b);
        const xt::xarray<float> before = model.parameters()[0].values<float>();

        nn::NamedTensors state = other.state_dict();
        state.erase(state.begin() + 1);                   // drop layers.0.bias
        state[0].second = zeros({8, 5});                  // wrong shape
        state[1].second = zeros({3, 8}, Dtype::float64);  // wrong dtype
        state.emplace_back("extra", zeros({1}));
        try {
            model.load_state_dict(state);
            FAIL("load_state_dict accepted a mismatched state");
        } catch (const value_error& error) {
            const std::string message = error.what();
            CHECK(message.find("missing 'layers.0.bias'") != std::string::npos);
            CHECK(message.find("'layers.0.weight' is float32 (8, 5) in the state but float32 (8, 4)") !=
                  std::string::npos);
            CHECK(message.find("'layers.2.weight' is float64 (3, 8)") != std::string::npos);
            CHECK(message.find("unexpected 'extra'") != std::string::npos);
        }
        CHECK(model.parameters()[0].values<float>() == before);
    }
}

TEST_SUITE("module") {
    TEST_CASE("shared children are listed once") {
        Generator generator(3);
        auto shared = std::make_shared<nn::Linear>(2, 2, generator);
        nn::Sequential model{shared, std::make_shared<nn::Tanh>(), shared};
        CHECK(model.parameters().size() == 2);
        CHECK(model.named_parameters()[0].first == "0.weight");
        optim::SGD optimizer(model.parameters(), {.lr = 0.1});
        CHECK(optimizer.parameters().size() == 2);
    }
}

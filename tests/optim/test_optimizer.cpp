// Behaviour shared by every optimizer: parameter groups, zero_grad, skipping
// parameters without a gradient, argument checks and printing.

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "testing.hpp"
#include "xgrad/optim.hpp"

using namespace xgrad;
using namespace xgrad::optim;
using xgrad::testing::values;

namespace {

Tensor parameter(xt::xarray<double> value) {
    Tensor x(std::move(value));
    x.requires_grad_(true);
    return x;
}

std::vector<std::string> names_of(const StateDict& state) {
    std::vector<std::string> names;
    for (const auto& entry : state) {
        names.push_back(entry.first);
    }
    return names;
}

}  // namespace

TEST_SUITE("optimizer") {
    TEST_CASE("param groups override lr and decay") {
        Tensor w = parameter({1.0, -2.0});
        Tensor b = parameter({0.5});
        SGD optimizer(std::vector<ParamGroup>{{.params = {w}},
                                              {.params = {b}, .lr = 0.01, .weight_decay = 0.5}},
                      {.lr = 0.1});
        REQUIRE(optimizer.param_groups().size() == 2);
        CHECK(optimizer.param_groups()[0].lr == 0.1);
        CHECK(optimizer.param_groups()[0].weight_decay == 0.0);
        CHECK(optimizer.param_groups()[1].lr == 0.01);
        CHECK(optimizer.param_groups()[1].weight_decay == 0.5);

        w.set_grad(Tensor(xt::xarray<double>{1.0, 1.0}));
        b.set_grad(Tensor(xt::xarray<double>{2.0}));
        optimizer.step();
        CHECK(testing::all_close(values(w), {1.0 - 0.1, -2.0 - 0.1}));
        CHECK(testing::all_close(values(b), {0.5 - 0.01 * (2.0 + 0.5 * 0.5)}));

        SUBCASE("a changed group lr applies at the next step") {
            optimizer.param_groups()[1].lr = 0.1;
            const double before = values(b)(0);
            optimizer.step();
            CHECK(values(b)(0) == doctest::Approx(before - 0.1 * (2.0 + 0.5 * before)));
        }
    }

    TEST_CASE("zero_grad drops every gradient") {
        Tensor w = parameter({1.0, 2.0});
        Tensor b = parameter({3.0});
        Adam optimizer(std::vector<ParamGroup>{{.params = {w}}, {.params = {b}}});
        w.set_grad(Tensor(xt::xarray<double>{1.0, 1.0}));
        b.set_grad(Tensor(xt::xarray<double>{1.0}));
        optimizer.zero_grad();
        CHECK_FALSE(w.grad().defined());
        CHECK_FALSE(b.grad().defined());

        // With every gradient dropped, a step changes nothing and creates no state.
        optimizer.step();
        CHECK(values(w) == xt::xarray<double>{1.0, 2.0});
        CHECK(names_of(optimizer.state_dict()) ==
              std::vector<std::string>{"param_groups.0.lr", "param_groups.0.weight_decay",
                                       "param_groups.1.lr", "param_groups.1.weight_decay"});
    }

    TEST_CASE("gradients from backward drive the step") {
        Tensor w = parameter({1.0, -1.0});
        SGD optimizer(std::vector<Tensor>{w}, {.lr = 0.25});
        sum(w * w).backward();  // gradient 2 w
        optimizer.step();
        CHECK(values(w) == xt::xarray<double>{0.5, -0.5});
    }

    TEST_CASE("parameters without gradient are skipped") {
        Tensor w = parameter({1.0, 2.0});
        Tensor b = parameter({3.0});
        Adam optimizer(std::vector<Tensor>{w, b}, {.lr = 0.1});
        w.set_grad(Tensor(xt::xarray<double>{1.0, -1.0}));
        optimizer.step();
        CHECK(values(b) == xt::xarray<double>{3.0});
        CHECK(values(w)(0) == doctest::Approx(0.9));

        const std::vector<std::string> names = names_of(optimizer.state_dict());
        CHECK(std::find(names.begin(), names.end(), "state.0.step") != names.end());
        CHECK(std::find(names.begin(), names.end(), "state.1.step") == names.end());
    }

    TEST_CASE("add_param_group appends parameters") {
        Tensor w = parameter({1.0});
        Tensor b = parameter({2.0});
        SGD optimizer(std::vector<Tensor>{w}, {.lr = 0.5});
        optimizer.add_param_group({.params = {b}, .lr = 0.25});
        REQUIRE(optimizer.param_groups().size() == 2);
        CHECK(optimizer.param_groups()[1].lr == 0.25);
        CHECK(optimizer.parameters().size() == 2);
        CHECK(optimizer.parameters()[1].id() == b.id());

        b.set_grad(Tensor(xt::xarray<double>{1.0}));
        optimizer.step();
        CHECK(values(b) == xt::xarray<double>{1.75});
        CHECK_THROWS_WITH_AS(optimizer.add_param_group({.params = {w}}),
                             doctest::Contains("SGD: parameter 2 (param group 2) is the same "
                                               "tensor as parameter 0"),
                             value_error);
    }

    TEST_CASE("invalid parameters are rejected") {
        Tensor w = parameter({1.0});
        SUBCASE("int64") {
            const Tensor labels(xt::xarray<std::int64_t>{1, 2});
            CHECK_THROWS_WITH_AS(SGD(std::vector<Tensor>{w, labels}),
                                 doctest::Contains("SGD: parameter 1 (param group 0) has dtype "
                                                   "int64; optimizers update float32 and "
                                                   "float64 tensors only"),
                                 value_error);
        }
        SUBCASE("not requiring grad") {
            const Tensor frozen(xt::xarray<double>{1.0});
            CHECK_THROWS_WITH_AS(Adam(std::vector<Tensor>{frozen}),
                                 doctest::Contains("Adam: parameter 0 (param group 0) does not "
                                                   "require grad"),
                                 value_error);
        }
        SUBCASE("not a leaf") {
            const Tensor doubled = w * 2.0;
            CHECK_THROWS_WITH_AS(RMSprop(std::vector<Tensor>{doubled}),
                                 doctest::Contains("RMSprop: parameter 0 (param group 0) is not "
                                                   "a leaf tensor"),
                                 value_error);
        }
        SUBCASE("undefined") {
            CHECK_THROWS_WITH_AS(Adagrad(std::vector<Tensor>{w, Tensor()}),
                                 doctest::Contains("Adagrad: parameter 1 (param group 0) is an "
                                                   "undefined tensor"),
                                 value_error);
        }
        SUBCASE("twice across groups") {
            CHECK_THROWS_WITH_AS(
                AdamW(std::vector<ParamGroup>{{.params = {w}}, {.params = {w}}}),
                doctest::Contains("AdamW: parameter 1 (param group 1) is the same tensor as "
                                  "parameter 0"),
                value_error);
        }
        SUBCASE("twice in one group") {
            Tensor b = parameter({2.0});
            CHECK_THROWS_WITH_AS(SGD(std::vector<Tensor>{w, b, w}),
                                 doctest::Contains("SGD: parameter 2 (param group 0) is the same "
                                                   "tensor as parameter 0"),
                                 value_error);
        }
        SUBCASE("empty list") {
            CHECK_THROWS_WITH_AS(SGD(std::vector<Tensor>{}),
                                 doctest::Contains("SGD: the parameter list is empty"),
                                 value_error);
            CHECK_THROWS_WITH_AS(SGD(std::vector<ParamGroup>{{.params = {}}}),
                                 doctest::Contains("SGD: the parameter list is empty"),
                                 value_error);
            CHECK_THROWS_WITH_AS(SGD(std::vector<ParamGroup>{}),
                                 doctest::Contains("SGD: the parameter list is empty"),
                                 value_error);
        }
    }

    TEST_CASE("invalid group overrides are rejected") {
        Tensor w = parameter({1.0});
        Tensor b = parameter({1.0});
        CHECK_THROWS_WITH_AS(
            SGD(std::vector<ParamGroup>{{.params = {w}}, {.params = {b}, .lr = -0.5}}),
            doctest::Contains("SGD: lr of param group 1 must be finite and >= 0, got -0.5"),
            value_error);
        CHECK_THROWS_WITH_AS(
            Adam(std::vector<ParamGroup>{{.params = {w}, .weight_decay = -1.0}}),
            doctest::Contains("Adam: weight_decay of param group 0 must be finite and >= 0, "
                              "got -1"),
            value_error);
    }

    TEST_CASE("step rejects invalid group lr") {
        Tensor w = parameter({1.0});
        Tensor b = parameter({2.0});
        SGD optimizer(std::vector<ParamGroup>{{.params = {w}}, {.params = {b}}}, {.lr = 0.1});
        w.set_grad(Tensor(xt::xarray<double>{1.0}));
        b.set_grad(Tensor(xt::xarray<double>{1.0}));
        optimizer.param_groups()[1].lr = std::nan("");
        CHECK_THROWS_WITH_AS(optimizer.step(),
                             doctest::Contains("SGD: lr of param group 1 must be finite and "
                                               ">= 0, got nan"),
                             value_error);
        CHECK(values(w) == xt::xarray<double>{1.0});
    }

    TEST_CASE("step rejects parameters added directly") {
        Tensor w = parameter({1.0});
        SGD optimizer(std::vector<Tensor>{w});
        optimizer.param_groups()[0].params.push_back(parameter({2.0}));
        CHECK_THROWS_WITH_AS(optimizer.step(),
                             doctest::Contains("SGD::step: the param groups contain 2 parameters, "
                                               "but the optimizer keeps state for 1; add "
                                               "parameters with add_param_group()"),
                             value_error);
    }

    TEST_CASE("step rejects resized parameter") {
        Tensor w = parameter({1.0, 2.0});
        Adam optimizer(std::vector<Tensor>{w});
        w.set_grad(Tensor(xt::xarray<double>{1.0, 1.0}));
        optimizer.step();
        {
            NoGradGuard no_grad;
            w.mutable_values<double>() = xt::xarray<double>{1.0, 2.0, 3.0};
        }
        w.zero_grad();
        w.set_grad(Tensor(xt::xarray<double>{1.0, 1.0, 1.0}));
        CHECK_THROWS_WITH_AS(optimizer.step(),
                             doctest::Contains("Adam::step: parameter 0 has shape (3) and dtype "
                                               "float64, but its state has shape (2)"),
                             shape_error);
    }

    TEST_CASE("invalid options name the option") {
        std::vector<Tensor> params{parameter({1.0})};
        SUBCASE("SGD") {
            CHECK_THROWS_WITH_AS(SGD(params, {.lr = -1.0}),
                                 doctest::Contains("SGD: lr must be finite and >= 0, got -1"),
                                 value_error);
            CHECK_THROWS_WITH_AS(SGD(params, {.momentum = -0.5}),
                                 doctest::Contains("SGD: momentum must be finite and >= 0, got "
                                                   "-0.5"),
                                 value_error);
            CHECK_THROWS_WITH_AS(SGD(params, {.dampening = std::nan("")}),
                                 doctest::Contains("SGD: dampening must be finite, got nan"),
                                 value_error);
            CHECK_THROWS_WITH_AS(SGD(params, {.weight_decay = -0.01}),
                                 doctest::Contains("SGD: weight_decay must be finite and >= 0, "
                                                   "got -0.01"),
                                 value_error);
            CHECK_THROWS_WITH_AS(SGD(params, {.nesterov = true}),
                                 doctest::Contains("SGD: nesterov requires momentum > 0 and "
                                                   "dampening == 0, got momentum 0"),
                                 value_error);
            CHECK_THROWS_WITH_AS(SGD(params, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                                 doctest::Contains("dampening 0.1"), value_error);
        }
        SUBCASE("Adam and AdamW") {
            CHECK_THROWS_WITH_AS(Adam(params, {.lr = -0.001}),
                                 doctest::Contains("Adam: lr must be finite and >= 0, got -0.001"),
                                 value_error);
            CHECK_THROWS_WITH_AS(Adam(params, {.betas = {1.0, 0.999}}),
                                 doctest::Contains("Adam: betas.first must be in [0, 1), got 1"),
                                 value_error);
            CHECK_THROWS_WITH_AS(Adam(params, {.betas = {0.9, -0.1}}),
                                 doctest::Contains("Adam: betas.second must be in [0, 1), got "
                                                   "-0.1"),
                                 value_error);
            CHECK_THROWS_WITH_AS(Adam(params, {.eps = -1e-8}),
                                 doctest::Contains("Adam: eps must be finite and >= 0, got -1e-08"),
                                 value_error);
            CHECK_THROWS_WITH_AS(Adam(params, {.weight_decay = -1.0}),
                                 doctest::Contains("Adam: weight_decay must be finite and >= 0"),
                                 value_error);
            CHECK_THROWS_WITH_AS(AdamW(params, {.betas = {0.9, 1.0}}),
                                 doctest::Contains("AdamW: betas.second must be in [0, 1), got 1"),
                                 value_error);
            CHECK_THROWS_WITH_AS(AdamW(params, {.weight_decay = std::nan("")}),
                                 doctest::Contains("AdamW: weight_decay must be finite and >= 0, "
                                                   "got nan"),
                                 value_error);
        }
        SUBCASE("RMSprop") {
            CHECK_THROWS_WITH_AS(RMSprop(params, {.lr = -0.01}),
                                 doctest::Contains("RMSprop: lr must be finite and >= 0"),
                                 value_error);
            CHECK_THROWS_WITH_AS(RMSprop(params, {.alpha = 1.5}),
                                 doctest::Contains("RMSprop: alpha must be in [0, 1], got 1.5"),
                                 value_error);
            CHECK_THROWS_WITH_AS(RMSprop(params, {.eps = -1.0}),
                                 doctest::Contains("RMSprop: eps must be finite and >= 0"),
                                 value_error);
            CHECK_THROWS_WITH_AS(RMSprop(params, {.weight_decay = -1.0}),
                                 doctest::Contains("RMSprop: weight_decay must be finite"),
                                 value_error);
            CHECK_THROWS_WITH_AS(RMSprop(params, {.momentum = -0.9}),
                                 doctest::Contains("RMSprop: momentum must be finite and >= 0, "
                                                   "got -0.9"),
                                 value_error);
        }
        SUBCASE("Adagrad") {
            CHECK_THROWS_WITH_AS(Adagrad(params, {.lr = -0.1}),
                                 doctest::Contains("Adagrad: lr must be finite and >= 0"),
                                 value_error);
            CHECK_THROWS_WITH_AS(Adagrad(params, {.lr_decay = -0.1}),
                                 doctest::Contains("Adagrad: lr_decay must be finite and >= 0, "
                                                   "got -0.1"),
                                 value_error);
            CHECK_THROWS_WITH_AS(Adagrad(params, {.weight_decay = -0.1}),
                                 doctest::Contains("Adagrad: weight_decay must be finite"),
                                 value_error);
            CHECK_THROWS_WITH_AS(Adagrad(params, {.initial_accumulator_value = -1.0}),
                                 doctest::Contains("Adagrad: initial_accumulator_value must be "
                                                   "finite and >= 0, got -1"),
                                 value_error);
            CHECK_THROWS_WITH_AS(Adagrad(params, {.eps = std::numeric_limits<double>::infinity()}),
                                 doctest::Contains("Adagrad: eps must be finite and >= 0, got inf"),
                                 value_error);
        }
    }

    TEST_CASE("optimizers print their options") {
        std::vector<Tensor> params{parameter({1.0})};
        const auto printed = [](const Optimizer& optimizer) {
            std::ostringstream out;
            out << optimizer;
            return out.str();
        };
        CHECK(printed(SGD(params, {.lr = 0.1, .momentum = 0.9})) ==
              "SGD(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=false)");
        CHECK(printed(Adam(params)) ==
              "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, amsgrad=false)");
        CHECK(printed(AdamW(params, {.amsgrad = true})) ==
              "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, amsgrad=true)");
        CHECK(printed(RMSprop(params)) ==
              "RMSprop(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0, momentum=0, "
              "centered=false)");
        CHECK(printed(Adagrad(params)) ==
              "Adagrad(lr=0.01, lr_decay=0, weight_decay=0, initial_accumulator_value=0, "
              "eps=1e-10)");
    }
}

// Checkpoints through state_dict() and load_state_dict(), and a step that
// allocates nothing once the state exists, for every optimizer.

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "testing.hpp"
#include "xgrad/optim.hpp"

using namespace xgrad;
using namespace xgrad::optim;
using xgrad::testing::values;

// Counts every allocation in this test executable, including those made
// inside libxgrad, so that a test can check that a step allocates nothing.
// xtensor's containers allocate through std::allocator (xsimd is off), so
// tensor buffers are counted too.
namespace {
std::atomic<std::size_t> allocation_count{0};
}  // namespace

void* operator new(std::size_t size) {
    ++allocation_count;
    if (void* memory = std::malloc(size == 0 ? 1 : size)) {
        return memory;
    }
    throw std::bad_alloc();
}

// g++ cannot see that the operator new above allocates with malloc, so it
// would warn that free() receives memory from operator new.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* memory) noexcept {
    std::free(memory);
}
void operator delete(void* memory, std::size_t /*size*/) noexcept {
    std::free(memory);
}
#pragma GCC diagnostic pop

namespace {

Tensor parameter(xt::xarray<double> value) {
    Tensor x(std::move(value));
    x.requires_grad_(true);
    return x;
}

Tensor parameter_like(const Tensor& source) {
    Tensor x = source.clone();
    x.requires_grad_(true);
    return x;
}

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

// One configuration per optimizer with every state buffer in use.
const std::vector<std::pair<const char*, Factory>>& optimizers_with_all_buffers() {
    static const std::vector<std::pair<const char*, Factory>> factories = {
        {"SGD",
         [](std::vector<Tensor> params) -> std::unique_ptr<Optimizer> {
             return std::make_unique<SGD>(
                 std::move(params),
                 SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true});
         }},
        {"Adam",
         [](std::vector<Tensor> params) -> std::unique_ptr<Optimizer> {
             return std::make_unique<Adam>(
                 std::move(params), AdamOptions{.lr = 0.1, .weight_decay = 0.1, .amsgrad = true});
         }},
        {"AdamW",
         [](std::vector<Tensor> params) -> std::unique_ptr<Optimizer> {
             return std::make_unique<AdamW>(std::move(params),
                                            AdamWOptions{.lr = 0.1, .amsgrad = true});
         }},
        {"RMSprop",
         [](std::vector<Tensor> params) -> std::unique_ptr<Optimizer> {
             return std::make_unique<RMSprop>(
                 std::move(params),
                 RMSpropOptions{
                     .lr = 0.01, .weight_decay = 0.1, .momentum = 0.5, .centered = true});
         }},
        {"Adagrad",
         [](std::vector<Tensor> params) -> std::unique_ptr<Optimizer> {
             return std::make_unique<Adagrad>(std::move(params),
                                              AdagradOptions{.lr = 0.1,
                                                             .lr_decay = 0.1,
                                                             .weight_decay = 0.1,
                                                             .initial_accumulator_value = 0.5});
         }},
    };
    return factories;
}

Tensor of_dtype(const xt::xarray<double>& values, Dtype dtype) {
    if (dtype == Dtype::float32) {
        return Tensor(xt::xarray<float>(xt::cast<float>(values)));
    }
    return Tensor(values);
}

// Checks that two state dicts hold the same names and bitwise equal tensors.
void check_same_state(const StateDict& actual, const StateDict& expected) {
    REQUIRE(actual.size() == expected.size());
    for (std::size_t k = 0; k < actual.size(); ++k) {
        INFO("entry ", expected[k].first);
        CHECK(actual[k].first == expected[k].first);
        CHECK(actual[k].second.dtype() == expected[k].second.dtype());
        CHECK(actual[k].second.shape() == expected[k].second.shape());
        CHECK(to_string(actual[k].second) == to_string(expected[k].second));
        if (expected[k].second.dtype() != Dtype::int64) {
            CHECK(actual[k].second.to_xarray<double>() == expected[k].second.to_xarray<double>());
        }
    }
}

std::vector<std::string> names_of(const StateDict& state) {
    std::vector<std::string> names;
    for (const auto& entry : state) {
        names.push_back(entry.first);
    }
    return names;
}

}  // namespace

TEST_SUITE("optimizer state") {
    TEST_CASE("state_dict names and values") {
        Tensor w = parameter({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
        Tensor b = parameter({0.5, -0.5});
        Adam optimizer(std::vector<ParamGroup>{{.params = {w}}, {.params = {b}, .lr = 0.01}},
                       {.amsgrad = true});
        w.set_grad(Tensor(xt::xarray<double>{{1.0, 1.0, 1.0}, {1.0, 1.0, 1.0}}));
        b.set_grad(Tensor(xt::xarray<double>{1.0, -1.0}));
        optimizer.step();
        b.zero_grad();
        optimizer.step();

        const StateDict state = optimizer.state_dict();
        CHECK(names_of(state) == std::vector<std::string>{
                                     "param_groups.0.lr",
                                     "param_groups.0.weight_decay",
                                     "param_groups.1.lr",
                                     "param_groups.1.weight_decay",
                                     "state.0.step",
                                     "state.0.exp_avg",
                                     "state.0.exp_avg_sq",
                                     "state.0.max_exp_avg_sq",
                                     "state.1.step",
                                     "state.1.exp_avg",
                                     "state.1.exp_avg_sq",
                                     "state.1.max_exp_avg_sq",
                                 });
        CHECK(state[0].second.dtype() == Dtype::float64);
        CHECK(state[0].second.item() == 0.001);
        CHECK(state[2].second.item() == 0.01);
        CHECK(state[4].second.dtype() == Dtype::int64);
        CHECK(state[4].second.shape() == Shape{});
        CHECK(state[4].second.item() == 2.0);
        CHECK(state[8].second.item() == 1.0);
        CHECK(state[5].second.shape() == w.shape());
        CHECK(state[9].second.shape() == b.shape());
        // exp_avg of b after one step: (1 - 0.9) g
        CHECK(testing::all_close(values(state[9].second), {0.1, -0.1}, 1e-15));

        SUBCASE("the entries are copies") {
            const xt::xarray<double> saved = values(state[5].second);
            w.set_grad(Tensor(xt::xarray<double>{{1.0, 1.0, 1.0}, {1.0, 1.0, 1.0}}));
            optimizer.step();
            CHECK(values(state[5].second) == saved);
        }
    }

    TEST_CASE("state_dict round trip continues bitwise") {
        const xt::xarray<double> initial_w = {{0.5, -1.0, 1.5}, {-0.25, 2.0, 0.75}};
        const xt::xarray<double> initial_b = {0.125, -0.5, 1.0};
        const xt::xarray<double> grad_w[3] = {{{0.25, -0.5, 1.0}, {2.0, -0.125, 0.0}},
                                              {{-0.75, 0.5, 0.25}, {1.5, 0.375, -1.0}},
                                              {{0.5, 1.25, -0.25}, {-2.0, 0.0625, 0.5}}};
        const xt::xarray<double> grad_b = {1.0, -2.0, 0.5};

        for (const auto& entry : optimizers_with_all_buffers()) {

            // Named copies, not structured bindings: clang 14 cannot capture

            // those in the lambdas of CAPTURE and the checks below.

            const auto& name = std::get<0>(entry);

            const auto& make = std::get<1>(entry);
            for (const Dtype dtype : {Dtype::float32, Dtype::float64}) {
                INFO(name, " in ", dtype_name(dtype));
                Tensor w = of_dtype(initial_w, dtype).requires_grad_(true);
                Tensor b = of_dtype(initial_b, dtype).requires_grad_(true);
                const std::unique_ptr<Optimizer> original = make({w, b});
                w.set_grad(of_dtype(grad_w[0], dtype));
                b.set_grad(of_dtype(grad_b, dtype));
                original->step();
                b.zero_grad();
                w.set_grad(of_dtype(grad_w[1], dtype));
                original->step();

                Tensor w_copy = parameter_like(w);
                Tensor b_copy = parameter_like(b);
                const std::unique_ptr<Optimizer> restored = make({w_copy, b_copy});
                restored->load_state_dict(original->state_dict());
                check_same_state(restored->state_dict(), original->state_dict());

                for (Tensor* param : {&w, &w_copy}) {
                    param->set_grad(of_dtype(grad_w[2], dtype));
                }
                for (Tensor* param : {&b, &b_copy}) {
                    param->set_grad(of_dtype(grad_b, dtype));
                }
                original->step();
                restored->step();
                CHECK(w_copy.to_xarray<double>() == w.to_xarray<double>());
                CHECK(b_copy.to_xarray<double>() == b.to_xarray<double>());
                check_same_state(restored->state_dict(), original->state_dict());
            }
        }
    }

    TEST_CASE("loading restores group hyperparameters") {
        Tensor w = parameter({1.0});
        SGD source(std::vector<Tensor>{w}, {.lr = 0.5, .weight_decay = 0.25});
        Tensor w_copy = parameter({1.0});
        SGD target(std::vector<Tensor>{w_copy}, {.lr = 0.1});
        target.load_state_dict(source.state_dict());
        CHECK(target.param_groups()[0].lr == 0.5);
        CHECK(target.param_groups()[0].weight_decay == 0.25);
    }

    TEST_CASE("loading drops state missing from checkpoint") {
        Tensor w = parameter({1.0, 2.0});
        SGD trained(std::vector<Tensor>{w}, {.lr = 0.1, .momentum = 0.9});
        w.set_grad(Tensor(xt::xarray<double>{1.0, 1.0}));
        trained.step();
        trained.step();

        Tensor w_fresh = parameter({1.0, 2.0});
        SGD fresh(std::vector<Tensor>{w_fresh}, {.lr = 0.1, .momentum = 0.9});
        trained.load_state_dict(fresh.state_dict());
        CHECK(names_of(trained.state_dict()).size() == 2);

        // The next step is a first step again: the momentum buffer restarts at the gradient.
        const double before = values(w)(0);
        trained.step();
        CHECK(values(w)(0) == doctest::Approx(before - 0.1));
    }

    TEST_CASE("load_state_dict lists every mismatch") {
        Tensor w = parameter({{1.0, 2.0}, {3.0, 4.0}});
        Tensor b = parameter({1.0, 2.0, 3.0});
        Adam source(std::vector<Tensor>{w, b}, {.amsgrad = true});
        w.set_grad(Tensor(xt::xarray<double>{{1.0, 1.0}, {1.0, 1.0}}));
        b.set_grad(Tensor(xt::xarray<double>{1.0, 1.0, 1.0}));
        source.step();

        StateDict state = source.state_dict();
        const auto find = [&state](const std::string& name) -> Tensor& {
            for (auto& entry : state) {
                if (entry.first == name) {
                    return entry.second;
                }
            }
            FAIL("no entry ", name);
            throw std::logic_error("unreachable");
        };
        find("param_groups.0.lr") = scalar(-1.0, Dtype::float64);
        find("state.0.step") = scalar(1.0, Dtype::float64);
        find("state.1.exp_avg") = zeros({2}, Dtype::float64);
        find("state.1.exp_avg_sq") = zeros({3}, Dtype::float32);
        std::erase_if(state, [](const auto& entry) { return entry.first == "state.0.exp_avg_sq"; });
        state.emplace_back("state.0.momentum_buffer", zeros({2, 2}, Dtype::float64));
        state.emplace_back("state.2.step", scalar(1.0, Dtype::int64));
        state.emplace_back("state.1.step", scalar(1.0, Dtype::int64));
        state.emplace_back("epoch", scalar(3.0, Dtype::int64));

        Tensor w_target = parameter({{0.0, 0.0}, {0.0, 0.0}});
        Tensor b_target = parameter({0.0, 0.0, 0.0});
        Adam target(std::vector<Tensor>{w_target, b_target}, {.amsgrad = true});
        w_target.set_grad(Tensor(xt::xarray<double>{{2.0, 2.0}, {2.0, 2.0}}));
        target.step();
        const StateDict before = target.state_dict();

        const char* expected_problems[] = {
            "Adam::load_state_dict: 9 problems, nothing was loaded:",
            "'param_groups.0.lr' is -1, expected a finite value >= 0",
            "'state.0.step' has shape () and dtype float64, expected shape () and dtype int64",
            "missing entry 'state.0.exp_avg_sq'",
            "'state.1.exp_avg' has shape (2) and dtype float64, expected shape (3) and dtype "
            "float64",
            "'state.1.exp_avg_sq' has shape (3) and dtype float32, expected shape (3) and dtype "
            "float64",
            "unexpected entry 'state.0.momentum_buffer' (the optimizer has 2 parameters, and "
            "Adam with these options keeps step and exp_avg, exp_avg_sq, max_exp_avg_sq for each)",
            "unexpected entry 'state.2.step'",
            "duplicate entry 'state.1.step'",
            "unexpected entry 'epoch'",
        };
        for (const char* problem : expected_problems) {
            CHECK_THROWS_WITH_AS(target.load_state_dict(state), doctest::Contains(problem),
                                 value_error);
        }
        check_same_state(target.state_dict(), before);
    }

    TEST_CASE("step allocates nothing after first") {
        for (const auto& entry : optimizers_with_all_buffers()) {
            // Named copies, not structured bindings: clang 14 cannot capture
            // those in the lambdas of CAPTURE and the checks below.
            const auto& name = std::get<0>(entry);
            const auto& make = std::get<1>(entry);
            for (const Dtype dtype : {Dtype::float32, Dtype::float64}) {
                INFO(name, " in ", dtype_name(dtype));
                Tensor w = of_dtype({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, dtype).requires_grad_(true);
                Tensor b = of_dtype({1.0, -1.0}, dtype).requires_grad_(true);
                const std::unique_ptr<Optimizer> optimizer = make({w, b});
                w.set_grad(of_dtype({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, dtype));
                b.set_grad(of_dtype({0.5, 0.25}, dtype));
                optimizer->step();

                const std::size_t before = allocation_count.load();
                optimizer->step();
                optimizer->step();
                const std::size_t allocations = allocation_count.load() - before;
                CHECK(allocations == 0);
            }
        }
    }
}

// The snippets of docs/optimizers.md, compiled and run. Change both together.

#include <cmath>
#include <vector>

#include "testing.hpp"
#include "xgrad/optim.hpp"

using namespace xgrad;

TEST_SUITE("optimizer docs") {
    TEST_CASE("training loop fits a line") {
        // --- snippet: training loop ---
        // Data: y = 2 x - 1 at 64 points.
        Generator generator(0);
        const Tensor x = uniform({64, 1}, -1.0, 1.0, generator);
        const Tensor y = x * 2.0 - 1.0;

        // A linear model y = x Wᵀ + b.
        Tensor weight = zeros({1, 1});
        Tensor bias = zeros({1});
        weight.requires_grad_(true);
        bias.requires_grad_(true);

        optim::SGD optimizer({weight, bias}, {.lr = 0.1, .momentum = 0.9});
        optim::StepLR scheduler(optimizer, /*step_size=*/50, /*gamma=*/0.5);

        for (int epoch = 0; epoch < 200; ++epoch) {
            optimizer.zero_grad();
            const Tensor loss = mse_loss(linear(x, weight, bias), y);
            loss.backward();
            optim::clip_grad_norm_(optimizer.parameters(), /*max_norm=*/1.0);
            optimizer.step();
            scheduler.step();
        }
        // --- end snippet ---

        CHECK(weight.item() == doctest::Approx(2.0).epsilon(1e-4));
        CHECK(bias.item() == doctest::Approx(-1.0).epsilon(1e-4));
        CHECK(scheduler.get_last_lr()[0] == doctest::Approx(0.1 / 16));
    }

    TEST_CASE("parameter groups and checkpoints") {
        Tensor weight = zeros({2, 3});
        Tensor bias = zeros({2});
        weight.requires_grad_(true);
        bias.requires_grad_(true);

        // --- snippet: parameter groups ---
        optim::AdamW optimizer(
            std::vector<optim::ParamGroup>{
                {.params = {weight}},  // lr 3e-4 and weight decay 0.01
                {.params = {bias}, .lr = 1e-3, .weight_decay = 0.0},
            },
            {.lr = 3e-4});
        // --- end snippet ---

        CHECK(optimizer.param_groups()[0].lr == 3e-4);
        CHECK(optimizer.param_groups()[0].weight_decay == 0.01);
        CHECK(optimizer.param_groups()[1].lr == 1e-3);
        CHECK(optimizer.param_groups()[1].weight_decay == 0.0);

        weight.set_grad(ones({2, 3}));
        bias.set_grad(ones({2}));
        optimizer.step();

        Tensor weight_copy = weight.clone();
        Tensor bias_copy = bias.clone();
        weight_copy.requires_grad_(true);
        bias_copy.requires_grad_(true);
        optim::AdamW restored(
            std::vector<optim::ParamGroup>{{.params = {weight_copy}}, {.params = {bias_copy}}},
            {.lr = 3e-4});

        // --- snippet: checkpoint ---
        const optim::StateDict checkpoint = optimizer.state_dict();
        // ... later, with an optimizer of the same type and options over
        // parameters of the same shapes and dtypes:
        restored.load_state_dict(checkpoint);
        // --- end snippet ---

        CHECK(restored.param_groups()[1].lr == 1e-3);
        CHECK(restored.param_groups()[1].weight_decay == 0.0);
        CHECK(restored.state_dict().size() == checkpoint.size());
    }
}

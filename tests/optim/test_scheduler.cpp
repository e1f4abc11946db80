// Each scheduler against its closed form, written out here, for several
// epochs and two param groups with different base learning rates.

#include <cmath>
#include <functional>
#include <numbers>
#include <vector>

#include "testing.hpp"
#include "xgrad/optim.hpp"

using namespace xgrad;
using namespace xgrad::optim;

namespace {

Tensor parameter(xt::xarray<double> value) {
    Tensor x(std::move(value));
    x.requires_grad_(true);
    return x;
}

// An optimizer with two groups, of base lr 0.1 and 0.02.
struct TwoGroups {
    Tensor w = parameter({1.0, 2.0});
    Tensor b = parameter({3.0});
    SGD optimizer{std::vector<ParamGroup>{{.params = {w}}, {.params = {b}, .lr = 0.02}},
                  {.lr = 0.1}};
};

// Checks the learning rates of epochs 0 to `epochs` against `expected(base_lr, epoch)`.
void check_schedule(TwoGroups& fixture, LRScheduler& scheduler, int epochs,
                    const std::function<double(double, int)>& expected) {
    for (int epoch = 0; epoch <= epochs; ++epoch) {
        INFO("epoch ", epoch);
        if (epoch > 0) {
            scheduler.step();
        }
        CHECK(scheduler.last_epoch() == epoch);
        const std::vector<double>& lrs = scheduler.get_last_lr();
        REQUIRE(lrs.size() == 2);
        CHECK(lrs[0] == doctest::Approx(expected(0.1, epoch)).epsilon(1e-14));
        CHECK(lrs[1] == doctest::Approx(expected(0.02, epoch)).epsilon(1e-14));
        CHECK(fixture.optimizer.param_groups()[0].lr == lrs[0]);
        CHECK(fixture.optimizer.param_groups()[1].lr == lrs[1]);
    }
}

}  // namespace

TEST_SUITE("scheduler") {
    TEST_CASE("StepLR") {
        TwoGroups fixture;
        StepLR scheduler(fixture.optimizer, /*step_size=*/3, /*gamma=*/0.5);
        CHECK(scheduler.base_lrs() == std::vector<double>{0.1, 0.02});
        check_schedule(fixture, scheduler, 8, [](double base_lr, int epoch) {
            return base_lr * std::pow(0.5, epoch / 3);
        });
    }

    TEST_CASE("StepLR default gamma") {
        TwoGroups fixture;
        StepLR scheduler(fixture.optimizer, /*step_size=*/1);
        check_schedule(fixture, scheduler, 3,
                       [](double base_lr, int epoch) { return base_lr * std::pow(0.1, epoch); });
    }

    TEST_CASE("ExponentialLR") {
        TwoGroups fixture;
        ExponentialLR scheduler(fixture.optimizer, /*gamma=*/0.9);
        check_schedule(fixture, scheduler, 6,
                       [](double base_lr, int epoch) { return base_lr * std::pow(0.9, epoch); });
    }

    TEST_CASE("CosineAnnealingLR") {
        TwoGroups fixture;
        CosineAnnealingLR scheduler(fixture.optimizer, /*t_max=*/4, /*eta_min=*/0.001);
        // Past t_max the closed form rises again, so epoch 8 is back at the base lr.
        check_schedule(fixture, scheduler, 8, [](double base_lr, int epoch) {
            return 0.001 +
                   (base_lr - 0.001) * (1.0 + std::cos(std::numbers::pi * epoch / 4.0)) / 2.0;
        });
        CHECK(scheduler.get_last_lr()[0] == doctest::Approx(0.1));
    }

    TEST_CASE("CosineAnnealingLR reaches eta_min at t_max") {
        TwoGroups fixture;
        CosineAnnealingLR scheduler(fixture.optimizer, /*t_max=*/2);
        scheduler.step();
        CHECK(scheduler.get_last_lr()[0] == doctest::Approx(0.05));
        scheduler.step();
        CHECK(scheduler.get_last_lr()[0] == doctest::Approx(0.0));
    }

    TEST_CASE("LinearWarmup") {
        TwoGroups fixture;
        LinearWarmup scheduler(fixture.optimizer, /*start_factor=*/0.25, /*end_factor=*/1.0,
                               /*total_iters=*/4);
        check_schedule(fixture, scheduler, 7, [](double base_lr, int epoch) {
            const double progress = std::min(epoch, 4) / 4.0;
            return base_lr * (0.25 + (1.0 - 0.25) * progress);
        });
    }

    TEST_CASE("LinearWarmup defaults and decay") {
        SUBCASE("defaults: from a third of the base lr over 5 epochs") {
            TwoGroups fixture;
            LinearLR scheduler(fixture.optimizer);
            check_schedule(fixture, scheduler, 6, [](double base_lr, int epoch) {
                const double progress = std::min(epoch, 5) / 5.0;
                return base_lr * (1.0 / 3.0 + (1.0 - 1.0 / 3.0) * progress);
            });
        }
        SUBCASE("end_factor below start_factor") {
            TwoGroups fixture;
            LinearWarmup scheduler(fixture.optimizer, 1.0, 0.5, 2);
            check_schedule(fixture, scheduler, 3, [](double base_lr, int epoch) {
                return base_lr * (1.0 - 0.5 * std::min(epoch, 2) / 2.0);
            });
        }
    }

    TEST_CASE("optimizer uses scheduled lr") {
        TwoGroups fixture;
        StepLR scheduler(fixture.optimizer, /*step_size=*/1, /*gamma=*/0.5);
        scheduler.step();
        fixture.w.set_grad(Tensor(xt::xarray<double>{1.0, 1.0}));
        fixture.optimizer.step();
        CHECK(testing::values(fixture.w) == xt::xarray<double>{1.0 - 0.05, 2.0 - 0.05});
    }

    TEST_CASE("a scheduler overrides other lr changes") {
        TwoGroups fixture;
        ExponentialLR scheduler(fixture.optimizer, 0.5);
        fixture.optimizer.param_groups()[0].lr = 7.0;
        scheduler.step();
        CHECK(fixture.optimizer.param_groups()[0].lr == 0.05);
    }

    TEST_CASE("resume by stepping a fresh scheduler") {
        TwoGroups trained;
        CosineAnnealingLR schedule(trained.optimizer, 10);
        for (int epoch = 0; epoch < 3; ++epoch) {
            schedule.step();
        }
        const StateDict checkpoint = trained.optimizer.state_dict();

        // The recipe from scheduler.hpp: scheduler first, then the state, then one
        // step() per finished epoch.
        TwoGroups resumed;
        CosineAnnealingLR resumed_schedule(resumed.optimizer, 10);
        resumed.optimizer.load_state_dict(checkpoint);
        for (int epoch = 0; epoch < 3; ++epoch) {
            resumed_schedule.step();
        }
        CHECK(resumed_schedule.get_last_lr() == schedule.get_last_lr());
        CHECK(resumed.optimizer.param_groups()[1].lr == trained.optimizer.param_groups()[1].lr);
    }

    TEST_CASE("a group added later is rejected") {
        TwoGroups fixture;
        ExponentialLR scheduler(fixture.optimizer, 0.5);
        fixture.optimizer.add_param_group({.params = {parameter({1.0})}});
        CHECK_THROWS_WITH_AS(scheduler.step(),
                             doctest::Contains("ExponentialLR: the optimizer has 3 param groups, "
                                               "but the scheduler was constructed with 2"),
                             value_error);
    }

    TEST_CASE("invalid scheduler arguments") {
        TwoGroups fixture;
        Optimizer& optimizer = fixture.optimizer;

        SUBCASE("StepLR") {
            CHECK_THROWS_WITH_AS(StepLR(optimizer, 0),
                                 doctest::Contains("StepLR: step_size must be >= 1, got 0"),
                                 value_error);
            CHECK_THROWS_WITH_AS(StepLR(optimizer, 2, -0.5),
                                 doctest::Contains("StepLR: gamma must be finite and >= 0, got "
                                                   "-0.5"),
                                 value_error);
        }
        SUBCASE("ExponentialLR") {
            CHECK_THROWS_WITH_AS(ExponentialLR(optimizer, std::nan("")),
                                 doctest::Contains("ExponentialLR: gamma must be finite and >= 0, "
                                                   "got nan"),
                                 value_error);
        }
        SUBCASE("CosineAnnealingLR") {
            CHECK_THROWS_WITH_AS(CosineAnnealingLR(optimizer, 0),
                                 doctest::Contains("CosineAnnealingLR: t_max must be >= 1, got 0"),
                                 value_error);
            CHECK_THROWS_WITH_AS(CosineAnnealingLR(optimizer, 10, -1.0),
                                 doctest::Contains("CosineAnnealingLR: eta_min must be finite and "
                                                   ">= 0, got -1"),
                                 value_error);
        }
        SUBCASE("LinearWarmup") {
            CHECK_THROWS_WITH_AS(LinearWarmup(optimizer, 0.0),
                                 doctest::Contains("LinearWarmup: start_factor must be in (0, 1], "
                                                   "got 0"),
                                 value_error);
            CHECK_THROWS_WITH_AS(LinearWarmup(optimizer, 0.5, 1.5),
                                 doctest::Contains("LinearWarmup: end_factor must be in [0, 1], "
                                                   "got 1.5"),
                                 value_error);
            CHECK_THROWS_WITH_AS(LinearWarmup(optimizer, 0.5, 1.0, 0),
                                 doctest::Contains("LinearWarmup: total_iters must be >= 1, got 0"),
                                 value_error);
        }

        // A rejected scheduler leaves the learning rates alone.
        CHECK(optimizer.param_groups()[0].lr == 0.1);
        CHECK(optimizer.param_groups()[1].lr == 0.02);
    }
}

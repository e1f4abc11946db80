#include "distributed_testing.hpp"

using namespace xgrad;
using xgrad::testing::max_parameter_difference;
using xgrad::testing::small_mlp;
using xgrad::testing::world_context;

namespace {

// A module with a float32 parameter, a float64 parameter and an int64
// buffer, filled with `value`.
class Mixed : public nn::Module {
public:
    explicit Mixed(double value) {
        single = register_parameter("single", full({3}, value, Dtype::float32));
        pair = register_parameter("pair", full({2, 2}, value, Dtype::float64));
        count = register_buffer("count", full({}, value, Dtype::int64));
    }
    std::string type_name() const override { return "Mixed"; }

    Tensor single;
    Tensor pair;
    Tensor count;
};

// A module whose parameter shape depends on `extent`.
class Sized : public nn::Module {
public:
    explicit Sized(std::size_t extent) {
        register_parameter("weight", zeros({extent}, Dtype::float64));
    }
    std::string type_name() const override { return "Sized"; }
};

}  // namespace

TEST_SUITE("distributed parameters") {
    TEST_CASE("broadcast copies rank 0's parameters") {
        const auto& context = world_context();
        auto model = small_mlp(100 + context.rank());
        const auto expected = small_mlp(100);
        const Tensor first_weight = model->parameters()[0];

        distributed::broadcast_parameters(context, *model);
        CHECK(max_parameter_difference(*model, *expected) == 0.0);
        // The values change in place, so a handle that an optimizer keeps
        // reads the new values.
        CHECK(first_weight.values<double>()(0, 0) ==
              expected->parameters()[0].values<double>()(0, 0));
    }

    TEST_CASE("broadcast from the last rank with tiny buckets") {
        const auto& context = world_context();
        const std::size_t last = context.size() - 1;
        Mixed model(static_cast<double>(context.rank()) + 1.0);
        distributed::broadcast_parameters(context, model, last, 8);
        const double expected = static_cast<double>(last) + 1.0;
        CHECK(model.single.values<float>()(2) == static_cast<float>(expected));
        CHECK(model.pair.values<double>()(1, 1) == expected);
        CHECK(model.count.values<std::int64_t>()() == static_cast<std::int64_t>(expected));
    }

    TEST_CASE("broadcast rejects a root out of range") {
        const auto& context = world_context();
        auto model = small_mlp(1);
        CHECK_THROWS_WITH_AS(distributed::broadcast_parameters(context, *model, context.size()),
                             doctest::Contains("broadcast_parameters: root must be a rank below"),
                             value_error);
    }

    TEST_CASE("average with equal weights is the mean") {
        // Every value of rank r is r + 1, so the mean is (N + 1) / 2. The int64
        // buffer rounds it to the nearest integer.
        const auto& context = world_context();
        const double n = static_cast<double>(context.size());
        Mixed model(static_cast<double>(context.rank()) + 1.0);
        distributed::average_parameters(context, model);
        CHECK(model.single.values<float>()(0) == doctest::Approx((n + 1.0) / 2.0));
        CHECK(model.pair.values<double>()(0, 1) == doctest::Approx((n + 1.0) / 2.0).epsilon(1e-15));
        CHECK(model.count.values<std::int64_t>()() == std::llround((n + 1.0) / 2.0));
    }

    TEST_CASE("average weights each rank") {
        // Rank r sends r + 1 with weight r + 1: sum (r+1)^2 / sum (r+1)
        // = (2N + 1) / 3.
        const auto& context = world_context();
        const double n = static_cast<double>(context.size());
        const double value = static_cast<double>(context.rank()) + 1.0;
        Mixed model(value);
        distributed::average_parameters(context, model, value, 16);
        CHECK(model.pair.values<double>()(1, 0) ==
              doctest::Approx((2.0 * n + 1.0) / 3.0).epsilon(1e-15));
        CHECK(model.single.values<float>()(1) == doctest::Approx((2.0 * n + 1.0) / 3.0));
    }

    TEST_CASE("average rejects a bad weight on every rank") {
        const auto& context = world_context();
        Mixed model(static_cast<double>(context.rank()) + 1.0);
        // Only the last rank passes a negative weight, yet every rank throws
        // and no rank is left waiting.
        const double weight = context.rank() + 1 == context.size() ? -1.0 : 1.0;
        CHECK_THROWS_WITH_AS(distributed::average_parameters(context, model, weight),
                             doctest::Contains("negative or non-finite weight"), value_error);
        CHECK(model.pair.values<double>()(0, 0) == static_cast<double>(context.rank()) + 1.0);
        CHECK_THROWS_WITH_AS(distributed::average_parameters(context, model, 0.0),
                             doctest::Contains("weights of all"), value_error);
    }

    TEST_CASE("ranks with different models throw together") {
        const auto& context = world_context();
        Sized model(context.rank() == 0 ? 4 : 5);
        if (context.size() == 1) {
            CHECK_NOTHROW(distributed::average_parameters(context, model));
        } else {
            CHECK_THROWS_WITH_AS(distributed::average_parameters(context, model),
                                 doctest::Contains("rank 0 has 1 tensors of 4 elements, rank 1 "
                                                   "has 1 tensors of 5 elements"),
                                 distributed_error);
            CHECK_THROWS_AS(distributed::broadcast_parameters(context, model), distributed_error);
        }
    }
}

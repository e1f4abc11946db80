#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_away_from_zero;
using xgrad::testing::random_input;
using xgrad::testing::values;

namespace {

// Shape pairs exercising NumPy broadcasting: equal shapes, a size-1 dimension
// stretched on each side, a missing leading dimension and a scalar.
const std::vector<std::pair<Shape, Shape>> kBroadcastCases = {
    {{3, 4}, {3, 4}}, {{3, 1, 4}, {2, 1}}, {{4}, {3, 4}}, {{2, 3}, {}}, {{1, 3}, {2, 1}},
};

template <class F>
void check_binary(F op, double low = -2.0, double high = 2.0) {
    std::uint64_t seed = 100;
    for (const auto& entry : kBroadcastCases) {
        // Named copies, not structured bindings: clang 14 cannot capture
        // those in the lambdas of CAPTURE and the checks below.
        const auto& a = std::get<0>(entry);
        const auto& b = std::get<1>(entry);
        CAPTURE(shape_string(a));
        CAPTURE(shape_string(b));
        CHECK_GRADCHECK([op](const auto& in) { return op(in[0], in[1]); },
                        {random_input(a, seed, low, high), random_input(b, seed + 1, low, high)});
        seed += 2;
    }
}

}  // namespace

TEST_SUITE("binary") {
    TEST_CASE("add gradient") { check_binary([](auto& a, auto& b) { return add(a, b); }); }
    TEST_CASE("sub gradient") { check_binary([](auto& a, auto& b) { return sub(a, b); }); }
    TEST_CASE("mul gradient") { check_binary([](auto& a, auto& b) { return mul(a, b); }); }

    TEST_CASE("div gradient") {
        std::uint64_t seed = 200;
        for (const auto& entry : kBroadcastCases) {
            // Named copies, not structured bindings: clang 14 cannot capture
            // those in the lambdas of CAPTURE and the checks below.
            const auto& a = std::get<0>(entry);
            const auto& b = std::get<1>(entry);
            CHECK_GRADCHECK([](const auto& in) { return div(in[0], in[1]); },
                            {random_input(a, seed), random_away_from_zero(b, seed + 1, 0.5)});
            seed += 2;
        }
    }

    // Random inputs tie with probability zero, so these checks stay away from
    // the kink; the tie convention has its own test below.
    TEST_CASE("maximum gradient") { check_binary([](auto& a, auto& b) { return maximum(a, b); }); }
    TEST_CASE("minimum gradient") { check_binary([](auto& a, auto& b) { return minimum(a, b); }); }

    TEST_CASE("maximum and minimum split ties") {
        Tensor a(xt::xarray<double>{1.0, 2.0, 3.0});
        Tensor b(xt::xarray<double>{2.0, 2.0, 1.0});
        a.requires_grad_(true);
        b.requires_grad_(true);
        sum(maximum(a, b) + 2.0 * minimum(a, b)).backward();
        // maximum: b wins, tie, a wins. minimum (weight 2): a wins, tie, b wins.
        CHECK(values(a.grad()) == xt::xarray<double>{2.0, 1.5, 1.0});
        CHECK(values(b.grad()) == xt::xarray<double>{1.0, 1.5, 2.0});
    }

    TEST_CASE("where gradient") {
        const Tensor condition(xt::xarray<double>{{1.0, 0.0, 1.0}, {0.0, 0.0, 1.0}});
        CHECK_GRADCHECK([&](const auto& in) { return where(condition, in[0], in[1]); },
                        {random_input({2, 3}, 300), random_input({3}, 301)});
        const Tensor labels = reshape(Tensor(xt::xarray<std::int64_t>{1, 0}), {2, 1});
        CHECK_GRADCHECK([&](const auto& in) { return where(labels, in[0], in[1]); },
                        {random_input({1, 3}, 302), random_input({2, 3}, 303)});
    }

    TEST_CASE("where selects values") {
        const Tensor condition(xt::xarray<std::int64_t>{1, 0, 2});
        const Tensor a(xt::xarray<double>{1.0, 2.0, 3.0});
        const Tensor b(xt::xarray<double>{-1.0, -2.0, -3.0});
        CHECK(values(where(condition, a, b)) == xt::xarray<double>{1.0, -2.0, 3.0});
    }

    TEST_CASE("scalar operators") {
        const Tensor x(xt::xarray<float>{1.0f, 2.0f});
        CHECK((x + 1.0).values<float>() == xt::xarray<float>{2.0f, 3.0f});
        CHECK((1.0 - x).values<float>() == xt::xarray<float>{0.0f, -1.0f});
        CHECK((x * 3.0).values<float>() == xt::xarray<float>{3.0f, 6.0f});
        CHECK((2.0 / x).values<float>() == xt::xarray<float>{2.0f, 1.0f});
        CHECK((x / 2.0).dtype() == Dtype::float32);
    }

    TEST_CASE("broadcast error names op and shapes") {
        const Tensor a = zeros({2, 3});
        const Tensor b = zeros({4, 3});
        CHECK_THROWS_WITH_AS(
            add(a, b),
            doctest::Contains("add: shapes cannot be broadcast together: a has shape (2, 3), b has shape (4, 3)"),
            shape_error);
        CHECK_THROWS_WITH_AS(mul(a, zeros({2})), doctest::Contains("mul:"), shape_error);
    }

    TEST_CASE("dtype mismatch is rejected") {
        CHECK_THROWS_WITH_AS(add(zeros({2}, Dtype::float32), zeros({2}, Dtype::float64)),
                             doctest::Contains("add: inputs have different dtypes"), value_error);
    }

    TEST_CASE("gradient of broadcast input is summed") {
        Tensor a(xt::xarray<double>{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
        Tensor b(xt::xarray<double>{10.0, 20.0, 30.0});
        a.requires_grad_(true);
        b.requires_grad_(true);
        sum(a * b).backward();
        CHECK(values(b.grad()) == xt::xarray<double>{5.0, 7.0, 9.0});
        CHECK(values(a.grad()) == xt::xarray<double>{{10.0, 20.0, 30.0}, {10.0, 20.0, 30.0}});
    }
}

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_input;
using xgrad::testing::values;

namespace {

struct ReduceCase {
    Axes axes;
    bool keepdims;
};

const std::vector<ReduceCase> kCases = {
    {{}, false}, {{}, true}, {{0}, false}, {{1}, true}, {{-1}, false}, {{0, 2}, true}, {{2, 0}, false},
};

template <class F>
void check_reduction(F reduce) {
    std::uint64_t seed = 10;
    for (const auto& entry : kCases) {
        const auto& axes = entry.axes;
        const bool keepdims = entry.keepdims;
        CAPTURE(keepdims);
        CAPTURE(axes.size());
        CHECK_GRADCHECK([&](const auto& in) { return reduce(in[0], axes, keepdims); },
                        {random_input({3, 1, 4}, seed++)});
    }
}

}  // namespace

TEST_SUITE("reduce") {
    TEST_CASE("sum gradient") {
        check_reduction([](auto& x, auto& axes, bool keep) { return sum(x, axes, keep); });
    }

    TEST_CASE("mean gradient") {
        check_reduction([](auto& x, auto& axes, bool keep) { return mean(x, axes, keep); });
    }

    TEST_CASE("max gradient") {
        check_reduction([](auto& x, auto& axes, bool keep) { return max(x, axes, keep); });
    }

    TEST_CASE("min gradient") {
        check_reduction([](auto& x, auto& axes, bool keep) { return min(x, axes, keep); });
    }

    TEST_CASE("output shapes") {
        const Tensor x = zeros({2, 3, 4});
        CHECK(sum(x).shape() == Shape{});
        CHECK(sum(x, {1}).shape() == Shape{2, 4});
        CHECK(sum(x, {1}, true).shape() == Shape{2, 1, 4});
        CHECK(mean(x, {-1, 0}).shape() == Shape{3});
        CHECK(max(x, {}, true).shape() == Shape{1, 1, 1});
    }

    TEST_CASE("hand-computed values") {
        const Tensor x(xt::xarray<double>{{1.0, 5.0, 3.0}, {4.0, 2.0, 6.0}});
        CHECK(values(sum(x, {0})) == xt::xarray<double>{5.0, 7.0, 9.0});
        CHECK(values(mean(x, {1})) == xt::xarray<double>{3.0, 4.0});
        CHECK(values(max(x, {1})) == xt::xarray<double>{5.0, 6.0});
        CHECK(values(min(x)) == xt::xarray<double>(1.0));
        CHECK(argmax(x).values<std::int64_t>() == xt::xarray<std::int64_t>{1, 2});
        CHECK(argmax(x, 0).values<std::int64_t>() == xt::xarray<std::int64_t>{1, 0, 1});
    }

    TEST_CASE("max splits the gradient among ties") {
        Tensor x(xt::xarray<double>{{3.0, 1.0, 3.0}, {2.0, 2.0, 2.0}});
        x.requires_grad_(true);
        sum(max(x, {1})).backward();
        CHECK(testing::all_close(values(x.grad()),
                                 xt::xarray<double>{{0.5, 0.0, 0.5}, {1.0 / 3, 1.0 / 3, 1.0 / 3}}));
    }

    TEST_CASE("invalid axes") {
        const Tensor x = zeros({2, 3});
        CHECK_THROWS_WITH_AS(sum(x, {2}), doctest::Contains("sum: axis 2 is out of range"), value_error);
        CHECK_THROWS_WITH_AS(mean(x, {0, -2}), doctest::Contains("mean: an axis appears twice"),
                             value_error);
        CHECK_THROWS_WITH_AS(max(zeros({0, 3}), {0}), doctest::Contains("max: cannot reduce over zero"),
                             value_error);
    }
}

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_input;
using xgrad::testing::values;

TEST_SUITE("index") {
    TEST_CASE("slice gradient") {
        CHECK_GRADCHECK([](const auto& in) { return slice(in[0], 1, 1, 4); },
                        {random_input({2, 5, 3}, 1)});
        CHECK_GRADCHECK([](const auto& in) { return slice(in[0], 0, -4, 7, 2); },
                        {random_input({7, 2}, 2)});
        CHECK_GRADCHECK([](const auto& in) { return slice(in[0], -1, 0, 1); },
                        {random_input({3, 4}, 3)});
    }

    TEST_CASE("slice follows Python rules") {
        const Tensor x(xt::xarray<double>{0.0, 1.0, 2.0, 3.0, 4.0});
        CHECK(values(slice(x, 0, 1, 4)) == xt::xarray<double>{1.0, 2.0, 3.0});
        CHECK(values(slice(x, 0, -2)) == xt::xarray<double>{3.0, 4.0});
        CHECK(values(slice(x, 0, 0, 100, 2)) == xt::xarray<double>{0.0, 2.0, 4.0});
        CHECK(slice(x, 0, 3, 1).shape() == Shape{0});
        CHECK(slice(x, 0, -100, 2).shape() == Shape{2});
        CHECK_THROWS_WITH_AS(slice(x, 0, 0, 3, 0), doctest::Contains("slice: step must be positive"),
                             value_error);
    }

    TEST_CASE("index_select gradient") {
        const Tensor index(xt::xarray<std::int64_t>{2, 0, 2, 1});
        CHECK_GRADCHECK([&](const auto& in) { return index_select(in[0], 1, index); },
                        {random_input({2, 3, 2}, 4)});
        CHECK_GRADCHECK([&](const auto& in) { return index_select(in[0], 0, index); },
                        {random_input({3, 2}, 5)});
    }

    TEST_CASE("index_select sums repeated rows") {
        Tensor x(xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}});
        x.requires_grad_(true);
        const Tensor y = index_select(x, 0, Tensor(xt::xarray<std::int64_t>{1, 1, 0}));
        CHECK(values(y) == xt::xarray<double>{{3.0, 4.0}, {3.0, 4.0}, {1.0, 2.0}});
        sum(y).backward();
        CHECK(values(x.grad()) == xt::xarray<double>{{1.0, 1.0}, {2.0, 2.0}});
    }

    TEST_CASE("gather gradient") {
        const Tensor index(xt::xarray<std::int64_t>{{0, 2}, {1, 1}, {2, 0}});
        CHECK_GRADCHECK([&](const auto& in) { return gather(in[0], 1, index); },
                        {random_input({3, 4}, 6)});
        const Tensor rows(xt::xarray<std::int64_t>{{2, 0, 1}});
        CHECK_GRADCHECK([&](const auto& in) { return gather(in[0], 0, rows); },
                        {random_input({3, 3}, 7)});
    }

    TEST_CASE("gather values") {
        const Tensor x(xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}});
        const Tensor index(xt::xarray<std::int64_t>{{0, 0}, {1, 0}});
        CHECK(values(gather(x, 1, index)) == xt::xarray<double>{{1.0, 1.0}, {4.0, 3.0}});
        CHECK(values(gather(x, 0, index)) == xt::xarray<double>{{1.0, 2.0}, {3.0, 2.0}});
    }

    TEST_CASE("index errors") {
        const Tensor x = zeros({3, 2});
        CHECK_THROWS_WITH_AS(index_select(x, 0, Tensor(xt::xarray<std::int64_t>{0, 3})),
                             doctest::Contains("index_select: index 3 at position 1 is out of range"),
                             value_error);
        CHECK_THROWS_WITH_AS(index_select(x, 0, Tensor(xt::xarray<std::int64_t>{-1})),
                             doctest::Contains("index_select: index -1"), value_error);
        CHECK_THROWS_WITH_AS(index_select(x, 0, zeros({1})),
                             doctest::Contains("index_select: the index must be an int64 tensor"),
                             value_error);
        CHECK_THROWS_WITH_AS(gather(x, 1, Tensor(xt::xarray<std::int64_t>{0})),
                             doctest::Contains("gather: the index has shape (1)"), shape_error);
    }
}

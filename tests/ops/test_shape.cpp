#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_input;
using xgrad::testing::values;

TEST_SUITE("shape") {
    TEST_CASE("reshape gradient") {
        CHECK_GRADCHECK([](const auto& in) { return reshape(in[0], {4, -1}); },
                        {random_input({2, 3, 2}, 1)});
        CHECK_GRADCHECK([](const auto& in) { return reshape(in[0], {1, 6, 1}); },
                        {random_input({6}, 2)});
    }

    TEST_CASE("reshape infers one extent") {
        CHECK(reshape(zeros({2, 3, 4}), {-1, 4}).shape() == Shape{6, 4});
        CHECK(flatten(zeros({5, 2, 3})).shape() == Shape{5, 6});
        CHECK(flatten(zeros({5, 2, 3}), 0).shape() == Shape{30});
        CHECK_THROWS_WITH_AS(reshape(zeros({2, 3}), {4, 2}),
                             doctest::Contains("reshape: cannot reshape a tensor of shape (2, 3)"),
                             shape_error);
        CHECK_THROWS_WITH_AS(reshape(zeros({2, 3}), {4, -1}), doctest::Contains("reshape:"),
                             shape_error);
        CHECK_THROWS_WITH_AS(reshape(zeros({2, 3}), {-2, 3}), doctest::Contains("reshape:"),
                             value_error);
    }

    TEST_CASE("permute gradient") {
        CHECK_GRADCHECK([](const auto& in) { return permute(in[0], {2, 0, 1}); },
                        {random_input({2, 3, 4}, 3)});
        CHECK_GRADCHECK([](const auto& in) { return transpose(in[0]); }, {random_input({3, 5}, 4)});
        CHECK_GRADCHECK([](const auto& in) { return transpose(in[0], 0, 2); },
                        {random_input({2, 1, 3}, 5)});
    }

    TEST_CASE("permute values") {
        const Tensor x(xt::xarray<double>{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
        CHECK(values(transpose(x)) == xt::xarray<double>{{1.0, 4.0}, {2.0, 5.0}, {3.0, 6.0}});
        CHECK(permute(zeros({2, 3, 4}), {-1, 0, 1}).shape() == Shape{4, 2, 3});
        CHECK_THROWS_WITH_AS(permute(x, {0, 0}), doctest::Contains("permute: axis 0 appears twice"),
                             value_error);
        CHECK_THROWS_WITH_AS(permute(x, {0}), doctest::Contains("permute: expected 2 axes"),
                             value_error);
    }

    TEST_CASE("concat gradient") {
        CHECK_GRADCHECK([](const auto& in) { return concat({in[0], in[1], in[2]}, 1); },
                        {random_input({2, 1, 3}, 6), random_input({2, 4, 3}, 7),
                         random_input({2, 2, 3}, 8)});
        CHECK_GRADCHECK([](const auto& in) { return concat({in[0], in[1]}, -1); },
                        {random_input({3, 2}, 9), random_input({3, 1}, 10)});
    }

    TEST_CASE("concat values and errors") {
        const Tensor a(xt::xarray<double>{{1.0, 2.0}});
        const Tensor b(xt::xarray<double>{{3.0, 4.0}, {5.0, 6.0}});
        CHECK(values(concat({a, b})) == xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}});
        CHECK_THROWS_WITH_AS(concat({a, b}, 1),
                             doctest::Contains("concat: input 1 has shape (2, 2), which differs"),
                             shape_error);
        const Tensor labels(xt::xarray<std::int64_t>{1, 2});
        CHECK(concat({labels, labels}).values<std::int64_t>() ==
              xt::xarray<std::int64_t>{1, 2, 1, 2});
    }

    TEST_CASE("stack gradient") {
        for (std::int64_t axis : {0, 1, 2, -1}) {
            CAPTURE(axis);
            CHECK_GRADCHECK([axis](const auto& in) { return stack({in[0], in[1]}, axis); },
                            {random_input({2, 3}, 11), random_input({2, 3}, 12)});
        }
    }

    TEST_CASE("stack values and errors") {
        const Tensor a(xt::xarray<double>{1.0, 2.0});
        const Tensor b(xt::xarray<double>{3.0, 4.0});
        CHECK(values(stack({a, b}, 1)) == xt::xarray<double>{{1.0, 3.0}, {2.0, 4.0}});
        CHECK(stack({scalar(1.0), scalar(2.0)}).shape() == Shape{2});
        CHECK_THROWS_WITH_AS(stack({a, zeros({3}, Dtype::float64)}),
                             doctest::Contains("stack: input 1 has shape (3)"), shape_error);
    }
}

#include <cmath>
#include <limits>

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_input;
using xgrad::testing::values;

namespace {

// Gradient of sum(f(x)) at the given points.
template <class F>
xt::xarray<double> grad_at(F f, xt::xarray<double> at) {
    Tensor x(std::move(at));
    x.requires_grad_(true);
    sum(f(x)).backward();
    return values(x.grad());
}

// x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] as a (1, 1, 3, 3) tensor.
Tensor three_by_three() {
    return Tensor(xt::xarray<double>{{{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}, {7.0, 8.0, 9.0}}}});
}

}  // namespace

TEST_SUITE("pool") {
    TEST_CASE("max_pool2d gradient") {
        // Random inputs have no ties, so each window's maximum is unique and
        // central differences see the same winner.
        SUBCASE("default stride") {
            CHECK_GRADCHECK(
                [](const auto& in) {
                    return max_pool2d(in[0], {.kernel = {2, 2}});
                },
                {random_input({2, 3, 4, 6}, 1)});
        }
        SUBCASE("default stride, odd height and width") {
            // The last row and column lie outside every window and get zero.
            CHECK_GRADCHECK(
                [](const auto& in) {
                    return max_pool2d(in[0], {.kernel = {2, 2}});
                },
                {random_input({2, 2, 5, 7}, 4)});
        }
        SUBCASE("stride and padding, non-square") {
            CHECK_GRADCHECK(
                [](const auto& in) {
                    return max_pool2d(
                        in[0], {.kernel = {3, 2}, .stride = Size2d{2, 1}, .padding = {1, 1}});
                },
                {random_input({2, 1, 7, 5}, 2)});
        }
        SUBCASE("overlapping windows") {
            CHECK_GRADCHECK(
                [](const auto& in) {
                    return max_pool2d(
                        in[0], {.kernel = {3, 3}, .stride = Size2d{1, 1}, .padding = {1, 1}});
                },
                {random_input({1, 2, 4, 3}, 3)});
        }
    }

    TEST_CASE("avg_pool2d gradient") {
        SUBCASE("default stride") {
            CHECK_GRADCHECK(
                [](const auto& in) {
                    return avg_pool2d(in[0], {.kernel = {2, 3}});
                },
                {random_input({2, 3, 5, 6}, 4)});
        }
        for (bool count_include_pad : {true, false}) {
            CAPTURE(count_include_pad);
            CHECK_GRADCHECK(
                [count_include_pad](const auto& in) {
                    return avg_pool2d(in[0], {.kernel = {3, 2},
                                              .stride = Size2d{2, 1},
                                              .padding = {1, 1},
                                              .count_include_pad = count_include_pad});
                },
                {random_input({2, 2, 6, 5}, 5)});
        }
    }

    TEST_CASE("global_avg_pool2d gradient") {
        CHECK_GRADCHECK([](const auto& in) { return global_avg_pool2d(in[0]); },
                        {random_input({3, 2, 4, 5}, 6)});
        CHECK_GRADCHECK([](const auto& in) { return global_avg_pool2d(in[0]); },
                        {random_input({1, 1, 1, 3}, 7)});
    }

    TEST_CASE("hand-computed pooling") {
        SUBCASE("max_pool2d") {
            const Tensor x(xt::xarray<double>{{{{1.0, 2.0, 3.0, 4.0},
                                                {5.0, 6.0, 7.0, 8.0},
                                                {9.0, 10.0, 11.0, 12.0},
                                                {13.0, 14.0, 15.0, 16.0}}}});
            CHECK(values(max_pool2d(x, {.kernel = {2, 2}})) ==
                  xt::xarray<double>{{{{6.0, 8.0}, {14.0, 16.0}}}});
            // Three rows of windows 1 apart, two columns 2 apart.
            CHECK(values(max_pool2d(x, {.kernel = {2, 2}, .stride = Size2d{1, 2}})) ==
                  xt::xarray<double>{{{{6.0, 8.0}, {10.0, 12.0}, {14.0, 16.0}}}});
        }
        SUBCASE("max_pool2d padding never wins") {
            // All inputs are negative. The top-left window contains only -1
            // and padding, so its maximum is -1, not 0.
            const Tensor x = -three_by_three();
            CHECK(values(max_pool2d(x, {.kernel = {2, 2}, .padding = {1, 1}})) ==
                  xt::xarray<double>{{{{-1.0, -2.0}, {-4.0, -5.0}}}});
        }
        SUBCASE("avg_pool2d with padding") {
            // Kernel 2, stride 2, padding 1 over the 3x3 input: the windows
            // contain {1}, {2, 3}, {4, 7} and {5, 6, 8, 9}, with sums 1, 5, 11
            // and 28. Counting the padding divides each by 4; otherwise by
            // the number of input elements: 1, 2, 2 and 4.
            const AvgPool2dParams params{.kernel = {2, 2}, .padding = {1, 1}};
            CHECK(values(avg_pool2d(three_by_three(), params)) ==
                  xt::xarray<double>{{{{0.25, 1.25}, {2.75, 7.0}}}});
            AvgPool2dParams exclude = params;
            exclude.count_include_pad = false;
            CHECK(values(avg_pool2d(three_by_three(), exclude)) ==
                  xt::xarray<double>{{{{1.0, 2.5}, {5.5, 7.0}}}});
        }
        SUBCASE("global_avg_pool2d") {
            const Tensor y = global_avg_pool2d(three_by_three());
            CHECK(y.shape() == Shape{1, 1});
            CHECK(values(y).flat(0) == 5.0);
        }
    }

    TEST_CASE("max_pool2d ties") {
        SUBCASE("all equal: the first element wins") {
            const auto grad = grad_at(
                [](const Tensor& x) {
                    return max_pool2d(x, {.kernel = {2, 2}});
                },
                xt::xarray<double>{{{{1.0, 1.0}, {1.0, 1.0}}}});
            CHECK(grad == xt::xarray<double>{{{{1.0, 0.0}, {0.0, 0.0}}}});
        }
        SUBCASE("row-major order across overlapping windows") {
            // Both 2x2 windows (columns 0-1 and 1-2) tie at 7. In row-major
            // order the first 7 of each is at row 0, column 1, so that
            // element gets both gradients. The other 7s get none.
            const auto grad = grad_at(
                [](const Tensor& x) {
                    return max_pool2d(x, {.kernel = {2, 2}, .stride = Size2d{1, 1}});
                },
                xt::xarray<double>{{{{1.0, 7.0, 7.0}, {7.0, 2.0, 7.0}}}});
            CHECK(grad == xt::xarray<double>{{{{0.0, 2.0, 0.0}, {0.0, 0.0, 0.0}}}});
        }
        SUBCASE("NaN wins, the last NaN takes the gradient") {
            const double nan = std::numeric_limits<double>::quiet_NaN();
            Tensor x(xt::xarray<double>{{{{1.0, nan}, {nan, 5.0}}}});
            x.requires_grad_(true);
            const Tensor y = max_pool2d(x, {.kernel = {2, 2}});
            CHECK(std::isnan(values(y).flat(0)));
            y.backward(ones_like(y));
            CHECK(values(x.grad()) == xt::xarray<double>{{{{0.0, 0.0}, {1.0, 0.0}}}});
        }
    }

    TEST_CASE("float32 pooling") {
        const Tensor x = to_dtype(three_by_three(), Dtype::float32);
        CHECK(max_pool2d(x, {.kernel = {2, 2}, .stride = Size2d{1, 1}}).values<float>() ==
              xt::xarray<float>{{{{5.0f, 6.0f}, {8.0f, 9.0f}}}});
        CHECK(avg_pool2d(x, {.kernel = {3, 3}}).values<float>().flat(0) == 5.0f);
        CHECK(global_avg_pool2d(x).values<float>().flat(0) == 5.0f);
    }

    TEST_CASE("pooling output shapes") {
        // The stride defaults to the kernel size, and floor mode drops the
        // partial last window.
        CHECK(max_pool2d(zeros({1, 1, 6, 4}), {.kernel = {3, 2}}).shape() == Shape{1, 1, 2, 2});
        CHECK(max_pool2d(zeros({2, 3, 7, 5}), {.kernel = {2, 2}}).shape() == Shape{2, 3, 3, 2});
        CHECK(avg_pool2d(zeros({2, 3, 7, 5}),
                         {.kernel = {3, 3}, .stride = Size2d{2, 2}, .padding = {1, 1}})
                  .shape() == Shape{2, 3, 4, 3});
        CHECK(global_avg_pool2d(zeros({4, 3, 2, 5})).shape() == Shape{4, 3});
        CHECK(max_pool2d(zeros({0, 3, 4, 4}), {.kernel = {2, 2}}).shape() == Shape{0, 3, 2, 2});
    }

    TEST_CASE("pooling errors") {
        const Tensor x = zeros({1, 2, 4, 4});
        CHECK_THROWS_WITH_AS(
            max_pool2d(x, {.kernel = {2, 2}, .padding = {2, 0}}),
            doctest::Contains("max_pool2d: padding (2, 0) must be at most half the "
                              "kernel size (2, 2)"),
            value_error);
        CHECK_THROWS_WITH_AS(
            max_pool2d(x, {.kernel = {5, 2}}),
            doctest::Contains("max_pool2d: the kernel is larger than the padded input: "
                              "input has shape (1, 2, 4, 4) and padding (0, 0), so the "
                              "padded height and width are (4, 4), but the kernel is (5, 2)"),
            shape_error);
        CHECK_THROWS_WITH_AS(
            max_pool2d(x, {.kernel = {0, 2}}),
            doctest::Contains("max_pool2d: kernel size must be positive, got (0, 2)"), value_error);
        CHECK_THROWS_WITH_AS(
            max_pool2d(x, {}),
            doctest::Contains("max_pool2d: kernel size must be positive, got (0, 0)"), value_error);
        CHECK_THROWS_WITH_AS(avg_pool2d(x, {.kernel = {2, 2}, .stride = Size2d{1, 0}}),
                             doctest::Contains("avg_pool2d: stride must be positive, got (1, 0)"),
                             value_error);
        CHECK_THROWS_WITH_AS(
            avg_pool2d(x, {.kernel = {2, 2}, .padding = {0, -1}}),
            doctest::Contains("avg_pool2d: padding must be non-negative, got (0, -1)"),
            value_error);
        CHECK_THROWS_WITH_AS(
            avg_pool2d(zeros({2, 4, 4}), {.kernel = {2, 2}}),
            doctest::Contains("avg_pool2d: input must have shape (N, C, H, W), got (2, 4, 4)"),
            shape_error);
        CHECK_THROWS_WITH_AS(
            global_avg_pool2d(zeros({2, 4})),
            doctest::Contains("global_avg_pool2d: input must have shape (N, C, H, W), got (2, 4)"),
            shape_error);
        CHECK_THROWS_WITH_AS(
            global_avg_pool2d(zeros({2, 4, 0, 3})),
            doctest::Contains("global_avg_pool2d: input has shape (2, 4, 0, 3); its "
                              "height and width must be positive"),
            shape_error);
        CHECK_THROWS_WITH_AS(max_pool2d(zeros({1, 1, 2, 2}, Dtype::int64), {.kernel = {2, 2}}),
                             doctest::Contains("max_pool2d:"), value_error);
    }
}

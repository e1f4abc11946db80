#include <cstdlib>

#include "testing.hpp"

using namespace xgrad;
using xgrad::testing::random_input;
using xgrad::testing::values;

namespace {

// Direct evaluation of the formula in conv.hpp, one output element at a
// time, as an independent reference for the im2col implementation.
xt::xarray<double> reference_conv2d(const xt::xarray<double>& x, const xt::xarray<double>& w,
                                    const xt::xarray<double>* b, const Conv2dParams& params) {
    const auto [stride_h, stride_w] = params.stride;
    const auto [pad_h, pad_w] = params.padding;
    const auto [dilation_h, dilation_w] = params.dilation;
    const auto height = static_cast<std::int64_t>(x.shape()[2]);
    const auto width = static_cast<std::int64_t>(x.shape()[3]);
    const auto kernel_h = static_cast<std::int64_t>(w.shape()[2]);
    const auto kernel_w = static_cast<std::int64_t>(w.shape()[3]);
    const std::int64_t out_h =
        (height + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
    const std::int64_t out_w = (width + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
    xt::xarray<double> y =
        xt::zeros<double>({x.shape()[0], w.shape()[0], static_cast<std::size_t>(out_h),
                           static_cast<std::size_t>(out_w)});
    for (std::size_t n = 0; n < y.shape()[0]; ++n) {
        for (std::size_t o = 0; o < y.shape()[1]; ++o) {
            for (std::int64_t i = 0; i < out_h; ++i) {
                for (std::int64_t j = 0; j < out_w; ++j) {
                    double total = b != nullptr ? (*b)(o) : 0.0;
                    for (std::size_t c = 0; c < x.shape()[1]; ++c) {
                        for (std::int64_t p = 0; p < kernel_h; ++p) {
                            for (std::int64_t q = 0; q < kernel_w; ++q) {
                                const std::int64_t row = i * stride_h - pad_h + p * dilation_h;
                                const std::int64_t column = j * stride_w - pad_w + q * dilation_w;
                                if (row < 0 || row >= height || column < 0 || column >= width) {
                                    continue;
                                }
                                total += w(o, c, p, q) * x(n, c, row, column);
                            }
                        }
                    }
                    y(n, o, i, j) = total;
                }
            }
        }
    }
    return y;
}

// x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] and w = [[1, 2], [3, 4]], each as
// an (N, C, H, W) tensor with N = C = 1.
Tensor three_by_three() {
    return Tensor(xt::xarray<double>{{{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}, {7.0, 8.0, 9.0}}}});
}

Tensor two_by_two_kernel() {
    return Tensor(xt::xarray<double>{{{{1.0, 2.0}, {3.0, 4.0}}}});
}

}  // namespace

TEST_SUITE("conv") {
    TEST_CASE("conv2d gradient") {
        SUBCASE("stride, padding and dilation, with bias") {
            const Conv2dParams params{.stride = {2, 1}, .padding = {1, 2}, .dilation = {2, 1}};
            CHECK_GRADCHECK(
                [params](const auto& in) { return conv2d(in[0], in[1], in[2], params); },
                {random_input({2, 3, 7, 6}, 1), random_input({4, 3, 3, 2}, 2),
                 random_input({4}, 3)});
        }
        SUBCASE("without bias, output width 1") {
            const Conv2dParams params{.stride = {1, 2}, .padding = {0, 1}, .dilation = {1, 2}};
            CHECK_GRADCHECK(
                [params](const auto& in) { return conv2d(in[0], in[1], Tensor(), params); },
                {random_input({1, 2, 5, 4}, 4), random_input({3, 2, 2, 3}, 5)});
        }
        SUBCASE("1x1 kernel without copies") {
            CHECK_GRADCHECK([](const auto& in) { return conv2d(in[0], in[1], in[2]); },
                            {random_input({2, 3, 4, 5}, 6), random_input({2, 3, 1, 1}, 7),
                             random_input({2}, 8)});
        }
        SUBCASE("1x1 kernel with stride") {
            const Conv2dParams params{.stride = {2, 3}};
            CHECK_GRADCHECK(
                [params](const auto& in) { return conv2d(in[0], in[1], Tensor(), params); },
                {random_input({2, 2, 5, 7}, 9), random_input({3, 2, 1, 1}, 10)});
        }
        SUBCASE("kernel as large as the padded input") {
            const Conv2dParams params{.padding = {1, 0}};
            CHECK_GRADCHECK(
                [params](const auto& in) { return conv2d(in[0], in[1], in[2], params); },
                {random_input({3, 1, 2, 3}, 11), random_input({2, 1, 4, 3}, 12),
                 random_input({2}, 13)});
        }
        SUBCASE("padding wider than the input") {
            // Width 1 with padding 2: the outer kernel columns read only
            // padding, so their taps have no valid output column.
            const Conv2dParams params{.padding = {0, 2}};
            CHECK_GRADCHECK(
                [params](const auto& in) { return conv2d(in[0], in[1], in[2], params); },
                {random_input({2, 2, 3, 1}, 16), random_input({2, 2, 2, 5}, 17),
                 random_input({2}, 18)});
        }
        SUBCASE("gradient of the input only") {
            Tensor weight = random_input({2, 3, 3, 3}, 15);
            weight.requires_grad_(false);
            CHECK_GRADCHECK(
                [weight](const auto& in) {
                    return conv2d(in[0], weight, Tensor(), {.padding = {1, 1}});
                },
                {random_input({1, 3, 4, 5}, 14)});
        }
    }

    TEST_CASE("hand-computed convolution") {
        SUBCASE("no padding, with bias") {
            // Each output is the dot product of w with one 2x2 window of x:
            //   1*1 + 2*2 + 3*4 + 4*5 = 37,  2*1 + 3*2 + 3*5 + 4*6 = 47,
            //   4*1 + 5*2 + 3*7 + 4*8 = 67,  5*1 + 6*2 + 3*8 + 4*9 = 77,
            // plus the bias 0.5.
            const Tensor y =
                conv2d(three_by_three(), two_by_two_kernel(), Tensor(xt::xarray<double>{0.5}));
            CHECK(values(y) == xt::xarray<double>{{{{37.5, 47.5}, {67.5, 77.5}}}});
        }
        SUBCASE("padding 1 and stride 2") {
            // The padded input is 5x5 and the windows start at padded rows
            // and columns 0 and 2. The top-left window covers only x[0][0],
            // under tap w[1][1]: 4 * 1 = 4. Top right: 3 * 2 + 4 * 3 = 18.
            // Bottom left: 2 * 4 + 4 * 7 = 36. Bottom right: the full window
            // 1 * 5 + 2 * 6 + 3 * 8 + 4 * 9 = 77.
            const Tensor y = conv2d(three_by_three(), two_by_two_kernel(), Tensor(),
                                    {.stride = {2, 2}, .padding = {1, 1}});
            CHECK(values(y) == xt::xarray<double>{{{{4.0, 18.0}, {36.0, 77.0}}}});
        }
        SUBCASE("dilation 2") {
            // The taps land on the corners: 1*1 + 2*3 + 3*7 + 4*9 = 64.
            const Tensor y =
                conv2d(three_by_three(), two_by_two_kernel(), Tensor(), {.dilation = {2, 2}});
            CHECK(y.shape() == Shape{1, 1, 1, 1});
            CHECK(values(y).flat(0) == 64.0);
        }
    }

    TEST_CASE("conv2d matches the direct formula") {
        const std::vector<Conv2dParams> cases = {
            {},
            {.stride = {2, 2}},
            {.padding = {2, 1}},
            {.stride = {3, 2}, .padding = {1, 2}, .dilation = {2, 3}},
            {.dilation = {1, 2}},
            {.padding = {1, 1}, .dilation = {2, 2}},  // output as wide as the input
            {.padding = {0, 1}, .dilation = {1, 2}},
        };
        Generator generator(20);
        const Tensor x = uniform({2, 3, 9, 8}, -1, 1, generator, Dtype::float64);
        const Tensor w = uniform({4, 3, 3, 2}, -1, 1, generator, Dtype::float64);
        const Tensor b = uniform({4}, -1, 1, generator, Dtype::float64);
        const Tensor narrow = uniform({2, 3, 4, 1}, -1, 1, generator, Dtype::float64);
        const Conv2dParams wide_padding{.padding = {1, 2}};
        CHECK(testing::all_close(
            values(conv2d(narrow, w, b, wide_padding)),
            reference_conv2d(values(narrow), values(w), &values(b), wide_padding), 1e-12));
        for (const Conv2dParams& params : cases) {
            CAPTURE(params.stride.first);
            CAPTURE(params.padding.first);
            CAPTURE(params.dilation.second);
            CHECK(testing::all_close(values(conv2d(x, w, b, params)),
                                     reference_conv2d(values(x), values(w), &values(b), params),
                                     1e-12));
            CHECK(testing::all_close(values(conv2d(x, w, Tensor(), params)),
                                     reference_conv2d(values(x), values(w), nullptr, params),
                                     1e-12));
        }
    }

    TEST_CASE("conv2d over several sample chunks") {
        // A 20x20 output puts two samples in a chunk, so a batch of 3 runs a
        // chunk of two and then a chunk of one.
        const Conv2dParams params{.padding = {1, 1}};
        Generator generator(22);
        const Tensor x = uniform({3, 2, 20, 20}, -1, 1, generator, Dtype::float64);
        const Tensor w = uniform({3, 2, 3, 3}, -1, 1, generator, Dtype::float64);
        const Tensor b = uniform({3}, -1, 1, generator, Dtype::float64);
        CHECK(testing::all_close(values(conv2d(x, w, b, params)),
                                 reference_conv2d(values(x), values(w), &values(b), params),
                                 1e-12));
        CHECK_GRADCHECK(
            [params](const auto& in) { return conv2d(in[0], in[1], Tensor(), params); },
            {random_input({3, 2, 20, 20}, 23), random_input({3, 2, 3, 3}, 24)});
    }

    TEST_CASE("conv2d float32 matches float64") {
        Generator generator(21);
        Tensor x = uniform({2, 2, 6, 5}, -1, 1, generator, Dtype::float64);
        Tensor w = uniform({3, 2, 3, 3}, -1, 1, generator, Dtype::float64);
        Tensor b = uniform({3}, -1, 1, generator, Dtype::float64);
        Tensor x32 = to_dtype(x, Dtype::float32);
        Tensor w32 = to_dtype(w, Dtype::float32);
        Tensor b32 = to_dtype(b, Dtype::float32);
        for (Tensor* t : {&x, &w, &b, &x32, &w32, &b32}) {
            t->requires_grad_(true);
        }
        const Conv2dParams params{.stride = {1, 2}, .padding = {1, 1}};
        const Tensor y = conv2d(x, w, b, params);
        const Tensor y32 = conv2d(x32, w32, b32, params);
        CHECK(y32.dtype() == Dtype::float32);
        CHECK(xt::allclose(y32.values<float>(), xt::cast<float>(values(y)), 1e-5, 1e-5));

        sum(y * y).backward();
        sum(y32 * y32).backward();
        CHECK(xt::allclose(x32.grad().values<float>(), xt::cast<float>(values(x.grad())), 1e-4,
                           1e-4));
        CHECK(xt::allclose(w32.grad().values<float>(), xt::cast<float>(values(w.grad())), 1e-4,
                           1e-4));
        CHECK(xt::allclose(b32.grad().values<float>(), xt::cast<float>(values(b.grad())), 1e-4,
                           1e-4));
    }

    TEST_CASE("conv2d float32 kernels agree") {
        // XGRAD_CONV_KERNEL=onednn moves the float32 forward from im2col to
        // oneDNN; both must match the float64 formula.
        struct Case {
            const char* name;
            Shape input;
            Shape weight;
            bool bias;
            Conv2dParams params;
        };
        const Case cases[] = {
            {"fashion_cnn layer", {4, 32, 14, 14}, {64, 32, 3, 3}, false, {.padding = {1, 1}}},
            {"stride, padding and dilation, with bias",
             {2, 3, 11, 9},
             {5, 3, 3, 2},
             true,
             {.stride = {2, 3}, .padding = {1, 2}, .dilation = {2, 1}}},
            {"batch 1 without bias", {1, 4, 7, 8}, {6, 4, 3, 3}, false, {.stride = {2, 2}}},
            {"stride leaves input columns unread", {3, 2, 8, 8}, {3, 2, 3, 3}, true,
             {.stride = {3, 3}}},
            {"padding wider than the input", {2, 1, 2, 3}, {2, 1, 3, 3}, true,
             {.padding = {3, 4}}},
            {"kernel as large as the input", {2, 3, 5, 4}, {7, 3, 5, 4}, false, {}},
            {"1x1 kernel with stride", {2, 5, 6, 6}, {3, 5, 1, 1}, true, {.stride = {2, 2}}},
        };
        Generator generator(25);
        for (const Case& c : cases) {
            CAPTURE(c.name);
            const Tensor x = uniform(c.input, -1, 1, generator, Dtype::float64);
            const Tensor w = uniform(c.weight, -1, 1, generator, Dtype::float64);
            const Tensor b = c.bias ? uniform({c.weight[0]}, -1, 1, generator, Dtype::float64)
                                    : Tensor();
            const Tensor x32 = to_dtype(x, Dtype::float32);
            const Tensor w32 = to_dtype(w, Dtype::float32);
            const Tensor b32 = c.bias ? to_dtype(b, Dtype::float32) : Tensor();
            const xt::xarray<double> expected =
                reference_conv2d(values(x), values(w), c.bias ? &values(b) : nullptr, c.params);

            REQUIRE(setenv("XGRAD_CONV_KERNEL", "onednn", 1) == 0);
            const Tensor onednn = conv2d(x32, w32, b32, c.params);
            REQUIRE(unsetenv("XGRAD_CONV_KERNEL") == 0);
            const Tensor im2col = conv2d(x32, w32, b32, c.params);

            REQUIRE(onednn.shape() == im2col.shape());
            CHECK(xt::allclose(onednn.values<float>(), im2col.values<float>(), 1e-5, 1e-5));
            CHECK(xt::allclose(onednn.values<float>(), xt::cast<float>(expected), 1e-5, 1e-5));
        }
    }

    TEST_CASE("conv2d kernel setting") {
        REQUIRE(setenv("XGRAD_CONV_KERNEL", "direct", 1) == 0);
        CHECK_THROWS_WITH_AS(conv2d(zeros({1, 1, 3, 3}), zeros({1, 1, 3, 3})),
                             doctest::Contains("XGRAD_CONV_KERNEL"), value_error);
        REQUIRE(setenv("XGRAD_CONV_KERNEL", "im2col", 1) == 0);
        CHECK(conv2d(zeros({1, 1, 3, 3}), zeros({1, 1, 3, 3})).shape() == Shape{1, 1, 1, 1});
        REQUIRE(unsetenv("XGRAD_CONV_KERNEL") == 0);
    }

    TEST_CASE("conv2d output shapes") {
        CHECK(conv2d(zeros({128, 1, 28, 28}), zeros({32, 1, 3, 3}), Tensor(), {.padding = {1, 1}})
                  .shape() == Shape{128, 32, 28, 28});
        CHECK(conv2d(zeros({2, 3, 7, 6}), zeros({4, 3, 3, 2}), zeros({4}),
                     {.stride = {2, 1}, .padding = {1, 2}, .dilation = {2, 1}})
                  .shape() == Shape{2, 4, 3, 9});
        // Floor mode drops the partial last window.
        CHECK(conv2d(zeros({1, 1, 8, 8}), zeros({1, 1, 3, 3}), Tensor(), {.stride = {2, 3}})
                  .shape() == Shape{1, 1, 3, 2});
        CHECK(conv2d(zeros({0, 2, 5, 5}), zeros({3, 2, 3, 3})).shape() == Shape{0, 3, 3, 3});
    }

    TEST_CASE("conv2d errors") {
        const Tensor x = zeros({2, 3, 5, 5});
        const Tensor w = zeros({4, 3, 3, 3});
        SUBCASE("shapes") {
            CHECK_THROWS_WITH_AS(
                conv2d(x, zeros({4, 2, 3, 3})),
                doctest::Contains("conv2d: input has shape (2, 3, 5, 5) but weight has "
                                  "shape (4, 2, 3, 3); the input must have 2 channels"),
                shape_error);
            CHECK_THROWS_WITH_AS(
                conv2d(zeros({1, 3, 2, 2}), w),
                doctest::Contains("conv2d: the kernel is larger than the padded input: "
                                  "input has shape (1, 3, 2, 2) and padding (0, 0)"),
                shape_error);
            CHECK_THROWS_WITH_AS(
                conv2d(zeros({1, 3, 2, 2}), w, Tensor(), {.padding = {1, 1}, .dilation = {2, 2}}),
                doctest::Contains("the kernel (3, 3) with dilation (2, 2) spans (5, 5)"),
                shape_error);
            CHECK_THROWS_WITH_AS(
                conv2d(zeros({3, 5, 5}), w),
                doctest::Contains("conv2d: input must have shape (N, C_in, H, W), got (3, 5, 5)"),
                shape_error);
            CHECK_THROWS_WITH_AS(
                conv2d(x, zeros({4, 3, 3})),
                doctest::Contains("conv2d: weight must have shape (C_out, C_in, kH, kW), "
                                  "got (4, 3, 3)"),
                shape_error);
            CHECK_THROWS_WITH_AS(
                conv2d(x, w, zeros({3})),
                doctest::Contains("conv2d: bias has shape (3) but weight has "
                                  "shape (4, 3, 3, 3); expected bias of shape (4)"),
                shape_error);
        }
        SUBCASE("hyperparameters") {
            CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), {.stride = {0, 1}}),
                                 doctest::Contains("conv2d: stride must be positive, got (0, 1)"),
                                 value_error);
            CHECK_THROWS_WITH_AS(
                conv2d(x, w, Tensor(), {.dilation = {1, -1}}),
                doctest::Contains("conv2d: dilation must be positive, got (1, -1)"), value_error);
            CHECK_THROWS_WITH_AS(
                conv2d(x, w, Tensor(), {.padding = {-1, 0}}),
                doctest::Contains("conv2d: padding must be non-negative, got (-1, 0)"),
                value_error);
            CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), {.groups = 3}),
                                 doctest::Contains("conv2d: groups = 3 is not supported"),
                                 not_implemented);
            CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor(), {.groups = 0}),
                                 doctest::Contains("conv2d: groups must be positive, got 0"),
                                 value_error);
        }
        SUBCASE("dtypes and undefined inputs") {
            CHECK_THROWS_WITH_AS(conv2d(x, zeros({4, 3, 3, 3}, Dtype::float64)),
                                 doctest::Contains("conv2d: inputs have different dtypes"),
                                 value_error);
            CHECK_THROWS_WITH_AS(
                conv2d(zeros({2, 3, 5, 5}, Dtype::int64), zeros({4, 3, 3, 3}, Dtype::int64)),
                doctest::Contains("conv2d:"), value_error);
            CHECK_THROWS_WITH_AS(conv2d(x, Tensor()),
                                 doctest::Contains("conv2d: input 1 is an undefined tensor"),
                                 value_error);
        }
    }
}

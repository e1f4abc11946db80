#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include <xtensor/xview.hpp>

#include "testing.hpp"
#include "xgrad/ops/quantized_conv.hpp"

using namespace xgrad;

namespace {

// The op's formula, computed independently of its kernels: the input
// quantized element by element as quantize_uint8() documents, the padding as
// the zero point, the sums in int64 and the rest in double.
xt::xarray<double> expected_output(const Tensor& x, const QuantizationParams& input,
                                   const QuantizedWeight& weight, const Tensor& bias,
                                   const Conv2dParams& params) {
    const auto& values = weight.values.values<std::int8_t>();
    const std::size_t c_out = values.shape()[0];
    const std::size_t c_in = values.shape()[1];
    const auto kernel_h = static_cast<std::int64_t>(values.shape()[2]);
    const auto kernel_w = static_cast<std::int64_t>(values.shape()[3]);
    const std::size_t batch = x.shape()[0];
    const auto height = static_cast<std::int64_t>(x.shape()[2]);
    const auto width = static_cast<std::int64_t>(x.shape()[3]);
    const auto [stride_h, stride_w] = params.stride;
    const auto [pad_h, pad_w] = params.padding;
    const auto [dilation_h, dilation_w] = params.dilation;
    const std::int64_t out_h =
        (height + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
    const std::int64_t out_w = (width + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
    const auto inverse = static_cast<float>(1.0 / input.scale);
    const auto code = [&](std::size_t n, std::size_t c, std::int64_t h, std::int64_t w) {
        if (h < 0 || h >= height || w < 0 || w >= width) {
            return input.zero_point;
        }
        const float value =
            x.values<float>()(n, c, static_cast<std::size_t>(h), static_cast<std::size_t>(w));
        const double rounded = std::nearbyint(value * inverse);
        return static_cast<std::int64_t>(
            std::clamp(rounded + static_cast<double>(input.zero_point), 0.0, 255.0));
    };
    xt::xarray<double> y(
        Shape{batch, c_out, static_cast<std::size_t>(out_h), static_cast<std::size_t>(out_w)});
    for (std::size_t n = 0; n < batch; ++n) {
        for (std::size_t o = 0; o < c_out; ++o) {
            for (std::int64_t i = 0; i < out_h; ++i) {
                for (std::int64_t j = 0; j < out_w; ++j) {
                    std::int64_t sum = 0;
                    for (std::size_t c = 0; c < c_in; ++c) {
                        for (std::int64_t p = 0; p < kernel_h; ++p) {
                            for (std::int64_t q = 0; q < kernel_w; ++q) {
                                const std::int64_t h = i * stride_h - pad_h + p * dilation_h;
                                const std::int64_t w = j * stride_w - pad_w + q * dilation_w;
                                const std::int64_t centred = code(n, c, h, w) - input.zero_point;
                                sum += centred * values(o, c, static_cast<std::size_t>(p),
                                                        static_cast<std::size_t>(q));
                            }
                        }
                    }
                    const double scale = input.scale * weight.scales.values<float>()(o);
                    const double shift = bias.defined() ? bias.values<float>()(o) : 0.0;
                    y(n, o, static_cast<std::size_t>(i), static_cast<std::size_t>(j)) =
                        scale * static_cast<double>(sum) + shift;
                }
            }
        }
    }
    return y;
}

// Checks a float32 output against a double reference, allowing for the
// three float32 roundings of the conversion from int32 sums.
void check_close_to_formula(const Tensor& y, const xt::xarray<double>& expected) {
    REQUIRE(y.shape() == Shape(expected.shape().begin(), expected.shape().end()));
    const float* actual = y.values<float>().data();
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const double tolerance = 1e-6 * std::abs(expected.data()[i]) + 1e-6;
        if (!(std::abs(actual[i] - expected.data()[i]) <= tolerance)) {
            ++mismatches;
        }
    }
    CHECK(mismatches == 0);
}

std::size_t bitwise_differences(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    const auto& left = a.values<float>();
    const auto& right = b.values<float>();
    std::size_t differences = 0;
    for (std::size_t i = 0; i < left.size(); ++i) {
        if (std::memcmp(&left.data()[i], &right.data()[i], sizeof(float)) != 0) {
            ++differences;
        }
    }
    return differences;
}

// Uniformly random int8 codes, -128 included, and scales in [0.001, 0.01].
QuantizedWeight random_codes(const Shape& shape, Generator& generator) {
    auto values = xt::xarray<std::int8_t>::from_shape(shape);
    for (auto& value : values) {
        value = static_cast<std::int8_t>(static_cast<int>(generator.below(256)) - 128);
    }
    auto scales = xt::xarray<float>::from_shape({shape[0]});
    for (auto& scale : scales) {
        scale = static_cast<float>(generator.uniform(0.001, 0.01));
    }
    Tensor codes(std::move(values));
    const auto rows = static_cast<std::int64_t>(shape[0]);
    return {codes, Tensor(std::move(scales)), weight_row_sums(reshape(codes, {rows, -1}))};
}

std::vector<QuantizedKernel> available_kernels() {
    std::vector<QuantizedKernel> kernels = {QuantizedKernel::reference, QuantizedKernel::automatic};
    if (onednn_int8_available()) {
        kernels.push_back(QuantizedKernel::onednn);
    }
    return kernels;
}

// The hand-worked example: x of shape (1, 1, 3, 3) on the grid of scale 0.5
// and zero point 3, so its codes are x / 0.5 + 3:
//
//   x = [[1, -0.5, 2], [0, 1.5, -1], [0.5, 3, -1.5]]
//   codes = [[5, 2, 7], [3, 6, 1], [4, 9, 0]], codes - 3 = [[2, -1, 4], [0, 3, -2], [1, 6, -3]]
//
// Two output channels of 2 x 2 codes, w0 = [[1, -2], [3, 4]] with scale 0.25
// and w1 = [[-1, 0], [2, -3]] with scale 0.5 (row sums 6 and -2), bias
// (1, -1).
const QuantizationParams kHandInput{.scale = 0.5, .zero_point = 3};

Tensor hand_x() {
    xt::xarray<float> x{{1.0f, -0.5f, 2.0f}, {0.0f, 1.5f, -1.0f}, {0.5f, 3.0f, -1.5f}};
    x.reshape({1, 1, 3, 3});
    return Tensor(x);
}

QuantizedWeight hand_weight() {
    xt::xarray<std::int8_t> values{{{1, -2}, {3, 4}}, {{-1, 0}, {2, -3}}};
    values.reshape({2, 1, 2, 2});
    return {Tensor(values), Tensor(xt::xarray<float>{0.25f, 0.5f}),
            Tensor(xt::xarray<std::int64_t>{6, -2})};
}

const Tensor kHandBias(xt::xarray<float>{1.0f, -1.0f});

// Input parameters for x in [-1, 1].
constexpr QuantizationParams kUnitRange{.scale = 2.0 / 255.0, .zero_point = 128};

}  // namespace

TEST_SUITE("quantized_conv") {
    TEST_CASE("quantize_conv_weight scales each output channel") {
        // Channel 0: largest |w| 1.27, scale float32(0.01), so 0.5 -> 50,
        // -1.27 -> -127, 0.254 -> 25.4 -> 25 and 0 -> 0; sum -52.
        // Channel 1: all zero, scale 1.
        xt::xarray<float> w{0.5f, -1.27f, 0.254f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        w.reshape({2, 1, 2, 2});
        const QuantizedWeight q = quantize_conv_weight(Tensor(w));
        REQUIRE(q.values.shape() == Shape{2, 1, 2, 2});
        REQUIRE(q.values.dtype() == Dtype::int8);
        CHECK(q.scales.values<float>()(0) == static_cast<float>(1.27f / 127.0));
        CHECK(q.scales.values<float>()(1) == 1.0f);
        xt::xarray<std::int8_t> expected{50, -127, 25, 0, 0, 0, 0, 0};
        expected.reshape({2, 1, 2, 2});
        CHECK(q.values.values<std::int8_t>() == expected);
        CHECK(q.row_sums.values<std::int64_t>() == xt::xarray<std::int64_t>{-52, 0});
    }

    TEST_CASE("quantize_conv_weight matches quantize_weight row by row") {
        Generator generator(4);
        const Tensor w = uniform({5, 3, 3, 2}, -0.4, 0.4, generator, Dtype::float64);
        const QuantizedWeight conv = quantize_conv_weight(w);
        const QuantizedWeight rows = quantize_weight(reshape(w, {5, 18}));
        CHECK(reshape(conv.values, {5, 18}).values<std::int8_t>() ==
              rows.values.values<std::int8_t>());
        CHECK(conv.scales.values<float>() == rows.scales.values<float>());
        CHECK(conv.row_sums.values<std::int64_t>() == rows.row_sums.values<std::int64_t>());
    }

    TEST_CASE("quantize_conv_weight errors") {
        CHECK_THROWS_WITH_AS(quantize_conv_weight(zeros({2, 3})),
                             doctest::Contains("quantize_conv_weight: expected a weight of shape "
                                               "(C_out, C_in, kH, kW), got shape (2, 3)"),
                             shape_error);
        xt::xarray<float> w = xt::zeros<float>({2, 1, 2, 2});
        w(1, 0, 1, 0) = std::numeric_limits<float>::infinity();
        CHECK_THROWS_WITH_AS(quantize_conv_weight(Tensor(w)),
                             doctest::Contains("quantize_conv_weight: weight[1, 0, 1, 0] is inf"),
                             value_error);
        CHECK_THROWS_WITH_AS(
            quantize_conv_weight(Tensor(xt::xarray<std::int64_t>::from_shape({1, 1, 1, 1}))),
            doctest::Contains("quantize_conv_weight"), value_error);
    }

    TEST_CASE("quantized_conv2d hand-worked values") {
        const Tensor x = hand_x();
        const QuantizedWeight weight = hand_weight();
        CHECK(quantize_uint8(x, kHandInput).values<std::uint8_t>() ==
              xt::xarray<std::uint8_t>{{{{5, 2, 7}, {3, 6, 1}, {4, 9, 0}}}});

        SUBCASE("padding 1 with zero point 3, stride 2") {
            // Output (2, 2); output (i, j) reads rows 2i - 1 .. 2i and columns
            // 2j - 1 .. 2j of x, and the padding contributes 3 - 3 = 0.
            //   (0, 0): only x[0, 0]: 4 * 2 = 8 and -3 * 2 = -6
            //   (0, 1): x[0, 1..2] = (-1, 4): 3 * -1 + 4 * 4 = 13, 2 * -1 - 3 * 4 = -14
            //   (1, 0): x[1, 0] = 0 and x[2, 0] = 1 under taps (0, 1), (1, 1): 4, -3
            //   (1, 1): (3, -2, 6, -3): 3 + 4 + 18 - 12 = 13, -3 + 0 + 12 + 9 = 18
            // y0 = 0.5 * 0.25 * sum + 1, y1 = 0.5 * 0.5 * sum - 1.
            const xt::xarray<double> by_hand{
                {{{2.0, 2.625}, {1.5, 2.625}}, {{-2.5, -4.5}, {-1.75, 3.5}}}};
            const Conv2dParams params{.stride = {2, 2}, .padding = {1, 1}};
            CHECK(testing::all_close(expected_output(x, kHandInput, weight, kHandBias, params),
                                     by_hand, 1e-12));
            for (QuantizedKernel kernel : available_kernels()) {
                CAPTURE(static_cast<int>(kernel));
                check_close_to_formula(
                    quantized_conv2d(x, kHandInput, weight, kHandBias, params, kernel), by_hand);
            }
        }

        SUBCASE("dilation 2") {
            // One output, from the corners of x: (2, 4, 1, -3).
            //   channel 0: 2 - 8 + 3 - 12 = -15 -> 0.125 * -15 + 1 = -0.875
            //   channel 1: -2 + 0 + 2 + 9 = 9 -> 0.25 * 9 - 1 = 1.25
            xt::xarray<double> by_hand{-0.875, 1.25};
            by_hand.reshape({1, 2, 1, 1});
            const Conv2dParams params{.dilation = {2, 2}};
            for (QuantizedKernel kernel : available_kernels()) {
                CAPTURE(static_cast<int>(kernel));
                check_close_to_formula(
                    quantized_conv2d(x, kHandInput, weight, kHandBias, params, kernel), by_hand);
            }
        }

        SUBCASE("no padding, no bias") {
            // Output (i, j) reads x[i..i+1, j..j+1]; channel 0 only:
            //   (0, 0): 2 + 2 + 0 + 12 = 16      (0, 1): -1 - 8 + 9 - 8 = -8
            //   (1, 0): 0 - 6 + 3 + 24 = 21      (1, 1): 3 + 4 + 18 - 12 = 13
            // times 0.5 * 0.25.
            const xt::xarray<double> channel0{{2.0, -1.0}, {2.625, 1.625}};
            for (QuantizedKernel kernel : available_kernels()) {
                CAPTURE(static_cast<int>(kernel));
                const Tensor y = quantized_conv2d(x, kHandInput, weight, Tensor(), {}, kernel);
                REQUIRE(y.shape() == Shape{1, 2, 2, 2});
                const xt::xarray<double> first =
                    xt::view(xt::cast<double>(y.values<float>()), 0, 0, xt::all(), xt::all());
                CHECK(testing::all_close(first, channel0, 1e-6));
            }
        }
    }

    TEST_CASE("quantized_conv2d pads with the real value 0") {
        // A constant input of the real value 0 with zero point 200 gives
        // the bias everywhere, padding included.
        Generator generator(6);
        const QuantizedWeight weight = random_codes({3, 2, 3, 3}, generator);
        const Tensor bias = uniform({3}, -1.0, 1.0, generator);
        const Tensor x = zeros({2, 2, 4, 5});
        const Conv2dParams params{.stride = {2, 1}, .padding = {2, 1}, .dilation = {1, 2}};
        for (QuantizedKernel kernel : available_kernels()) {
            CAPTURE(static_cast<int>(kernel));
            const Tensor y = quantized_conv2d(x, {.scale = 0.1, .zero_point = 200}, weight, bias,
                                              params, kernel);
            REQUIRE(y.shape() == Shape{2, 3, 3, 3});
            for (std::size_t o = 0; o < 3; ++o) {
                const auto channel = xt::view(y.values<float>(), xt::all(), o);
                CHECK(xt::all(xt::equal(channel, bias.values<float>()(o))));
            }
        }
    }

    TEST_CASE("quantized_conv2d kernels agree bit for bit") {
        if (!onednn_int8_available()) {
            MESSAGE("oneDNN has no VNNI or AMX int8 kernel on this CPU; only the reference runs");
        }
        Generator generator(21);
        for (int trial = 0; trial < 40; ++trial) {
            const std::size_t batch = 1 + generator.below(3);
            const std::size_t c_in = 1 + generator.below(12);
            const std::size_t c_out = 1 + generator.below(20);
            const std::size_t kernel_h = 1 + generator.below(3);
            const std::size_t kernel_w = 1 + generator.below(3);
            const auto stride = static_cast<std::int64_t>(1 + generator.below(2));
            const auto pad_h = static_cast<std::int64_t>(generator.below(3));
            const auto pad_w = static_cast<std::int64_t>(generator.below(3));
            const auto dilation = static_cast<std::int64_t>(1 + generator.below(2));
            const std::size_t height = 2 * kernel_h + generator.below(8);
            const std::size_t width = 2 * kernel_w + generator.below(8);
            const Conv2dParams params{
                .stride = {stride, 1}, .padding = {pad_h, pad_w}, .dilation = {1, dilation}};
            const QuantizedWeight weight =
                random_codes({c_out, c_in, kernel_h, kernel_w}, generator);
            const Tensor bias = uniform({c_out}, -1.0, 1.0, generator);
            // Mostly outside the range too, where the codes clamp to 0 and 255.
            const double range = trial % 2 == 0 ? 1.0 : 100.0;
            const Tensor x = uniform({batch, c_in, height, width}, -range, range, generator);
            const QuantizationParams input{
                .scale = 2.0 / 255.0,
                .zero_point = static_cast<std::int64_t>(generator.below(256))};
            CAPTURE(trial);
            const Tensor reference =
                quantized_conv2d(x, input, weight, bias, params, QuantizedKernel::reference);
            check_close_to_formula(reference, expected_output(x, input, weight, bias, params));
            const Tensor automatic = quantized_conv2d(x, input, weight, bias, params);
            CHECK(bitwise_differences(reference, automatic) == 0);
            if (onednn_int8_available()) {
                const Tensor onednn =
                    quantized_conv2d(x, input, weight, bias, params, QuantizedKernel::onednn);
                CHECK(bitwise_differences(reference, onednn) == 0);
            }
        }
    }

    TEST_CASE("quantized_conv2d kernels agree on the fashion_cnn layers") {
        struct Layer {
            std::size_t c_in;
            std::size_t c_out;
            std::size_t side;
        };
        Generator generator(22);
        for (const Layer& layer : {Layer{1, 32, 28}, Layer{32, 64, 14}, Layer{64, 64, 7}}) {
            const QuantizedWeight weight = random_codes({layer.c_out, layer.c_in, 3, 3}, generator);
            const Tensor x = uniform({5, layer.c_in, layer.side, layer.side}, 0.0, 1.0, generator);
            const QuantizationParams input{.scale = 1.0 / 255.0, .zero_point = 0};
            const Conv2dParams params{.padding = {1, 1}};
            const Tensor reference =
                quantized_conv2d(x, input, weight, Tensor(), params, QuantizedKernel::reference);
            CAPTURE(layer.c_in);
            check_close_to_formula(reference, expected_output(x, input, weight, Tensor(), params));
            if (onednn_int8_available()) {
                const Tensor onednn =
                    quantized_conv2d(x, input, weight, Tensor(), params, QuantizedKernel::onednn);
                CHECK(bitwise_differences(reference, onednn) == 0);
            }
        }
    }

    TEST_CASE("quantized_conv2d at the extreme sums") {
        // Codes 255 against weights of -128 or 127, zero point 0, for
        // C_in kH kW = 64 * 9 = 576, padding 0 so that no tap reads the zero point.
        auto codes = xt::xarray<std::int8_t>::from_shape({2, 64, 3, 3});
        std::fill(codes.begin(), codes.begin() + 576, std::int8_t{-128});
        std::fill(codes.begin() + 576, codes.end(), std::int8_t{127});
        const Tensor values(codes);
        const QuantizedWeight weight{values, ones({2}), weight_row_sums(reshape(values, {2, -1}))};
        const Tensor x = full({2, 64, 4, 4}, 1e6);
        const QuantizationParams input{.scale = 1.0, .zero_point = 0};
        const Tensor reference =
            quantized_conv2d(x, input, weight, Tensor(), {}, QuantizedKernel::reference);
        REQUIRE(reference.shape() == Shape{2, 2, 2, 2});
        CHECK(xt::all(xt::equal(xt::view(reference.values<float>(), xt::all(), 0),
                                static_cast<float>(-255.0 * 128 * 576))));
        CHECK(xt::all(xt::equal(xt::view(reference.values<float>(), xt::all(), 1),
                                static_cast<float>(255.0 * 127 * 576))));
        if (onednn_int8_available()) {
            const Tensor onednn =
                quantized_conv2d(x, input, weight, Tensor(), {}, QuantizedKernel::onednn);
            CHECK(bitwise_differences(reference, onednn) == 0);
        }
    }

    TEST_CASE("quantized_conv2d is close to conv2d") {
        // Each output of the int8 convolution differs from the float one by
        // at most the rounding of each tap's input (s_x / 2, times |w|) and
        // weight (s_w / 2, times |x| plus its rounding), summed over the 27
        // taps, plus float32 rounding.
        Generator generator(23);
        const Tensor w = uniform({8, 3, 3, 3}, -0.5, 0.5, generator);
        const Tensor b = uniform({8}, -0.2, 0.2, generator);
        const Tensor x = uniform({4, 3, 9, 9}, -1.0, 1.0, generator);
        const QuantizedWeight weight = quantize_conv_weight(w);
        const Conv2dParams params{.stride = {2, 2}, .padding = {1, 1}};
        const xt::xarray<float> expected = conv2d(x, w, b, params).values<float>();
        const xt::xarray<float> actual =
            quantized_conv2d(x, kUnitRange, weight, b, params).values<float>();
        const double s_x = kUnitRange.scale;
        for (std::size_t o = 0; o < 8; ++o) {
            const double s_w = weight.scales.values<float>()(o);
            const double largest_w = s_w * 127.0;
            const double bound = 27.0 * (largest_w * s_x / 2 + (1.0 + s_x / 2) * s_w / 2) + 1e-5;
            const auto error = xt::abs(xt::view(actual - expected, xt::all(), o));
            CAPTURE(o);
            CHECK(xt::amax(error)() <= bound);
            CHECK(xt::amax(error)() > 0.0);
        }
        // The typical error lies far below the bound.
        CHECK(xt::mean(xt::abs(actual - expected))() < 0.01);
    }

    TEST_CASE("quantized_conv2d over many shapes and two threads") {
        // More shapes than a thread caches oneDNN convolutions for, run on
        // two threads at once, each checked against the reference kernel.
        Generator generator(24);
        const QuantizedWeight weight = random_codes({6, 4, 3, 3}, generator);
        std::vector<Tensor> inputs;
        for (std::size_t size = 3; size <= 22; ++size) {
            inputs.push_back(uniform({1 + size % 3, 4, size, 25 - size}, -1.0, 1.0, generator));
        }
        const Conv2dParams params{.padding = {1, 1}};
        std::vector<Tensor> references;
        for (const Tensor& x : inputs) {
            references.push_back(quantized_conv2d(x, kUnitRange, weight, Tensor(), params,
                                                  QuantizedKernel::reference));
        }
        std::size_t differences[2] = {0, 0};
        auto run = [&](std::size_t thread) {
            for (int pass = 0; pass < 2; ++pass) {
                for (std::size_t i = thread; i < inputs.size(); i += 1 + thread) {
                    const Tensor y =
                        quantized_conv2d(inputs[i], kUnitRange, weight, Tensor(), params);
                    differences[thread] += bitwise_differences(y, references[i]);
                }
            }
        };
        std::thread other(run, 1);
        run(0);
        other.join();
        CHECK(differences[0] == 0);
        CHECK(differences[1] == 0);
    }

    TEST_CASE("quantized_conv2d with a zero dimension") {
        Generator generator(25);
        const QuantizedWeight weight = random_codes({4, 2, 3, 3}, generator);
        const Tensor bias = uniform({4}, -1.0, 1.0, generator);
        for (QuantizedKernel kernel : {QuantizedKernel::automatic, QuantizedKernel::reference}) {
            CHECK(quantized_conv2d(zeros({0, 2, 5, 5}), kUnitRange, weight, bias, {}, kernel)
                      .shape() == Shape{0, 4, 3, 3});
            // No input channels: every sum is empty, so y is the bias.
            const QuantizedWeight no_inputs{
                Tensor(xt::xarray<std::int8_t>::from_shape({4, 0, 3, 3})), ones({4}),
                Tensor(xt::xarray<std::int64_t>{0, 0, 0, 0})};
            const Tensor y =
                quantized_conv2d(zeros({2, 0, 5, 5}), kUnitRange, no_inputs, bias, {}, kernel);
            REQUIRE(y.shape() == Shape{2, 4, 3, 3});
            CHECK(y.values<float>()(1, 2, 1, 1) == bias.values<float>()(2));
        }
    }

    TEST_CASE("quantized_conv2d replays in a captured graph") {
        Generator generator(26);
        const QuantizedWeight weight = random_codes({5, 3, 3, 3}, generator);
        const Tensor bias = uniform({5}, -1.0, 1.0, generator);
        const Conv2dParams params{.padding = {1, 1}};
        auto layer = [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{
                relu(quantized_conv2d(in[0], kUnitRange, weight, bias, params))};
        };
        Graph graph = capture(layer, {uniform({2, 3, 6, 6}, -1.0, 1.0, generator)});
        for (int call = 0; call < 3; ++call) {
            const Tensor x = uniform({2, 3, 6, 6}, -1.0, 1.0, generator);
            const Tensor eager = layer({x})[0];
            const Tensor& replayed = graph.forward({x})[0];
            CHECK(bitwise_differences(eager, replayed) == 0);
        }
    }

    TEST_CASE("quantized_conv2d records no gradient") {
        Generator generator(27);
        const QuantizedWeight weight = random_codes({2, 1, 2, 2}, generator);
        Tensor x = uniform({1, 1, 3, 3}, -1.0, 1.0, generator);
        x.requires_grad_(true);
        const Tensor y = quantized_conv2d(x, kUnitRange, weight);
        CHECK_FALSE(y.requires_grad());
        CHECK(y.is_leaf());
    }

    TEST_CASE("quantized_conv2d describes its attributes") {
        const OpDef& op = find_op("quantized_conv2d");
        CHECK_FALSE(op.info.differentiable);
        OpAttrs attrs;
        attrs.scalars[0] = 0.02;
        attrs.ints = {128, 0, 2, 1, 1, 0, 1, 2};
        CHECK(op.describe(attrs) ==
              "input_scale=0.02, input_zero_point=128, stride=(2, 1), "
              "padding=(1, 0), dilation=(1, 2)");
        attrs.ints[1] = static_cast<std::int64_t>(QuantizedKernel::reference);
        CHECK(op.describe(attrs) ==
              "input_scale=0.02, input_zero_point=128, stride=(2, 1), "
              "padding=(1, 0), dilation=(1, 2), kernel=reference");
    }

    TEST_CASE("quantized_conv2d errors") {
        const QuantizedWeight good = hand_weight();
        const Tensor x = hand_x();
        const OpDef& op = find_op("quantized_conv2d");

        SUBCASE("number of tensors and attributes") {
            OpAttrs attrs;
            attrs.scalars[0] = 0.5;
            attrs.ints = {3, 0, 1, 1, 0, 0, 1, 1};
            CHECK_THROWS_WITH_AS(apply(op, {x, good.values, good.scales}, attrs),
                                 doctest::Contains("quantized_conv2d: expected x, values, scales, "
                                                   "row_sums and an optional bias, got 3 tensors"),
                                 value_error);
            const std::vector<Tensor> inputs = {x, good.values, good.scales, good.row_sums};
            attrs.ints = {3, 0};
            CHECK_THROWS_WITH_AS(apply(op, inputs, attrs),
                                 doctest::Contains("quantized_conv2d: attrs.ints must be {input "
                                                   "zero point, kernel, stride h, w, padding h, "
                                                   "w, dilation h, w}, got 2 values"),
                                 value_error);
            attrs.ints = {3, 5, 1, 1, 0, 0, 1, 1};
            CHECK_THROWS_WITH_AS(apply(op, inputs, attrs),
                                 doctest::Contains("quantized_conv2d: attrs.ints[1] must be a "
                                                   "QuantizedKernel, 0, 1 or 2, got 5"),
                                 value_error);
        }

        SUBCASE("input scale and zero point") {
            CHECK_THROWS_WITH_AS(quantized_conv2d(x, {.scale = -1.0, .zero_point = 0}, good),
                                 doctest::Contains("quantized_conv2d: the input scale must be a "
                                                   "positive normal float32 value"),
                                 value_error);
            CHECK_THROWS_WITH_AS(quantized_conv2d(x, {.scale = 0.5, .zero_point = 256}, good),
                                 doctest::Contains("quantized_conv2d: the input zero point must "
                                                   "be in [0, 255], got 256"),
                                 value_error);
        }

        SUBCASE("dtypes") {
            CHECK_THROWS_WITH_AS(quantized_conv2d(to_dtype(x, Dtype::float64), kHandInput, good),
                                 doctest::Contains("quantized_conv2d: x must be float32, got "
                                                   "float64; convert it with to_dtype()"),
                                 value_error);
            QuantizedWeight float_values = good;
            float_values.values = zeros({2, 1, 2, 2});
            CHECK_THROWS_WITH_AS(quantized_conv2d(x, kHandInput, float_values),
                                 doctest::Contains("quantized_conv2d: values must be int8, got "
                                                   "float32"),
                                 value_error);
            CHECK_THROWS_WITH_AS(
                quantized_conv2d(x, kHandInput, good, zeros({2}, Dtype::float64)),
                doctest::Contains("quantized_conv2d: bias must be float32, got float64"),
                value_error);
        }

        SUBCASE("shapes") {
            QuantizedWeight flat = good;
            flat.values = Tensor(xt::xarray<std::int8_t>{{1, 2}, {3, 4}});
            CHECK_THROWS_WITH_AS(quantized_conv2d(x, kHandInput, flat),
                                 doctest::Contains("quantized_conv2d: values must have shape "
                                                   "(C_out, C_in, kH, kW), got (2, 2)"),
                                 shape_error);
            CHECK_THROWS_WITH_AS(quantized_conv2d(zeros({3, 3}), kHandInput, good),
                                 doctest::Contains("quantized_conv2d: x must have shape (N, C_in, "
                                                   "H, W), got (3, 3)"),
                                 shape_error);
            CHECK_THROWS_WITH_AS(quantized_conv2d(zeros({1, 2, 3, 3}), kHandInput, good),
                                 doctest::Contains("quantized_conv2d: x has shape (1, 2, 3, 3) "
                                                   "but values has shape (2, 1, 2, 2); x must "
                                                   "have 1 channels"),
                                 shape_error);
            QuantizedWeight short_scales = good;
            short_scales.scales = ones({3});
            CHECK_THROWS_WITH_AS(quantized_conv2d(x, kHandInput, short_scales),
                                 doctest::Contains("quantized_conv2d: scales has shape (3) but "
                                                   "values has shape (2, 1, 2, 2); expected "
                                                   "scales of shape (2)"),
                                 shape_error);
            CHECK_THROWS_WITH_AS(quantized_conv2d(x, kHandInput, good, zeros({1})),
                                 doctest::Contains("quantized_conv2d: bias has shape (1)"),
                                 shape_error);
            CHECK_THROWS_WITH_AS(
                quantized_conv2d(x, kHandInput, good, Tensor(), {.dilation = {3, 3}}),
                doctest::Contains("quantized_conv2d"), shape_error);
        }

        SUBCASE("window parameters and groups") {
            CHECK_THROWS_WITH_AS(
                quantized_conv2d(x, kHandInput, good, Tensor(), {.stride = {0, 1}}),
                doctest::Contains("quantized_conv2d"), value_error);
            CHECK_THROWS_WITH_AS(
                quantized_conv2d(x, kHandInput, good, Tensor(), {.padding = {-1, 0}}),
                doctest::Contains("quantized_conv2d"), value_error);
            CHECK_THROWS_WITH_AS(quantized_conv2d(x, kHandInput, good, Tensor(), {.groups = 2}),
                                 doctest::Contains("quantized_conv2d: groups = 2 is not "
                                                   "supported"),
                                 not_implemented);
            CHECK_THROWS_WITH_AS(quantized_conv2d(x, kHandInput, good, Tensor(), {.groups = 0}),
                                 doctest::Contains("quantized_conv2d: groups must be positive"),
                                 value_error);
        }

        SUBCASE("weight scales and row sums") {
            QuantizedWeight bad_scale = good;
            bad_scale.scales = Tensor(xt::xarray<float>{0.25f, 0.0f});
            CHECK_THROWS_WITH_AS(quantized_conv2d(x, kHandInput, bad_scale),
                                 doctest::Contains("quantized_conv2d: scales[1] is 0"),
                                 value_error);
            QuantizedWeight bad_sums = good;
            bad_sums.row_sums = Tensor(xt::xarray<std::int64_t>{6, 509});
            CHECK_THROWS_WITH_AS(quantized_conv2d(x, kHandInput, bad_sums),
                                 doctest::Contains("quantized_conv2d: row_sums[1] is 509, outside "
                                                   "[-512, 508] for C_in * kH * kW = 4"),
                                 value_error);
        }

        SUBCASE("too many inputs per output") {
            // 7311 * 3 * 3 = 65799 > 65793.
            const Tensor values(xt::xarray<std::int8_t>(Shape{1, 7311, 3, 3}, std::int8_t{0}));
            const QuantizedWeight wide{values, ones({1}), Tensor(xt::xarray<std::int64_t>{0})};
            CHECK_THROWS_WITH_AS(quantized_conv2d(zeros({1, 7311, 3, 3}), kHandInput, wide),
                                 doctest::Contains("quantized_conv2d: C_in * kH * kW = 65799 for "
                                                   "values of shape (1, 7311, 3, 3) exceeds 65793"),
                                 not_implemented);
        }

        SUBCASE("the oneDNN kernel where it is unavailable") {
            if (!onednn_int8_available()) {
                CHECK_THROWS_WITH_AS(
                    quantized_conv2d(x, kHandInput, good, Tensor(), {}, QuantizedKernel::onednn),
                    doctest::Contains("quantized_conv2d: the oneDNN kernel needs VNNI or AMX"),
                    not_implemented);
            }
        }
    }
}

#include <cfloat>
#include <cmath>
#include <limits>
#include <thread>

#include "testing.hpp"
#include "xgrad/ops/quantized.hpp"

using namespace xgrad;

namespace {

// The op's formula, computed independently of its kernels: the input
// quantized element by element as quantize_uint8() documents, the sums in
// int64 and the rest in double.
xt::xarray<double> expected_output(const Tensor& x, const QuantizationParams& input,
                                   const QuantizedWeight& weight, const Tensor& bias) {
    const auto& values = weight.values.values<std::int8_t>();
    const std::size_t out = values.shape()[0];
    const std::size_t in = values.shape()[1];
    const std::size_t rows = x.numel() / in;
    const auto inverse = static_cast<float>(1.0 / input.scale);
    std::vector<std::int64_t> codes(rows * in);
    for (std::size_t i = 0; i < codes.size(); ++i) {
        const double rounded = std::nearbyint(x.values<float>().data()[i] * inverse);
        codes[i] = static_cast<std::int64_t>(
            std::clamp(rounded + static_cast<double>(input.zero_point), 0.0, 255.0));
    }
    Shape shape = x.shape();
    shape.back() = out;
    xt::xarray<double> y(shape);
    for (std::size_t m = 0; m < rows; ++m) {
        for (std::size_t n = 0; n < out; ++n) {
            std::int64_t sum = 0;
            for (std::size_t k = 0; k < in; ++k) {
                sum += (codes[m * in + k] - input.zero_point) * values(n, k);
            }
            const double scale = input.scale * weight.scales.values<float>()(n);
            const double shift = bias.defined() ? bias.values<float>()(n) : 0.0;
            y.data()[m * out + n] = scale * static_cast<double>(sum) + shift;
        }
    }
    return y;
}

// Checks a float32 output against expected_output(). The float32 steps
// (the factor s_x * s_w[n], the integer as float32, the multiply-add) each
// round once, so a relative error of 1e-6 leaves room for all three.
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

// Number of elements in which two float32 tensors differ in any bit.
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

// A QuantizedWeight with uniformly random int8 codes, -128 included, and
// scales in [0.001, 0.01].
QuantizedWeight random_codes(std::size_t out, std::size_t in, Generator& generator) {
    auto values = xt::xarray<std::int8_t>::from_shape({out, in});
    for (auto& value : values) {
        value = static_cast<std::int8_t>(static_cast<int>(generator.below(256)) - 128);
    }
    auto scales = xt::xarray<float>::from_shape({out});
    for (auto& scale : scales) {
        scale = static_cast<float>(generator.uniform(0.001, 0.01));
    }
    Tensor codes(std::move(values));
    return {codes, Tensor(std::move(scales)), weight_row_sums(codes)};
}

// Input parameters for x in [-1, 1].
constexpr QuantizationParams kUnitRange{.scale = 2.0 / 255.0, .zero_point = 128};

}  // namespace

TEST_SUITE("quantized") {
    TEST_CASE("quantize_weight scales each row to 127") {
        const Tensor weight(
            xt::xarray<float>{{0.5f, -1.0f, 0.25f}, {0.0f, 0.0f, 0.0f}, {2.54f, 1.27f, -0.6f}});
        const QuantizedWeight q = quantize_weight(weight);
        REQUIRE(q.values.dtype() == Dtype::int8);
        REQUIRE(q.scales.dtype() == Dtype::float32);
        REQUIRE(q.row_sums.dtype() == Dtype::int64);
        // Row 0: scale float32(1 / 127), slightly below 1 / 127, so 0.5 ->
        // 63.5000002 -> 64, -1 -> -127 and 0.25 -> 31.75 -> 32.
        CHECK(q.scales.values<float>()(0) == static_cast<float>(1.0 / 127.0));
        CHECK(q.values.values<std::int8_t>() ==
              xt::xarray<std::int8_t>{{64, -127, 32}, {0, 0, 0}, {127, 64, -30}});
        // A zero row: scale 1, so it dequantizes to exact zeros.
        CHECK(q.scales.values<float>()(1) == 1.0f);
        // Row 2: scale about 0.02, so 2.54 -> 127, 1.27 -> 63.5000005 -> 64
        // and -0.6 -> -30.000002 -> -30.
        CHECK(q.scales.values<float>()(2) == static_cast<float>(2.54f / 127.0));
        CHECK(q.row_sums.values<std::int64_t>() == xt::xarray<std::int64_t>{-31, 0, 161});
    }

    TEST_CASE("quantize_weight round trip and symmetry") {
        Generator generator(3);
        const Tensor weight = uniform({17, 40}, -0.3, 0.3, generator, Dtype::float64);
        const QuantizedWeight q = quantize_weight(weight);
        const QuantizedWeight negated = quantize_weight(
            to_dtype(Tensor(xt::xarray<double>(-weight.values<double>())), Dtype::float64));
        CHECK(negated.values.values<std::int8_t>() ==
              xt::xarray<std::int8_t>(-xt::cast<int>(q.values.values<std::int8_t>())));
        const auto& w = weight.values<double>();
        for (std::size_t n = 0; n < 17; ++n) {
            const double scale = q.scales.values<float>()(n);
            int largest = 0;
            for (std::size_t k = 0; k < 40; ++k) {
                const int code = q.values.values<std::int8_t>()(n, k);
                largest = std::max(largest, std::abs(code));
                CHECK(std::abs(code * scale - w(n, k)) <= 0.5 * scale * (1 + 1e-6));
            }
            CHECK(largest == 127);
        }
        CHECK(q.row_sums.values<std::int64_t>() ==
              weight_row_sums(q.values).values<std::int64_t>());
    }

    TEST_CASE("quantize_weight of a tiny row uses FLT_MIN") {
        const Tensor weight(xt::xarray<double>{{1e-40, -2e-40}});
        const QuantizedWeight q = quantize_weight(weight);
        CHECK(q.scales.values<float>()(0) == FLT_MIN);
        CHECK(q.values.values<std::int8_t>() == xt::xarray<std::int8_t>{{0, 0}});
    }

    TEST_CASE("quantize_weight errors") {
        CHECK_THROWS_WITH_AS(quantize_weight(zeros({2, 3, 4})),
                             doctest::Contains("quantize_weight: expected a weight of shape "
                                               "(out_features, in_features), got shape (2, 3, 4)"),
                             shape_error);
        CHECK_THROWS_WITH_AS(quantize_weight(Tensor(xt::xarray<std::int64_t>{{1, 2}})),
                             doctest::Contains("quantize_weight"), value_error);
        const float nan = std::numeric_limits<float>::quiet_NaN();
        CHECK_THROWS_WITH_AS(quantize_weight(Tensor(xt::xarray<float>{{1.0f, 2.0f}, {3.0f, nan}})),
                             doctest::Contains("quantize_weight: weight[1, 1] is nan"),
                             value_error);
        CHECK_THROWS_WITH_AS(quantize_weight(Tensor()),
                             doctest::Contains("quantize_weight: input 0 is an undefined tensor"),
                             value_error);
    }

    TEST_CASE("weight_row_sums") {
        const Tensor codes(xt::xarray<std::int8_t>{{-128, 127, 1}, {5, 0, -7}});
        CHECK(weight_row_sums(codes).values<std::int64_t>() == xt::xarray<std::int64_t>{0, -2});
        CHECK_THROWS_WITH_AS(weight_row_sums(zeros({2, 3})),
                             doctest::Contains("weight_row_sums: values must be int8, got float32"),
                             value_error);
        CHECK_THROWS_WITH_AS(weight_row_sums(Tensor(xt::xarray<std::int8_t>{1, 2})),
                             doctest::Contains("weight_row_sums: expected int8 values of shape "
                                               "(out_features, in_features), got shape (2)"),
                             shape_error);
    }

    TEST_CASE("quantize_uint8 rounds half to even and clamps") {
        // Scale 0.5 has the exact reciprocal 2, so x * 2 below is exact.
        const float inf = std::numeric_limits<float>::infinity();
        const float nan = std::numeric_limits<float>::quiet_NaN();
        const std::vector<float> inputs = {0.25f,    0.75f, 1.25f, -0.25f, -0.75f, 1000.0f,
                                           -1000.0f, inf,   -inf,  nan,    122.5f, -5.0f};
        // 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -1.5 -> -2, then + 10;
        // NaN goes to the zero point; 245 + 10 = 255 exactly, and -10 + 10 = 0.
        const std::vector<int> codes = {10, 12, 12, 10, 8, 255, 0, 255, 0, 10, 255, 0};
        // Once, through the scalar tail alone, and three times over, so that
        // every value also goes through the 16-lane loop.
        for (std::size_t copies : {1, 3}) {
            auto x = xt::xarray<float>::from_shape({copies * inputs.size()});
            for (std::size_t i = 0; i < x.size(); ++i) {
                x(i) = inputs[i % inputs.size()];
            }
            const Tensor q = quantize_uint8(Tensor(x), {.scale = 0.5, .zero_point = 10});
            REQUIRE(q.dtype() == Dtype::uint8);
            for (std::size_t i = 0; i < x.size(); ++i) {
                CAPTURE(i);
                CHECK(q.values<std::uint8_t>()(i) == codes[i % codes.size()]);
            }
        }
    }

    TEST_CASE("quantize_uint8 vector loop matches the scalar formula") {
        // 16-lane blocks and a tail; values spread over the clamped range.
        Generator generator(5);
        for (std::size_t count : {1, 15, 16, 17, 100, 1000}) {
            const Tensor x = uniform({count}, -3.0, 3.0, generator);
            const QuantizationParams params{.scale = 0.0173, .zero_point = 77};
            const Tensor q = quantize_uint8(x, params);
            const auto inverse = static_cast<float>(1.0 / params.scale);
            std::size_t mismatches = 0;
            for (std::size_t i = 0; i < count; ++i) {
                const double rounded = std::nearbyint(x.values<float>()(i) * inverse);
                const double code = std::clamp(rounded + 77.0, 0.0, 255.0);
                mismatches += q.values<std::uint8_t>()(i) != code ? 1 : 0;
            }
            CAPTURE(count);
            CHECK(mismatches == 0);
        }
    }

    TEST_CASE("quantize_uint8 errors") {
        const Tensor x = zeros({3});
        for (double scale : {0.0, -1.0, 1e-39, 1e39, std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN()}) {
            CAPTURE(scale);
            CHECK_THROWS_WITH_AS(quantize_uint8(x, {.scale = scale, .zero_point = 0}),
                                 doctest::Contains("quantize_uint8: the input scale must be a "
                                                   "positive normal float32 value"),
                                 value_error);
        }
        CHECK_THROWS_WITH_AS(quantize_uint8(x, {.scale = 1.0, .zero_point = 256}),
                             doctest::Contains("quantize_uint8: the input zero point must be in "
                                               "[0, 255], got 256"),
                             value_error);
        CHECK_THROWS_WITH_AS(quantize_uint8(x, {.scale = 1.0, .zero_point = -1}),
                             doctest::Contains("got -1"), value_error);
        CHECK_THROWS_WITH_AS(quantize_uint8(zeros({3}, Dtype::float64), {}),
                             doctest::Contains("quantize_uint8: x must be float32, got float64"),
                             value_error);
    }

    TEST_CASE("quantized_linear hand-worked values") {
        const QuantizedWeight weight{Tensor(xt::xarray<std::int8_t>{{1, -2, 3}, {-4, 5, -6}}),
                                     Tensor(xt::xarray<float>{0.5f, 0.25f}),
                                     Tensor(xt::xarray<std::int64_t>{2, -5})};
        const QuantizationParams input{.scale = 0.1, .zero_point = 10};
        const Tensor x(xt::xarray<float>{{0.3f, -0.5f, 1.0f}, {0.0f, 2.0f, -1.0f}});
        const Tensor bias(xt::xarray<float>{1.0f, -1.0f});
        // q_x = (13, 5, 20) and (10, 30, 0). Row 0:
        //   n = 0: 13 - 10 + 60 = 63, minus 10 * 2 = 43; 0.1 * 0.5 * 43 + 1 = 3.15
        //   n = 1: -52 + 25 - 120 = -147, minus 10 * -5 = -97; 0.025 * -97 - 1 = -3.425
        // Row 1:
        //   n = 0: 10 - 60 + 0 = -50, minus 20 = -70; 0.05 * -70 + 1 = -2.5
        //   n = 1: -40 + 150 + 0 = 110, plus 50 = 160; 0.025 * 160 - 1 = 3
        CHECK(quantize_uint8(x, input).values<std::uint8_t>() ==
              xt::xarray<std::uint8_t>{{13, 5, 20}, {10, 30, 0}});
        const xt::xarray<double> by_hand{{3.15, -3.425}, {-2.5, 3.0}};
        const xt::xarray<double> formula = expected_output(x, input, weight, bias);
        CHECK(testing::all_close(formula, by_hand, 1e-12));

        std::vector<QuantizedKernel> kernels = {QuantizedKernel::reference,
                                                QuantizedKernel::automatic};
        if (onednn_int8_available()) {
            kernels.push_back(QuantizedKernel::onednn);
        }
        for (QuantizedKernel kernel : kernels) {
            CAPTURE(static_cast<int>(kernel));
            const Tensor y = quantized_linear(x, input, weight, bias, kernel);
            REQUIRE(y.dtype() == Dtype::float32);
            check_close_to_formula(y, by_hand);
            // Without bias: the same values less the bias.
            const Tensor no_bias = quantized_linear(x, input, weight, Tensor(), kernel);
            check_close_to_formula(no_bias, xt::xarray<double>{{2.15, -2.425}, {-3.5, 4.0}});
        }
    }

    TEST_CASE("quantized_linear kernels agree bit for bit") {
        if (!onednn_int8_available()) {
            MESSAGE("oneDNN has no VNNI or AMX int8 kernel on this CPU; only the reference runs");
        }
        struct Layer {
            std::size_t in;
            std::size_t out;
        };
        const Layer layers[] = {{784, 256}, {256, 128}, {128, 10}};
        const std::size_t batches[] = {1, 3, 128, 256};
        std::uint64_t seed = 20;
        for (const Layer& layer : layers) {
            Generator generator(seed++);
            const QuantizedWeight weight = random_codes(layer.out, layer.in, generator);
            const Tensor bias = uniform({layer.out}, -1.0, 1.0, generator);
            for (std::size_t batch : batches) {
                // In range, and mostly far outside it, where the codes clamp
                // to 0 and 255 and the sums reach their extremes.
                for (double range : {1.0, 100.0}) {
                    const Tensor x = uniform({batch, layer.in}, -range, range, generator);
                    for (const Tensor& b : {bias, Tensor()}) {
                        CAPTURE(layer.in);
                        CAPTURE(layer.out);
                        CAPTURE(batch);
                        CAPTURE(range);
                        CAPTURE(b.defined());
                        const Tensor reference =
                            quantized_linear(x, kUnitRange, weight, b, QuantizedKernel::reference);
                        check_close_to_formula(reference,
                                               expected_output(x, kUnitRange, weight, b));
                        const Tensor automatic = quantized_linear(x, kUnitRange, weight, b);
                        CHECK(bitwise_differences(reference, automatic) == 0);
                        if (onednn_int8_available()) {
                            const Tensor onednn =
                                quantized_linear(x, kUnitRange, weight, b, QuantizedKernel::onednn);
                            CHECK(bitwise_differences(reference, onednn) == 0);
                        }
                    }
                }
            }
        }
    }

    TEST_CASE("quantized_linear at the extreme sums") {
        // Every code 255 against every weight -128 or 127, with zero point 0:
        // the largest sums in magnitude for 784 inputs.
        const std::size_t in = 784;
        auto codes = xt::xarray<std::int8_t>::from_shape({2, in});
        std::fill(codes.begin(), codes.begin() + in, std::int8_t{-128});
        std::fill(codes.begin() + in, codes.end(), std::int8_t{127});
        const Tensor values(codes);
        const QuantizedWeight weight{values, ones({2}), weight_row_sums(values)};
        const Tensor x = full({3, in}, 1e6);
        const QuantizationParams input{.scale = 1.0, .zero_point = 0};
        const xt::xarray<double> expected{{-255.0 * 128 * in, 255.0 * 127 * in},
                                          {-255.0 * 128 * in, 255.0 * 127 * in},
                                          {-255.0 * 128 * in, 255.0 * 127 * in}};
        const Tensor reference =
            quantized_linear(x, input, weight, Tensor(), QuantizedKernel::reference);
        check_close_to_formula(reference, expected);
        if (onednn_int8_available()) {
            const Tensor onednn =
                quantized_linear(x, input, weight, Tensor(), QuantizedKernel::onednn);
            CHECK(bitwise_differences(reference, onednn) == 0);
        }
    }

    TEST_CASE("quantized_linear keeps leading dimensions") {
        Generator generator(8);
        const QuantizedWeight weight = random_codes(5, 7, generator);
        const Tensor x = uniform({2, 3, 7}, -1.0, 1.0, generator);
        const Tensor y = quantized_linear(x, kUnitRange, weight);
        CHECK(y.shape() == Shape{2, 3, 5});
        check_close_to_formula(y, expected_output(x, kUnitRange, weight, Tensor()));
        const Tensor single =
            quantized_linear(uniform({7}, -1.0, 1.0, generator), kUnitRange, weight);
        CHECK(single.shape() == Shape{5});
    }

    TEST_CASE("quantized_linear with a zero dimension") {
        Generator generator(9);
        const QuantizedWeight weight = random_codes(4, 6, generator);
        const Tensor bias = uniform({4}, -1.0, 1.0, generator);
        for (QuantizedKernel kernel : {QuantizedKernel::automatic, QuantizedKernel::reference}) {
            CHECK(quantized_linear(zeros({0, 6}), kUnitRange, weight, bias, kernel).shape() ==
                  Shape{0, 4});
            // No inputs: every sum is empty, so y is the bias.
            const QuantizedWeight no_inputs{Tensor(xt::xarray<std::int8_t>::from_shape({4, 0})),
                                            ones({4}),
                                            Tensor(xt::xarray<std::int64_t>{0, 0, 0, 0})};
            const Tensor y = quantized_linear(zeros({2, 0}), kUnitRange, no_inputs, bias, kernel);
            REQUIRE(y.shape() == Shape{2, 4});
            for (std::size_t n = 0; n < 4; ++n) {
                CHECK(y.values<float>()(1, n) == bias.values<float>()(n));
            }
            const QuantizedWeight no_outputs{Tensor(xt::xarray<std::int8_t>::from_shape({0, 6})),
                                             zeros({0}),
                                             Tensor(xt::xarray<std::int64_t>::from_shape({0}))};
            CHECK(
                quantized_linear(zeros({2, 6}), kUnitRange, no_outputs, Tensor(), kernel).shape() ==
                Shape{2, 0});
        }
    }

    TEST_CASE("quantized_linear over many shapes and two threads") {
        // More batch sizes than a thread caches oneDNN primitives for, run on
        // two threads at once, each checked against the reference kernel.
        Generator generator(11);
        const QuantizedWeight weight = random_codes(24, 40, generator);
        std::vector<Tensor> inputs;
        for (std::size_t batch = 1; batch <= 40; ++batch) {
            inputs.push_back(uniform({batch, 40}, -1.0, 1.0, generator));
        }
        std::vector<Tensor> references;
        for (const Tensor& x : inputs) {
            references.push_back(
                quantized_linear(x, kUnitRange, weight, Tensor(), QuantizedKernel::reference));
        }
        std::size_t differences[2] = {0, 0};
        auto run = [&](std::size_t thread) {
            for (int pass = 0; pass < 2; ++pass) {
                for (std::size_t i = thread; i < inputs.size(); i += 1 + thread) {
                    const Tensor y = quantized_linear(inputs[i], kUnitRange, weight);
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

    TEST_CASE("quantized_linear replays in a captured graph") {
        Generator generator(12);
        const QuantizedWeight weight = random_codes(6, 10, generator);
        const Tensor bias = uniform({6}, -1.0, 1.0, generator);
        auto layer = [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{relu(quantized_linear(in[0], kUnitRange, weight, bias))};
        };
        Graph graph = capture(layer, {uniform({4, 10}, -1.0, 1.0, generator)});
        for (int call = 0; call < 3; ++call) {
            const Tensor x = uniform({4, 10}, -1.0, 1.0, generator);
            const Tensor eager = layer({x})[0];
            const Tensor& replayed = graph.forward({x})[0];
            CHECK(bitwise_differences(eager, replayed) == 0);
        }
    }

    TEST_CASE("quantized_linear records no gradient") {
        Generator generator(13);
        const QuantizedWeight weight = random_codes(3, 4, generator);
        Tensor x = uniform({2, 4}, -1.0, 1.0, generator);
        x.requires_grad_(true);
        const Tensor y = quantized_linear(x, kUnitRange, weight);
        CHECK_FALSE(y.requires_grad());
        CHECK(y.is_leaf());
    }

    TEST_CASE("quantized_linear describes its attributes") {
        const OpDef& op = find_op("quantized_linear");
        CHECK_FALSE(op.info.differentiable);
        OpAttrs attrs;
        attrs.scalars[0] = 0.02;
        attrs.ints = {128, static_cast<std::int64_t>(QuantizedKernel::automatic)};
        CHECK(op.describe(attrs) == "input_scale=0.02, input_zero_point=128");
        attrs.ints[1] = static_cast<std::int64_t>(QuantizedKernel::reference);
        CHECK(op.describe(attrs) == "input_scale=0.02, input_zero_point=128, kernel=reference");
    }

    TEST_CASE("quantized_linear errors") {
        Generator generator(14);
        const QuantizedWeight good = random_codes(2, 3, generator);
        const Tensor x = zeros({4, 3});
        const QuantizationParams input{.scale = 0.1, .zero_point = 0};
        const OpDef& op = find_op("quantized_linear");

        SUBCASE("number of tensors and attributes") {
            OpAttrs attrs;
            attrs.scalars[0] = 0.1;
            attrs.ints = {0, 0};
            CHECK_THROWS_WITH_AS(apply(op, {x, good.values, good.scales}, attrs),
                                 doctest::Contains("quantized_linear: expected x, values, scales, "
                                                   "row_sums and an optional bias, got 3 tensors"),
                                 value_error);
            const std::vector<Tensor> inputs = {x, good.values, good.scales, good.row_sums};
            attrs.ints = {0};
            CHECK_THROWS_WITH_AS(apply(op, inputs, attrs),
                                 doctest::Contains("quantized_linear: attrs.ints must be {input "
                                                   "zero point, kernel}, got 1 values"),
                                 value_error);
            attrs.ints = {0, 3};
            CHECK_THROWS_WITH_AS(apply(op, inputs, attrs),
                                 doctest::Contains("quantized_linear: attrs.ints[1] must be a "
                                                   "QuantizedKernel, 0, 1 or 2, got 3"),
                                 value_error);
        }

        SUBCASE("input scale and zero point") {
            CHECK_THROWS_WITH_AS(quantized_linear(x, {.scale = 0.0, .zero_point = 0}, good),
                                 doctest::Contains("quantized_linear: the input scale must be a "
                                                   "positive normal float32 value, from FLT_MIN = "
                                                   "1.17549e-38 to FLT_MAX = 3.40282e+38, got 0"),
                                 value_error);
            CHECK_THROWS_WITH_AS(quantized_linear(x, {.scale = 0.1, .zero_point = 300}, good),
                                 doctest::Contains("quantized_linear: the input zero point must "
                                                   "be in [0, 255], got 300"),
                                 value_error);
        }

        SUBCASE("dtypes") {
            CHECK_THROWS_WITH_AS(quantized_linear(zeros({4, 3}, Dtype::float64), input, good),
                                 doctest::Contains("quantized_linear: x must be float32, got "
                                                   "float64; convert it with to_dtype()"),
                                 value_error);
            QuantizedWeight float_values = good;
            float_values.values = zeros({2, 3});
            CHECK_THROWS_WITH_AS(quantized_linear(x, input, float_values),
                                 doctest::Contains("quantized_linear: values must be int8, got "
                                                   "float32"),
                                 value_error);
            QuantizedWeight double_scales = good;
            double_scales.scales = ones({2}, Dtype::float64);
            CHECK_THROWS_WITH_AS(quantized_linear(x, input, double_scales),
                                 doctest::Contains("quantized_linear: scales must be float32, got "
                                                   "float64"),
                                 value_error);
            QuantizedWeight int8_sums = good;
            int8_sums.row_sums = Tensor(xt::xarray<std::int8_t>{0, 0});
            CHECK_THROWS_WITH_AS(quantized_linear(x, input, int8_sums),
                                 doctest::Contains("quantized_linear: row_sums must be int64, got "
                                                   "int8"),
                                 value_error);
            CHECK_THROWS_WITH_AS(quantized_linear(x, input, good, zeros({2}, Dtype::float64)),
                                 doctest::Contains("quantized_linear: bias must be float32, got "
                                                   "float64"),
                                 value_error);
        }

        SUBCASE("shapes") {
            QuantizedWeight flat = good;
            flat.values = Tensor(xt::xarray<std::int8_t>{1, 2, 3});
            CHECK_THROWS_WITH_AS(quantized_linear(x, input, flat),
                                 doctest::Contains("quantized_linear: values must have shape "
                                                   "(out_features, in_features), got (3)"),
                                 shape_error);
            QuantizedWeight short_scales = good;
            short_scales.scales = ones({3});
            CHECK_THROWS_WITH_AS(quantized_linear(x, input, short_scales),
                                 doctest::Contains("quantized_linear: scales has shape (3) but "
                                                   "values has shape (2, 3); expected scales of "
                                                   "shape (2)"),
                                 shape_error);
            QuantizedWeight matrix_sums = good;
            matrix_sums.row_sums = Tensor(xt::xarray<std::int64_t>{{0, 0}});
            CHECK_THROWS_WITH_AS(quantized_linear(x, input, matrix_sums),
                                 doctest::Contains("quantized_linear: row_sums has shape (1, 2)"),
                                 shape_error);
            CHECK_THROWS_WITH_AS(quantized_linear(x, input, good, zeros({3})),
                                 doctest::Contains("quantized_linear: bias has shape (3) but "
                                                   "values has shape (2, 3); expected bias of "
                                                   "shape (2)"),
                                 shape_error);
            CHECK_THROWS_WITH_AS(quantized_linear(zeros({4, 5}), input, good),
                                 doctest::Contains("quantized_linear: x has shape (4, 5) but "
                                                   "values has shape (2, 3); the last dimension "
                                                   "of x must be 3"),
                                 shape_error);
            CHECK_THROWS_WITH_AS(quantized_linear(scalar(1.0), input, good),
                                 doctest::Contains("quantized_linear: x has shape ()"),
                                 shape_error);
        }

        SUBCASE("weight scales and row sums") {
            for (float scale : {0.0f, -1.0f, std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN()}) {
                QuantizedWeight bad = good;
                bad.scales = Tensor(xt::xarray<float>{1.0f, scale});
                CAPTURE(scale);
                CHECK_THROWS_WITH_AS(quantized_linear(x, input, bad),
                                     doctest::Contains("quantized_linear: scales[1] is"),
                                     value_error);
            }
            QuantizedWeight bad_sums = good;
            bad_sums.row_sums = Tensor(xt::xarray<std::int64_t>{0, 382});
            CHECK_THROWS_WITH_AS(quantized_linear(x, input, bad_sums),
                                 doctest::Contains("quantized_linear: row_sums[1] is 382, outside "
                                                   "[-384, 381] for in_features 3"),
                                 value_error);
        }

        SUBCASE("too many in_features") {
            const std::size_t in = kMaxQuantizedInFeatures + 1;
            const Tensor values(xt::xarray<std::int8_t>(Shape{1, in}, std::int8_t{0}));
            const QuantizedWeight wide{values, ones({1}), weight_row_sums(values)};
            CHECK_THROWS_WITH_AS(quantized_linear(zeros({1, in}), input, wide),
                                 doctest::Contains("quantized_linear: in_features 65794 exceeds "
                                                   "65793"),
                                 not_implemented);
        }

        SUBCASE("the oneDNN kernel where it is unavailable") {
            if (!onednn_int8_available()) {
                CHECK_THROWS_WITH_AS(
                    quantized_linear(x, input, good, Tensor(), QuantizedKernel::onednn),
                    doctest::Contains("quantized_linear: the oneDNN kernel needs VNNI or AMX"),
                    not_implemented);
            }
        }
    }
}

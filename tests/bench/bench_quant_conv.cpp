// Int8 against float32 convolution: each 3x3 convolution of the
// Fashion-MNIST CNN in examples/fashion_cnn.cpp (1 -> 32 on 28x28, 32 -> 64
// on 14x14, 64 -> 64 on 7x7, padding 1, with bias as after batch-norm
// folding) at batch 256, `conv2d` against `quantized_conv2d`, called eagerly
// under NoGradGuard.
//
//   build/tests/bench/bench_quant_conv [rounds]
//
// Each round times a block of float32 calls and a block of int8 calls, in
// alternating order, so both see the same machine phase. The table gives
// the median time per call, the median of the per-round ratios float32 /
// int8 (above 1, int8 is faster) and, once, the int8 time of the reference
// kernel. Weights are uniform in +-sqrt(6 / fan_in), as nn::Conv2d draws
// them, and quantized with quantize_conv_weight(). Inputs are uniform in
// [0, 1), like images or ReLU outputs, quantized with scale 1/255 and zero
// point 0. The largest |float32 - int8| output difference is printed as a
// check that both compute the same function.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "xgrad/ops/quantized_conv.hpp"
#include "xgrad/xgrad.hpp"

namespace {

constexpr std::size_t kBatch = 256;
constexpr double kBlockSeconds = 20e-3;  // length of one timed block of calls
constexpr std::uint64_t kSeed = 31;

struct Layer {
    std::size_t in_channels;
    std::size_t out_channels;
    std::size_t side;
};

constexpr Layer kLayers[] = {{1, 32, 28}, {32, 64, 14}, {64, 64, 7}};

using Call = std::function<void()>;

double seconds_per_call(const Call& call, int calls) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) {
        call();
    }
    const auto stop = std::chrono::steady_clock::now();
    return std::chrono::duration<double>(stop - start).count() / calls;
}

double median(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
}

struct Comparison {
    double float_ms;
    double int8_ms;
    double ratio;  // median of the per-round float / int8
};

Comparison compare(const Call& float_call, const Call& int8_call, int rounds) {
    seconds_per_call(float_call, 2);
    seconds_per_call(int8_call, 2);
    const double estimate =
        std::max(seconds_per_call(float_call, 3), seconds_per_call(int8_call, 3));
    const int calls = std::max(1, static_cast<int>(kBlockSeconds / estimate));
    std::vector<double> float_times;
    std::vector<double> int8_times;
    std::vector<double> ratios;
    for (int round = 0; round < rounds; ++round) {
        double float_time = 0.0;
        double int8_time = 0.0;
        if (round % 2 == 0) {
            float_time = seconds_per_call(float_call, calls);
            int8_time = seconds_per_call(int8_call, calls);
        } else {
            int8_time = seconds_per_call(int8_call, calls);
            float_time = seconds_per_call(float_call, calls);
        }
        float_times.push_back(float_time);
        int8_times.push_back(int8_time);
        ratios.push_back(float_time / int8_time);
    }
    return {median(float_times) * 1e3, median(int8_times) * 1e3, median(ratios)};
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 11;
    xgrad::NoGradGuard no_grad;
    xgrad::Generator generator(kSeed);
    const xgrad::QuantizationParams input{.scale = 1.0 / 255.0, .zero_point = 0};
    const xgrad::Conv2dParams params{.padding = {1, 1}};

    std::printf(
        "fashion_cnn convolutions at batch %zu, float32 `conv2d` against int8 "
        "`quantized_conv2d`, %d rounds, medians\n",
        kBatch, rounds);
    std::printf("oneDNN int8 kernel available: %s\n\n",
                xgrad::onednn_int8_available() ? "yes" : "no (reference kernel)");
    std::printf(
        "| layer | conv2d ms | quantized_conv2d ms | conv2d / quantized_conv2d | "
        "reference kernel ms | max abs difference |\n");
    std::printf("| --- | --- | --- | --- | --- | --- |\n");

    std::vector<Comparison> results;
    for (const Layer& layer : kLayers) {
        const auto fan_in = static_cast<double>(layer.in_channels * 9);
        const double bound = std::sqrt(6.0 / fan_in);
        const xgrad::Tensor weight =
            xgrad::uniform({layer.out_channels, layer.in_channels, 3, 3}, -bound, bound, generator);
        const xgrad::Tensor bias = xgrad::uniform({layer.out_channels}, -0.1, 0.1, generator);
        const xgrad::QuantizedWeight quantized = xgrad::quantize_conv_weight(weight);
        const xgrad::Tensor x = xgrad::uniform({kBatch, layer.in_channels, layer.side, layer.side},
                                               0.0, 1.0, generator);

        const Call float_call = [&] { xgrad::conv2d(x, weight, bias, params); };
        const Call int8_call = [&] { xgrad::quantized_conv2d(x, input, quantized, bias, params); };
        const Comparison c = compare(float_call, int8_call, rounds);
        const Call reference_call = [&] {
            xgrad::quantized_conv2d(x, input, quantized, bias, params,
                                    xgrad::QuantizedKernel::reference);
        };
        seconds_per_call(reference_call, 1);
        const double reference_ms = seconds_per_call(reference_call, 1) * 1e3;
        const double difference = xt::amax(
            xt::abs(xgrad::conv2d(x, weight, bias, params).values<float>() -
                    xgrad::quantized_conv2d(x, input, quantized, bias, params).values<float>()))();
        std::printf("| %zu -> %zu, %zux%zu | %.2f | %.2f | %.2f | %.1f | %.4f |\n",
                    layer.in_channels, layer.out_channels, layer.side, layer.side, c.float_ms,
                    c.int8_ms, c.ratio, reference_ms, difference);
        results.push_back(c);
    }
    std::printf("\n");
    for (std::size_t i = 0; i < results.size(); ++i) {
        std::printf(
            "{\"bench\": \"quant_conv\", \"in\": %zu, \"out\": %zu, \"side\": %zu, "
            "\"batch\": %zu, \"conv2d_ms\": %.3f, \"quantized_conv2d_ms\": %.3f, "
            "\"ratio\": %.3f}\n",
            kLayers[i].in_channels, kLayers[i].out_channels, kLayers[i].side, kBatch,
            results[i].float_ms, results[i].int8_ms, results[i].ratio);
    }
    return 0;
}

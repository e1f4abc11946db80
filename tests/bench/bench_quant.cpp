// Int8 against float32 inference: the Fashion-MNIST MLP (784 -> 256 -> 128
// -> 10, ReLU between) built from `linear` against the same network built
// from `quantized_linear`, at batch 1, 128 and 256, called eagerly (public
// functions under NoGradGuard, a new output per call) and replayed as
// captured graphs (outputs preallocated).
//
//   build/tests/bench/bench_quant [rounds]
//
// Each round times a block of float32 forwards and a block of int8 forwards,
// in alternating order, so both see the same machine phase. The tables give
// the median time per forward and the median of the per-round speedups
// float32 / int8; above 1, int8 is faster. Then, at batch 256:
//
//   - per layer, `linear`, `quantized_linear`, and `quantize_uint8` of that
//     layer's input alone (the float-to-uint8 pass that quantized_linear
//     runs first), to show where the int8 time goes;
//   - threads: `linear` 784 -> 256 timed right after another `linear`
//     call, right after a `quantized_linear` call, and right after a oneDNN
//     int8 matmul on oneDNN's default OpenMP threads (what quantized_linear
//     avoids); and the two int8 calls timed after one of their own and
//     right after a `linear` call. This part runs last, because OpenMP
//     threads, once started, stay.
//
// Weights are uniform in +-sqrt(6 / in_features) and biases in
// +-1/sqrt(in_features), as nn::Linear's default initialization draws them,
// and the weights are quantized with quantize_weight(). The input is uniform in [0, 1),
// like Fashion-MNIST pixels scaled to [0, 1], and is quantized with scale
// 1/255 and zero point 0. The inputs of layers 2 and 3 are ReLU outputs,
// quantized with zero point 0 and the scale that maps their maximum over one
// calibration batch to 255. The program prints the largest difference
// between the two networks' outputs as a check that both compute the same
// function.

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "xgrad/ops/quantized.hpp"
#include "xgrad/xgrad.hpp"

namespace {

constexpr std::size_t kSizes[] = {784, 256, 128, 10};
constexpr std::size_t kLayers = 3;
constexpr std::size_t kBatches[] = {1, 128, 256};
constexpr std::size_t kBreakdownBatch = 256;
constexpr double kBlockSeconds = 4e-3;  // length of one timed block of calls
constexpr std::uint64_t kSeed = 17;

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
    double float_us;
    double int8_us;
    double speedup;  // median of the per-round float / int8
};

// Alternating blocks of the two calls, sized to about kBlockSeconds of the
// slower one.
Comparison compare(const Call& float_call, const Call& int8_call, int rounds) {
    seconds_per_call(float_call, 5);
    seconds_per_call(int8_call, 5);
    const double estimate =
        std::max(seconds_per_call(float_call, 10), seconds_per_call(int8_call, 10));
    const int calls = std::max(1, static_cast<int>(kBlockSeconds / estimate));
    std::vector<double> float_times;
    std::vector<double> int8_times;
    std::vector<double> speedups;
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
        speedups.push_back(float_time / int8_time);
    }
    return {median(float_times) * 1e6, median(int8_times) * 1e6, median(speedups)};
}

// --- the two networks ---------------------------------------------------------

struct Network {
    xgrad::Tensor weights[kLayers];
    xgrad::Tensor biases[kLayers];
    xgrad::QuantizedWeight quantized[kLayers];
    xgrad::QuantizationParams inputs[kLayers];
};

xgrad::Tensor float_layer(const Network& net, std::size_t i, const xgrad::Tensor& x) {
    return xgrad::linear(x, net.weights[i], net.biases[i]);
}

xgrad::Tensor int8_layer(const Network& net, std::size_t i, const xgrad::Tensor& x) {
    return xgrad::quantized_linear(x, net.inputs[i], net.quantized[i], net.biases[i]);
}

template <class Layer>
xgrad::Tensor forward(const Network& net, const Layer& layer, xgrad::Tensor x) {
    for (std::size_t i = 0; i < kLayers; ++i) {
        x = layer(net, i, x);
        if (i + 1 < kLayers) {
            x = xgrad::relu(x);
        }
    }
    return x;
}

// The quantization parameters of a ReLU output: zero point 0 and the scale
// that maps its maximum to 255.
xgrad::QuantizationParams relu_params(const xgrad::Tensor& activation) {
    const auto& values = activation.values<float>();
    const float largest = *std::max_element(values.begin(), values.end());
    return {.scale = std::max(static_cast<double>(largest), 1e-6) / 255.0, .zero_point = 0};
}

Network make_network(xgrad::Generator& generator) {
    Network net;
    for (std::size_t i = 0; i < kLayers; ++i) {
        const auto fan_in = static_cast<double>(kSizes[i]);
        const double bound = std::sqrt(6.0 / fan_in);
        const double bias_bound = 1.0 / std::sqrt(fan_in);
        net.weights[i] = xgrad::uniform({kSizes[i + 1], kSizes[i]}, -bound, bound, generator);
        net.biases[i] = xgrad::uniform({kSizes[i + 1]}, -bias_bound, bias_bound, generator);
        net.quantized[i] = xgrad::quantize_weight(net.weights[i]);
    }
    net.inputs[0] = {.scale = 1.0 / 255.0, .zero_point = 0};
    const xgrad::Tensor calibration = xgrad::uniform({256, kSizes[0]}, 0.0, 1.0, generator);
    xgrad::Tensor h = calibration;
    for (std::size_t i = 1; i < kLayers; ++i) {
        h = xgrad::relu(float_layer(net, i - 1, h));
        net.inputs[i] = relu_params(h);
    }
    return net;
}

double max_difference(const xgrad::Tensor& a, const xgrad::Tensor& b) {
    return xt::amax(xt::abs(a.values<float>() - b.values<float>()))();
}

void print_comparisons(const char* mode, const std::vector<Comparison>& results) {
    std::printf("\n%s:\n\n| batch | float32 us | int8 us | float32 / int8 |\n", mode);
    std::printf("| --- | --- | --- | --- |\n");
    for (std::size_t b = 0; b < results.size(); ++b) {
        const Comparison& c = results[b];
        std::printf("| %zu | %.1f | %.1f | %.2f |\n", kBatches[b], c.float_us, c.int8_us,
                    c.speedup);
    }
}

// --- threads ------------------------------------------------------------------

// oneDNN's u8 x s8 -> s32 matmul on its default thread count: the int8
// product of quantized_linear without the single-thread scope around it.
class OpenMpMatmul {
  public:
    OpenMpMatmul(std::size_t rows, std::size_t in, std::size_t out)
        : stream_(engine_), source_(rows * in, 1), weights_(out * in, 1), sums_(rows * out) {
        using dnnl::memory;
        const auto m = static_cast<memory::dim>(rows);
        const auto k = static_cast<memory::dim>(in);
        const auto n = static_cast<memory::dim>(out);
        const memory::desc source({m, k}, memory::data_type::u8, memory::format_tag::ab);
        const memory::desc weights({k, n}, memory::data_type::s8, memory::format_tag::ba);
        const memory::desc sums({m, n}, memory::data_type::s32, memory::format_tag::ab);
        description_ =
            dnnl::matmul::primitive_desc(dnnl::matmul::desc(source, weights, sums), engine_);
        matmul_ = dnnl::matmul(description_);
        arguments_ = {{DNNL_ARG_SRC, memory(source, engine_, source_.data())},
                      {DNNL_ARG_WEIGHTS, memory(weights, engine_, weights_.data())},
                      {DNNL_ARG_DST, memory(sums, engine_, sums_.data())}};
    }

    void operator()() {
        matmul_.execute(stream_, arguments_);
        stream_.wait();
    }

    /// oneDNN's name for the kernel it chose, such as "brg:avx512_core_amx_int8".
    std::string implementation() const { return description_.impl_info_str(); }

  private:
    dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream_;
    std::vector<std::uint8_t> source_;
    std::vector<std::int8_t> weights_;
    std::vector<std::int32_t> sums_;
    dnnl::matmul::primitive_desc description_;
    dnnl::matmul matmul_;
    std::unordered_map<int, dnnl::memory> arguments_;
};

// Median time of `measured` when each call follows one call of `before`
// (or, without `before`, the previous call of `measured`), over `rounds`
// blocks of `calls` pairs.
double median_after(const Call& before, const Call& measured, int rounds, int calls) {
    std::vector<double> times;
    for (int round = 0; round < rounds; ++round) {
        double total = 0.0;
        for (int i = 0; i < calls; ++i) {
            if (before) {
                before();
            }
            const auto start = std::chrono::steady_clock::now();
            measured();
            total +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
        times.push_back(total / calls);
    }
    return median(times) * 1e6;
}

struct ThreadCase {
    const char* measured;
    const char* after;
    Call before;
    Call call;
};

// Rounds of all cases in turn, so that every case is measured in each machine phase.
std::vector<double> measure_cases(const std::vector<ThreadCase>& cases, int rounds) {
    constexpr int kCalls = 20;
    std::vector<std::vector<double>> samples(cases.size());
    for (int round = 0; round < rounds; ++round) {
        for (std::size_t c = 0; c < cases.size(); ++c) {
            samples[c].push_back(median_after(cases[c].before, cases[c].call, 1, kCalls));
        }
    }
    std::vector<double> medians;
    for (const auto& times : samples) {
        medians.push_back(median(times));
    }
    return medians;
}

// Two phases: xgrad's ops alone, then with oneDNN on its OpenMP threads.
// The second phase comes last and measures no op "after nothing", because
// OpenMP's idle threads spin for milliseconds after each call and would slow
// whatever follows.
void measure_threads(const Network& net, int rounds) {
    xgrad::Generator generator(kSeed + 1);
    const xgrad::Tensor x = xgrad::uniform({kBreakdownBatch, kSizes[0]}, 0.0, 1.0, generator);
    OpenMpMatmul openmp(kBreakdownBatch, kSizes[0], kSizes[1]);
    const Call float_call = [&] { float_layer(net, 0, x); };
    const Call int8_call = [&] { int8_layer(net, 0, x); };
    const Call openmp_call = [&] { openmp(); };
    std::vector<ThreadCase> cases = {
        {"linear", "linear", Call(), float_call},
        {"linear", "quantized_linear", int8_call, float_call},
        {"quantized_linear", "quantized_linear", Call(), int8_call},
        {"quantized_linear", "linear", float_call, int8_call},
    };
    std::vector<double> medians = measure_cases(cases, rounds);
    const std::vector<ThreadCase> openmp_cases = {
        {"linear", "oneDNN on OpenMP threads", openmp_call, float_call},
        {"oneDNN on OpenMP threads", "oneDNN on OpenMP threads", Call(), openmp_call},
        {"oneDNN on OpenMP threads", "linear", float_call, openmp_call},
    };
    for (double us : measure_cases(openmp_cases, rounds)) {
        medians.push_back(us);
    }
    cases.insert(cases.end(), openmp_cases.begin(), openmp_cases.end());

    std::printf(
        "\nThreads, 784 -> 256 at batch %zu, median us per measured call "
        "(oneDNN implementation %s):\n\n",
        kBreakdownBatch, openmp.implementation().c_str());
    std::printf("| measured | right after | us |\n| --- | --- | --- |\n");
    for (std::size_t c = 0; c < cases.size(); ++c) {
        std::printf("| %s | %s | %.1f |\n", cases[c].measured, cases[c].after, medians[c]);
    }
    std::printf("\n");
    for (std::size_t c = 0; c < cases.size(); ++c) {
        std::printf(
            "{\"bench\": \"quant_threads\", \"measured\": \"%s\", \"after\": \"%s\", "
            "\"us\": %.2f}\n",
            cases[c].measured, cases[c].after, medians[c]);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
    xgrad::NoGradGuard no_grad;
    xgrad::Generator generator(kSeed);
    const Network net = make_network(generator);

    std::printf(
        "Fashion-MNIST MLP 784-256-128-10, float32 `linear` against int8 "
        "`quantized_linear`, %d rounds, medians\n",
        rounds);
    std::printf("oneDNN int8 kernel available: %s\n",
                xgrad::onednn_int8_available() ? "yes" : "no (reference kernel)");

    std::vector<Comparison> eager;
    std::vector<Comparison> replay;
    for (std::size_t batch : kBatches) {
        const xgrad::Tensor x = xgrad::uniform({batch, kSizes[0]}, 0.0, 1.0, generator);
        auto float_net = [&](const std::vector<xgrad::Tensor>& in) {
            return std::vector<xgrad::Tensor>{forward(net, float_layer, in[0])};
        };
        auto int8_net = [&](const std::vector<xgrad::Tensor>& in) {
            return std::vector<xgrad::Tensor>{forward(net, int8_layer, in[0])};
        };
        std::printf(
            "batch %zu: largest |float32 - int8| output difference %.4f "
            "(largest |output| %.4f)\n",
            batch, max_difference(float_net({x})[0], int8_net({x})[0]),
            static_cast<double>(xt::amax(xt::abs(float_net({x})[0].values<float>()))()));
        eager.push_back(compare([&] { float_net({x}); }, [&] { int8_net({x}); }, rounds));

        xgrad::Graph float_graph = xgrad::capture(float_net, {x});
        xgrad::Graph int8_graph = xgrad::capture(int8_net, {x});
        const std::vector<xgrad::Tensor> inputs = {x};
        replay.push_back(compare([&] { float_graph.forward(inputs); },
                                 [&] { int8_graph.forward(inputs); }, rounds));
    }
    print_comparisons("Eager", eager);
    print_comparisons("Graph replay", replay);
    std::printf("\n");
    for (std::size_t b = 0; b < std::size(kBatches); ++b) {
        for (const auto& [mode, c] :
             {std::pair{"eager", eager[b]}, std::pair{"replay", replay[b]}}) {
            std::printf(
                "{\"bench\": \"quant_mlp\", \"mode\": \"%s\", \"batch\": %zu, "
                "\"float32_us\": %.2f, \"int8_us\": %.2f, \"speedup\": %.3f}\n",
                mode, kBatches[b], c.float_us, c.int8_us, c.speedup);
        }
    }

    // Per layer at batch 256: the layer inputs of one float forward.
    std::printf("\nPer layer at batch %zu (eager calls), median us:\n\n", kBreakdownBatch);
    std::printf(
        "| layer | linear | quantized_linear | of which quantize_uint8 | "
        "linear / quantized_linear |\n| --- | --- | --- | --- | --- |\n");
    xgrad::Tensor h = xgrad::uniform({kBreakdownBatch, kSizes[0]}, 0.0, 1.0, generator);
    std::vector<std::string> json;
    for (std::size_t i = 0; i < kLayers; ++i) {
        const Comparison layer =
            compare([&] { float_layer(net, i, h); }, [&] { int8_layer(net, i, h); }, rounds);
        const Comparison quantize =
            compare([&] { float_layer(net, i, h); },
                    [&] { xgrad::quantize_uint8(h, net.inputs[i]); }, rounds);
        std::printf("| %zu -> %zu | %.1f | %.1f | %.1f | %.2f |\n", kSizes[i], kSizes[i + 1],
                    layer.float_us, layer.int8_us, quantize.int8_us, layer.speedup);
        char line[256];
        std::snprintf(line, sizeof line,
                      "{\"bench\": \"quant_layer\", \"in\": %zu, \"out\": %zu, \"batch\": %zu, "
                      "\"linear_us\": %.2f, \"quantized_linear_us\": %.2f, "
                      "\"quantize_uint8_us\": %.2f, \"speedup\": %.3f}",
                      kSizes[i], kSizes[i + 1], kBreakdownBatch, layer.float_us, layer.int8_us,
                      quantize.int8_us, layer.speedup);
        json.emplace_back(line);
        h = xgrad::relu(float_layer(net, i, h));
    }
    std::printf("\n");
    for (const std::string& line : json) {
        std::printf("%s\n", line.c_str());
    }

    measure_threads(net, rounds);
    return 0;
}

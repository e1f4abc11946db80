// conv2d's float32 forward two ways, im2col plus OpenBLAS against oneDNN's
// convolution on the calling thread alone, for the 3x3 layers of
// examples/fashion_cnn (1 -> 32 on 28x28, 32 -> 64 on 14x14, 64 -> 64 on
// 7x7, padding 1, no bias) at batch 128 and 256.
//
//   build/tests/bench/bench_conv_kernel [rounds]
//
// The kernel is switched with XGRAD_CONV_KERNEL (im2col or onednn),
// which conv2d reads at every call. Each round times a block of calls of
// each kernel in a rotating order, so all see the same machine phase. The
// tables give medians over the rounds. Three tables:
//
// - forward: conv2d under NoGradGuard, per layer and batch;
// - step: forward and backward of all three layers, as the conv_step
//   workload of bench_compare (only the forward differs between kernels);
// - spin: the 32 -> 64 forward followed by a 256 x 784 x 256 float32
//   matmul, with im2col, with the library's one-thread oneDNN, and with
//   oneDNN called directly on its default OpenMP team (2 threads here),
//   to show what the idle OpenMP threads cost the OpenBLAS product after
//   them. Run it without OMP_WAIT_POLICY in the environment, as a library
//   user would.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "xgrad/xgrad.hpp"

namespace {

constexpr double kBlockSeconds = 40e-3;  // length of one timed block of calls
constexpr std::uint64_t kSeed = 17;

struct Layer {
    std::size_t in_channels;
    std::size_t out_channels;
    std::size_t side;
};

constexpr Layer kLayers[] = {{1, 32, 28}, {32, 64, 14}, {64, 64, 7}};
constexpr std::size_t kBatches[] = {128, 256};

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

void select_kernel(const char* kernel) { setenv("XGRAD_CONV_KERNEL", kernel, 1); }

// Runs `call` under a kernel setting.
Call with_kernel(const char* kernel, Call call) {
    return [kernel, call] {
        select_kernel(kernel);
        call();
    };
}

// Median ms per call of each of `calls`, timed in blocks in a rotating
// order, and the median of the per-round ratios of each to the first.
struct Timings {
    std::vector<double> ms;
    std::vector<double> ratio_to_first;
};

Timings compare(const std::vector<Call>& calls, int rounds) {
    double estimate = 0.0;
    for (const Call& call : calls) {
        seconds_per_call(call, 2);
        estimate = std::max(estimate, seconds_per_call(call, 3));
    }
    const int repeats = std::max(1, static_cast<int>(kBlockSeconds / estimate));
    std::vector<std::vector<double>> times(calls.size());
    std::vector<std::vector<double>> ratios(calls.size());
    for (int round = 0; round < rounds; ++round) {
        std::vector<double> this_round(calls.size());
        for (std::size_t i = 0; i < calls.size(); ++i) {
            const std::size_t k = (i + static_cast<std::size_t>(round)) % calls.size();
            this_round[k] = seconds_per_call(calls[k], repeats);
        }
        for (std::size_t k = 0; k < calls.size(); ++k) {
            times[k].push_back(this_round[k]);
            ratios[k].push_back(this_round[k] / this_round[0]);
        }
    }
    Timings result;
    for (std::size_t k = 0; k < calls.size(); ++k) {
        result.ms.push_back(median(times[k]) * 1e3);
        result.ratio_to_first.push_back(median(ratios[k]));
    }
    return result;
}

float largest_difference(const xgrad::Tensor& a, const xgrad::Tensor& b) {
    const auto& u = a.values<float>();
    const auto& v = b.values<float>();
    float largest = 0.0f;
    for (std::size_t i = 0; i < u.size(); ++i) {
        largest = std::max(largest, std::abs(u.data()[i] - v.data()[i]));
    }
    return largest;
}

const xgrad::Conv2dParams kParams{.padding = {1, 1}};

void forward_table(int rounds) {
    xgrad::NoGradGuard no_grad;
    xgrad::Generator generator(kSeed);
    std::printf("forward, ms per call\n\n");
    std::printf("| layer | batch | im2col | oneDNN 1 thread | oneDNN / im2col | max abs difference |\n");
    std::printf("| --- | --- | --- | --- | --- | --- |\n");
    for (const Layer& layer : kLayers) {
        for (std::size_t batch : kBatches) {
            const xgrad::Tensor x = xgrad::uniform(
                {batch, layer.in_channels, layer.side, layer.side}, -1.0, 1.0, generator);
            const xgrad::Tensor w = xgrad::uniform({layer.out_channels, layer.in_channels, 3, 3},
                                                   -0.1, 0.1, generator);
            const Call forward = [&x, &w] { xgrad::conv2d(x, w, {}, kParams); };
            select_kernel("im2col");
            const xgrad::Tensor reference = xgrad::conv2d(x, w, {}, kParams);
            select_kernel("onednn");
            const float difference = largest_difference(reference, xgrad::conv2d(x, w, {}, kParams));
            const Timings t =
                compare({with_kernel("im2col", forward), with_kernel("onednn", forward)}, rounds);
            std::printf("| %zu -> %zu, %zux%zu | %zu | %.2f | %.2f | %.2f | %.1e |\n",
                        layer.in_channels, layer.out_channels, layer.side, layer.side, batch,
                        t.ms[0], t.ms[1], t.ratio_to_first[1], double(difference));
        }
    }
}

void step_table(int rounds) {
    std::printf("\nstep: forward and backward of the three layers, ms per step\n\n");
    std::printf("| batch | im2col | oneDNN 1 thread forward | oneDNN / im2col |\n");
    std::printf("| --- | --- | --- | --- |\n");
    for (std::size_t batch : kBatches) {
        xgrad::Generator generator(kSeed);
        std::vector<xgrad::Tensor> inputs;
        std::vector<xgrad::Tensor> weights;
        std::vector<xgrad::Tensor> grads;
        for (const Layer& layer : kLayers) {
            inputs.push_back(xgrad::uniform({batch, layer.in_channels, layer.side, layer.side},
                                            -1.0, 1.0, generator));
            weights.push_back(xgrad::uniform({layer.out_channels, layer.in_channels, 3, 3}, -0.1,
                                             0.1, generator));
            grads.push_back(xgrad::uniform({batch, layer.out_channels, layer.side, layer.side},
                                           -1.0, 1.0, generator));
            inputs.back().requires_grad_(inputs.size() > 1);
            weights.back().requires_grad_(true);
        }
        const Call step = [&] {
            for (std::size_t i = 0; i < inputs.size(); ++i) {
                inputs[i].zero_grad();
                weights[i].zero_grad();
                xgrad::conv2d(inputs[i], weights[i], {}, kParams).backward(grads[i]);
            }
        };
        const Timings t =
            compare({with_kernel("im2col", step), with_kernel("onednn", step)}, rounds);
        std::printf("| %zu | %.2f | %.2f | %.2f |\n", batch, t.ms[0], t.ms[1],
                    t.ratio_to_first[1]);
    }
}

// oneDNN's convolution called directly, on its default OpenMP team, with
// the same reorders per call as the library's kernel.
class DefaultTeamConv {
  public:
    DefaultTeamConv(const xgrad::Tensor& x, const xgrad::Tensor& w, std::vector<float>& y)
        : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
        using dnnl::memory;
        const auto f32 = memory::data_type::f32;
        const auto any = memory::format_tag::any;
        auto dims = [](const xgrad::Shape& shape) {
            return memory::dims(shape.begin(), shape.end());
        };
        const memory::dims source = dims(x.shape());
        const memory::dims weights = dims(w.shape());
        const memory::dims destination{source[0], weights[0], source[2], source[3]};
        const dnnl::convolution_forward::primitive_desc description(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                            dnnl::algorithm::convolution_direct,
                                            {source, f32, any}, {weights, f32, any},
                                            {destination, f32, any}, {1, 1}, {1, 1}, {1, 1}),
            engine_);
        convolution_ = dnnl::convolution_forward(description);
        y.resize(static_cast<std::size_t>(destination[0] * destination[1] * destination[2] *
                                          destination[3]));
        user_source_ = memory({source, f32, memory::format_tag::nchw}, engine_,
                              const_cast<float*>(x.values<float>().data()));
        user_weights_ = memory({weights, f32, memory::format_tag::oihw}, engine_,
                               const_cast<float*>(w.values<float>().data()));
        user_destination_ = memory({destination, f32, memory::format_tag::nchw}, engine_, y.data());
        source_ = memory(description.src_desc(), engine_);
        weights_ = memory(description.weights_desc(), engine_);
        destination_ = memory(description.dst_desc(), engine_);
        to_source_ = dnnl::reorder(user_source_, source_);
        to_weights_ = dnnl::reorder(user_weights_, weights_);
        from_destination_ = dnnl::reorder(destination_, user_destination_);
    }

    void run() {
        to_source_.execute(stream_, user_source_, source_);
        to_weights_.execute(stream_, user_weights_, weights_);
        convolution_.execute(stream_, {{DNNL_ARG_SRC, source_},
                                       {DNNL_ARG_WEIGHTS, weights_},
                                       {DNNL_ARG_DST, destination_}});
        from_destination_.execute(stream_, destination_, user_destination_);
        stream_.wait();
    }

  private:
    dnnl::engine engine_;
    dnnl::stream stream_;
    dnnl::convolution_forward convolution_;
    dnnl::memory user_source_, user_weights_, user_destination_;
    dnnl::memory source_, weights_, destination_;
    dnnl::reorder to_source_, to_weights_, from_destination_;
};

void spin_table(int rounds) {
    xgrad::NoGradGuard no_grad;
    xgrad::Generator generator(kSeed);
    const Layer& layer = kLayers[1];
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    std::printf("\nspin: the 32 -> 64 forward, then a 256 x 784 x 256 float32 matmul, "
                "ms per pair (OMP_WAIT_POLICY %s)\n\n",
                policy != nullptr ? policy : "unset");
    std::printf("| batch | matmul alone | im2col + matmul | oneDNN 1 thread + matmul | "
                "oneDNN default team + matmul | default team forward alone |\n");
    std::printf("| --- | --- | --- | --- | --- | --- |\n");
    const xgrad::Tensor a = xgrad::uniform({256, 784}, -1.0, 1.0, generator);
    const xgrad::Tensor b = xgrad::uniform({784, 256}, -1.0, 1.0, generator);
    for (std::size_t batch : kBatches) {
        const xgrad::Tensor x = xgrad::uniform({batch, layer.in_channels, layer.side, layer.side},
                                               -1.0, 1.0, generator);
        const xgrad::Tensor w =
            xgrad::uniform({layer.out_channels, layer.in_channels, 3, 3}, -0.1, 0.1, generator);
        std::vector<float> y;
        DefaultTeamConv team(x, w, y);
        const Call matmul = [&a, &b] { xgrad::matmul(a, b); };
        const Call forward = [&x, &w] { xgrad::conv2d(x, w, {}, kParams); };
        const Timings t = compare(
            {matmul, with_kernel("im2col", [&] { forward(); matmul(); }),
             with_kernel("onednn", [&] { forward(); matmul(); }), [&] { team.run(); matmul(); },
             [&] { team.run(); }},
            rounds);
        std::printf("| %zu | %.2f | %.2f | %.2f | %.2f | %.2f |\n", batch, t.ms[0], t.ms[1],
                    t.ms[2], t.ms[3], t.ms[4]);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 9;
    std::printf("conv2d float32 kernels, %d rounds, medians\n\n", rounds);
    forward_table(rounds);
    step_table(rounds);
    spin_table(rounds);
    return 0;
}

// Channel removal on the CNN of examples/fashion_cnn (conv 1 -> 32 -> 64 ->
// 64 with batch norm, ReLU and max pooling, then linear 3136 -> 128 -> 10;
// untrained weights, float32). For each fraction, it prunes that fraction of
// every convolution's output channels by structured L1 norm and removes
// them. It reports the parameter count, the size of the state as an .npz
// archive (encoded in memory) and the inference time at batch 256.
// Both inference graphs have their batch norms folded into the
// convolutions, as the example's inference graph has.
//
// Each round times one forward of the dense graph and one of the smaller
// graph, alternating, so that both see the same machine phase. The table
// gives the medians over the rounds.
//
//   build/tests/bench/bench_channels [rounds]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "xgrad/xgrad.hpp"

namespace {

namespace nn = xgrad::nn;
namespace tf = xgrad::transforms;

constexpr std::size_t kBatch = 256;
constexpr double kFractions[] = {0.25, 0.5, 0.75};
constexpr std::uint64_t kSeed = 1;

std::shared_ptr<nn::Sequential> fashion_cnn(xgrad::Generator& generator) {
    auto model = std::make_shared<nn::Sequential>();
    const std::size_t widths[] = {32, 64, 64};
    std::size_t in = 1;
    for (std::size_t block = 0; block < 3; ++block) {
        model->push_back(std::make_shared<nn::Conv2d>(
            nn::Conv2dOptions{.in_channels = in, .out_channels = widths[block], .kernel = {3, 3},
                              .padding = {1, 1}, .bias = false},
            generator));
        model->push_back(std::make_shared<nn::BatchNorm2d>(widths[block]));
        model->push_back(std::make_shared<nn::ReLU>());
        if (block < 2) {
            model->push_back(
                std::make_shared<nn::MaxPool2d>(xgrad::MaxPool2dParams{.kernel = {2, 2}}));
        }
        in = widths[block];
    }
    model->push_back(std::make_shared<nn::Flatten>());
    model->push_back(std::make_shared<nn::Linear>(64 * 7 * 7, 128, generator));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::Linear>(128, 10, generator));
    return model;
}

double seconds_of_forward(xgrad::Graph& graph, const xgrad::Tensor& x) {
    const auto start = std::chrono::steady_clock::now();
    graph.forward({x});
    const auto stop = std::chrono::steady_clock::now();
    return std::chrono::duration<double>(stop - start).count();
}

double median(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
}

std::size_t npz_bytes(const xgrad::Graph& graph) {
    return xgrad::io::encode_npz(tf::graph_state_dict(graph)).size();
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 15;
    xgrad::Generator generator(kSeed);
    auto model = fashion_cnn(generator);
    {
        xgrad::NoGradGuard no_grad;  // running statistics away from 0 and 1
        (*model)(xgrad::uniform({64, 1, 28, 28}, 0.0, 1.0, generator));
    }
    model->eval();
    const xgrad::Tensor x = xgrad::uniform({kBatch, 1, 28, 28}, 0.0, 1.0, generator);
    const xgrad::Graph graph = xgrad::capture(*model, x);
    xgrad::Graph dense = tf::fold_batch_norm(graph);

    std::printf("fashion_cnn, batch %zu, %d rounds, medians\n\n", kBatch, rounds);
    std::printf("%-9s %12s %12s %10s %10s %8s\n", "pruned", "parameters", "npz bytes", "dense ms",
                "small ms", "ratio");
    std::printf("%-9s %12zu %12zu\n", "none", tf::parameter_count(graph), npz_bytes(graph));
    for (double fraction : kFractions) {
        const xgrad::Graph pruned =
            tf::prune(graph, {.method = tf::PruneMethod::structured_l1, .sparsity = fraction,
                              .parameters = tf::conv_weights(graph)});
        const tf::ChannelRemoval removal = tf::remove_pruned_channels(pruned);
        xgrad::Graph small = tf::fold_batch_norm(tf::bake_masks(removal.graph));

        std::vector<double> dense_times;
        std::vector<double> small_times;
        seconds_of_forward(dense, x);  // warm-up: replay buffers
        seconds_of_forward(small, x);
        for (int round = 0; round < rounds; ++round) {
            dense_times.push_back(seconds_of_forward(dense, x));
            small_times.push_back(seconds_of_forward(small, x));
        }
        const double dense_ms = median(dense_times) * 1e3;
        const double small_ms = median(small_times) * 1e3;
        std::printf("%-9.2f %12zu %12zu %10.2f %10.2f %8.2f\n", fraction,
                    tf::parameter_count(removal.graph), npz_bytes(removal.graph), dense_ms,
                    small_ms, small_ms / dense_ms);
    }
    return 0;
}

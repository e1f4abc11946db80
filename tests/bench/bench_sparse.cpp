// Sparse against dense inference: the dense `linear` op (one OpenBLAS sgemm)
// against `sparse_linear` (a CSR product) for the layer shapes of the
// Fashion-MNIST MLP (784 -> 256, 256 -> 128, 128 -> 10), float32, with bias,
// at batch 1 and batch 128, for weights with a growing fraction of exact
// zeros at random positions. Both ops run through their public functions
// under NoGradGuard, so the times include what an eager call costs: the
// shape rule (for sparse_linear, a scan of the CSR tensors) and the output's
// allocation.
//
// Each round times a block of dense calls and a block of sparse calls, in
// alternating order, so both sides see the same machine phase. The table
// gives the median time per call over the rounds and the median of the
// per-round ratios sparse / dense. A ratio below 1 means sparse is faster.
// The crossover of a layer and batch size is the lowest measured sparsity
// from which sparse is faster at every higher measured sparsity too.
//
//   build/tests/bench/bench_sparse [rounds]
//
// prints the table, one JSON line per configuration, and the crossovers.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "xgrad/ops/sparse.hpp"
#include "xgrad/xgrad.hpp"

namespace {

struct LayerShape {
    std::size_t in;
    std::size_t out;
};

constexpr LayerShape kLayers[] = {{784, 256}, {256, 128}, {128, 10}};
constexpr std::size_t kBatches[] = {1, 128};
constexpr double kSparsities[] = {0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99};
constexpr double kBlockSeconds = 2e-3;  // length of one timed block of calls
constexpr std::uint64_t kSeed = 7;

// A uniform random weight with round(sparsity * size) entries, at random
// positions, set to exactly zero (what magnitude pruning does to a weight
// whose magnitudes carry no pattern).
xgrad::Tensor pruned_weight(const LayerShape& shape, double sparsity, xgrad::Generator& generator) {
    xgrad::Tensor weight = xgrad::uniform({shape.out, shape.in}, -0.1, 0.1, generator);
    auto& values = weight.mutable_values<float>();
    std::vector<std::size_t> positions(values.size());
    for (std::size_t i = 0; i < positions.size(); ++i) {
        positions[i] = i;
    }
    const auto zeros =
        static_cast<std::size_t>(sparsity * static_cast<double>(values.size()) + 0.5);
    for (std::size_t i = 0; i < zeros; ++i) {  // a partial Fisher-Yates shuffle
        const std::size_t j = i + generator.below(positions.size() - i);
        std::swap(positions[i], positions[j]);
        values.flat(positions[i]) = 0.0f;
    }
    return weight;
}

template <class Call>
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

struct Measurement {
    LayerShape layer;
    std::size_t batch;
    double sparsity;
    double dense_us;
    double sparse_us;
    double ratio;
};

Measurement measure(const LayerShape& layer, std::size_t batch, double sparsity, int rounds,
                    xgrad::Generator& generator) {
    const xgrad::Tensor weight = pruned_weight(layer, sparsity, generator);
    const xgrad::Tensor bias = xgrad::uniform({layer.out}, -0.1, 0.1, generator);
    const xgrad::Tensor x = xgrad::uniform({batch, layer.in}, -1, 1, generator);
    const xgrad::CsrMatrix csr = xgrad::to_csr(weight);

    auto dense = [&] { return xgrad::linear(x, weight, bias); };
    auto sparse = [&] { return xgrad::sparse_linear(x, csr, bias); };

    // Warm up both sides, then size a block to about kBlockSeconds of dense calls.
    seconds_per_call(dense, 20);
    seconds_per_call(sparse, 20);
    const double estimate = seconds_per_call(dense, 50);
    const int calls = std::max(1, static_cast<int>(kBlockSeconds / estimate));

    std::vector<double> dense_times;
    std::vector<double> sparse_times;
    std::vector<double> ratios;
    for (int round = 0; round < rounds; ++round) {
        double dense_time = 0.0;
        double sparse_time = 0.0;
        if (round % 2 == 0) {
            dense_time = seconds_per_call(dense, calls);
            sparse_time = seconds_per_call(sparse, calls);
        } else {
            sparse_time = seconds_per_call(sparse, calls);
            dense_time = seconds_per_call(dense, calls);
        }
        dense_times.push_back(dense_time);
        sparse_times.push_back(sparse_time);
        ratios.push_back(sparse_time / dense_time);
    }
    return {layer,         batch, sparsity, median(dense_times) * 1e6, median(sparse_times) * 1e6,
            median(ratios)};
}

std::string layer_name(const LayerShape& layer) {
    return std::to_string(layer.in) + " -> " + std::to_string(layer.out);
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 9;
    xgrad::NoGradGuard no_grad;
    xgrad::Generator generator(kSeed);

    // The first configuration measured in a process ran dense about twice as
    // slow as later ones (OpenBLAS starting up), so one is measured and
    // dropped before the table.
    measure(kLayers[0], kBatches[0], kSparsities[0], rounds, generator);

    std::vector<Measurement> results;
    for (const LayerShape& layer : kLayers) {
        for (std::size_t batch : kBatches) {
            for (double sparsity : kSparsities) {
                results.push_back(measure(layer, batch, sparsity, rounds, generator));
            }
        }
    }

    std::printf("sparse_linear against linear, float32 with bias, %d rounds, medians\n\n", rounds);
    std::printf("| layer | batch | sparsity | dense us | sparse us | sparse / dense |\n");
    std::printf("| --- | --- | --- | --- | --- | --- |\n");
    for (const Measurement& m : results) {
        std::printf("| %s | %zu | %.2f | %.2f | %.2f | %.2f |\n", layer_name(m.layer).c_str(),
                    m.batch, m.sparsity, m.dense_us, m.sparse_us, m.ratio);
    }
    std::printf("\n");
    for (const Measurement& m : results) {
        std::printf(
            "{\"bench\": \"sparse_linear\", \"in\": %zu, \"out\": %zu, \"batch\": %zu, "
            "\"sparsity\": %.2f, \"dense_us\": %.3f, \"sparse_us\": %.3f, \"ratio\": %.3f}\n",
            m.layer.in, m.layer.out, m.batch, m.sparsity, m.dense_us, m.sparse_us, m.ratio);
    }

    // Crossovers: scan each (layer, batch) series from the sparsest end and
    // keep the lowest sparsity from which every ratio is below 1. The line
    // per batch size gives the highest crossover over the layers that have
    // one, and names the layers that have none.
    std::printf("\n");
    const std::size_t per_series = std::size(kSparsities);
    for (std::size_t batch : kBatches) {
        double highest = -1.0;
        std::string never;
        for (std::size_t s = 0; s < results.size(); s += per_series) {
            if (results[s].batch != batch) {
                continue;
            }
            const std::string layer = layer_name(results[s].layer);
            double crossover = -1.0;  // sparse not faster at the sparsest setting
            for (std::size_t i = per_series; i-- > 0;) {
                if (results[s + i].ratio >= 1.0) {
                    break;
                }
                crossover = results[s + i].sparsity;
            }
            if (crossover < 0.0) {
                std::printf("crossover %s, batch %zu: none, sparse is not faster at %.2f\n",
                            layer.c_str(), batch, kSparsities[per_series - 1]);
                never += (never.empty() ? "" : ", ") + layer;
            } else {
                std::printf("crossover %s, batch %zu: %.2f\n", layer.c_str(), batch, crossover);
                highest = std::max(highest, crossover);
            }
        }
        if (highest < 0.0) {
            std::printf("crossover batch %zu: none for any layer\n", batch);
        } else {
            std::printf("crossover batch %zu, highest over the layers: %.2f%s%s\n", batch, highest,
                        never.empty() ? "" : "; none for ", never.c_str());
        }
    }
    return 0;
}

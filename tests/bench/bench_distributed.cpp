// Step time of data-parallel training: the Fashion-MNIST MLP (784-256-128-10,
// ReLU, cross-entropy, Adam, float32) on a fixed random batch of 128 per
// rank, with the gradients averaged over the ranks after every backward.
//
//   build/tests/bench/bench_distributed [rounds]
//   mpirun -np 2 --mca btl self,vader --mca oob_tcp_if_include lo
//          build/tests/bench/bench_distributed [rounds]
//
// (the second command on one line; docs/benchmarks.md also sets the number
// of OpenBLAS threads per rank).
//
// Rank 0 prints the median over rounds of the time per step, of the time
// per GradientAverager::average() call within it, and the examples per
// second of all ranks together, then one JSON line.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "xgrad/distributed.hpp"
#include "xgrad_workloads.hpp"

namespace {

constexpr std::size_t kBatchPerRank = 128;
constexpr int kStepsPerRound = 20;

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    namespace distributed = xgrad::distributed;
    distributed::Context context;
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;

    xgrad::Generator generator(1 + context.rank());
    auto model = bench::make_xgrad_mlp(generator);
    distributed::broadcast_parameters(context, *model);
    xgrad::optim::Adam optimizer(model->parameters(), {.lr = 1e-3});
    distributed::GradientAverager averager(context, *model);
    const xgrad::Tensor inputs = xgrad::uniform({kBatchPerRank, 784}, 0.0, 1.0, generator);
    xt::xarray<std::int64_t> labels(xgrad::Shape{kBatchPerRank});
    for (std::size_t i = 0; i < kBatchPerRank; ++i) {
        labels(i) = static_cast<std::int64_t>(generator.below(10));
    }
    const xgrad::Tensor targets(labels);

    std::vector<double> step_ms;
    std::vector<double> average_ms;
    for (int round = -1; round < rounds; ++round) {  // round -1 warms up
        context.barrier();
        double averaging = 0.0;
        const auto start = std::chrono::steady_clock::now();
        for (int step = 0; step < kStepsPerRound; ++step) {
            optimizer.zero_grad();
            xgrad::cross_entropy((*model)(inputs), targets).backward();
            const auto before_average = std::chrono::steady_clock::now();
            averager.average();
            averaging += bench::seconds_since(before_average);
            optimizer.step();
        }
        const double total = bench::seconds_since(start);
        if (round >= 0) {
            step_ms.push_back(1e3 * total / kStepsPerRound);
            average_ms.push_back(1e3 * averaging / kStepsPerRound);
        }
    }

    if (context.is_root()) {
        const double step = median(step_ms);
        const double examples_per_second =
            static_cast<double>(context.size() * kBatchPerRank) / (step / 1e3);
        std::printf("ranks %zu, batch %zu per rank, %zu bucket(s): median %.3f ms per step, "
                    "%.3f ms of it in average(), %.0f examples/s, over %d rounds of %d steps\n",
                    context.size(), kBatchPerRank, averager.bucket_count(), step,
                    median(average_ms), examples_per_second, rounds, kStepsPerRound);
        std::printf("{\"bench\": \"distributed_mlp_step\", \"ranks\": %zu, \"ms_per_step_median\": "
                    "%.4f, \"ms_average_median\": %.4f, \"examples_per_s\": %.0f}\n",
                    context.size(), step, median(average_ms), examples_per_second);
    }
    return 0;
}

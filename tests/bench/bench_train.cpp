// Training speed of the main job's model in xgrad alone: one Adam step of the
// 784-256-128-10 MLP at batch 128, and one full Fashion-MNIST epoch.
// tests/bench/bench_compare runs the same workloads against libtorch.
//
//   build/tests/bench/bench_train [rounds]

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "xgrad_workloads.hpp"

namespace {

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
    constexpr int kStepsPerRound = 100;

    bench::XgradMlpStep step;
    step.run(20);  // warm-up: allocations of the first steps
    std::vector<double> step_ms;
    for (int round = 0; round < rounds; ++round) {
        step_ms.push_back(step.run(kStepsPerRound) * 1e3 / kStepsPerRound);
    }
    std::printf("fmnist_mlp_step: median %.3f ms per step over %d rounds of %d steps\n",
                median(step_ms), rounds, kStepsPerRound);
    std::printf("{\"bench\": \"fmnist_mlp_step\", \"impl\": \"xgrad\", \"ms_per_step_median\": %.4f}\n",
                median(step_ms));

    const auto train = xgrad::data::load_fashion_mnist(xgrad::data::fashion_mnist_dir(),
                                                       xgrad::data::Split::train);
    bench::XgradEpoch epoch(train);
    std::vector<double> epoch_s;
    for (int round = 0; round < std::max(3, rounds / 2); ++round) {
        epoch_s.push_back(epoch.run());
    }
    std::printf("fmnist_train: median %.3f s per epoch of %zu images over %zu epochs\n",
                median(epoch_s), train.size(), epoch_s.size());
    std::printf("{\"bench\": \"fmnist_train\", \"impl\": \"xgrad\", \"s_per_epoch_median\": %.4f}\n",
                median(epoch_s));
    return 0;
}

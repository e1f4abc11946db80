// Tape overhead: forward plus backward of a 10,000-op chain on one-element
// float32 tensors, in microseconds per op. Op i does, by i mod 3:
//   0: t = tanh(y)   1: t = t * w   2: y = y + t
// starting from y = x = [0.5] with w = [-0.001], and backward runs from the
// last output. The values printed let a peer implementation check that it
// computed the same thing.
//
//   build/tests/bench/bench_tape [rounds]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "xgrad/xgrad.hpp"

namespace {

constexpr int kOps = 10000;

struct ChainResult {
    double seconds;
    double out;
    double dx;
    double dw;
};

ChainResult run_chain() {
    using xgrad::Tensor;
    Tensor x(xt::xarray<float>{0.5f});
    Tensor w(xt::xarray<float>{-0.001f});
    x.requires_grad_(true);
    w.requires_grad_(true);

    const auto start = std::chrono::steady_clock::now();
    Tensor y = x;
    Tensor t;
    Tensor last;
    for (int i = 0; i < kOps; ++i) {
        switch (i % 3) {
            case 0:
                t = xgrad::tanh(y);
                last = t;
                break;
            case 1:
                t = t * w;
                last = t;
                break;
            default:
                y = y + t;
                last = y;
                break;
        }
    }
    last.backward();
    const auto stop = std::chrono::steady_clock::now();

    return {std::chrono::duration<double>(stop - start).count(), last.item(), x.grad().item(),
            w.grad().item()};
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 21;
    run_chain();  // warm-up: first-touch allocations

    std::vector<double> per_op_us;
    ChainResult result{};
    for (int round = 0; round < rounds; ++round) {
        result = run_chain();
        per_op_us.push_back(result.seconds * 1e6 / kOps);
    }
    std::sort(per_op_us.begin(), per_op_us.end());
    const double median = per_op_us[per_op_us.size() / 2];

    std::printf("tape chain of %d ops, %d rounds: median %.3f us per op (min %.3f, max %.3f)\n",
                kOps, rounds, median, per_op_us.front(), per_op_us.back());
    std::printf("out = %.8g, dx = %.8g, dw = %.8g\n", result.out, result.dx, result.dw);
    std::printf("{\"bench\": \"tape\", \"impl\": \"xgrad\", \"us_per_op_median\": %.4f}\n", median);
    return 0;
}

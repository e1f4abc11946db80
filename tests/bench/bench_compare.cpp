// xgrad against libtorch in one process, alternating the two libraries round
// by round so that both see the same machine state. Built only when
// libtorch-dev is installed (scripts/setup --bench installs it).
//
//   build/tests/bench/bench_compare [rounds]
//
// Workloads:
//   tape             forward + backward of a 10,000-op chain on one-element
//                    tensors, microseconds per op
//   fmnist_mlp_step  one Adam step of the 784-256-128-10 ReLU MLP, batch 128
//   fmnist_train     one epoch of that model over the 60,000 training images
// Prints a table of medians and of the per-round ratio xgrad / libtorch, and
// one JSON line per workload and library.
//
// libtorch runs its elementwise work on OpenMP threads, which by default
// spin while idle and take the cores from OpenBLAS. The program therefore
// restarts itself with OMP_WAIT_POLICY=PASSIVE unless that is already set,
// and both libraries use 2 threads.

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "xgrad_workloads.hpp"

namespace {

constexpr int kChainOps = 10000;
constexpr int kStepsPerRound = 50;

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

// --- tape chain ---------------------------------------------------------------

// Results of one chain run: time per op and the values that show both
// libraries computed the same thing.
struct ChainRun {
    double us_per_op;
    double out;
    double dx;
    double dw;
};

ChainRun xgrad_chain() {
    xgrad::Tensor x(xt::xarray<float>{0.5f});
    xgrad::Tensor w(xt::xarray<float>{-0.001f});
    x.requires_grad_(true);
    w.requires_grad_(true);
    const auto start = std::chrono::steady_clock::now();
    xgrad::Tensor y = x;
    xgrad::Tensor t;
    xgrad::Tensor last;
    for (int i = 0; i < kChainOps; ++i) {
        if (i % 3 == 0) {
            last = t = xgrad::tanh(y);
        } else if (i % 3 == 1) {
            last = t = t * w;
        } else {
            last = y = y + t;
        }
    }
    last.backward();
    return {bench::seconds_since(start) * 1e6 / kChainOps, last.item(), x.grad().item(),
            w.grad().item()};
}

ChainRun torch_chain() {
    torch::Tensor x = torch::tensor({0.5f}, torch::requires_grad());
    torch::Tensor w = torch::tensor({-0.001f}, torch::requires_grad());
    const auto start = std::chrono::steady_clock::now();
    torch::Tensor y = x;
    torch::Tensor t;
    torch::Tensor last;
    for (int i = 0; i < kChainOps; ++i) {
        if (i % 3 == 0) {
            last = t = torch::tanh(y);
        } else if (i % 3 == 1) {
            last = t = t * w;
        } else {
            last = y = y + t;
        }
    }
    last.backward();
    return {bench::seconds_since(start) * 1e6 / kChainOps, last.item<float>(),
            x.grad().item<float>(), w.grad().item<float>()};
}

// --- Fashion-MNIST MLP ------------------------------------------------------------

torch::nn::Sequential make_torch_mlp() {
    return torch::nn::Sequential(torch::nn::Linear(784, 256), torch::nn::ReLU(),
                                 torch::nn::Linear(256, 128), torch::nn::ReLU(),
                                 torch::nn::Linear(128, 10));
}

class TorchMlpStep {
public:
    TorchMlpStep()
        : model_(make_torch_mlp()),
          optimizer_(model_->parameters(), torch::optim::AdamOptions(1e-3)),
          inputs_(torch::rand({128, 784})),
          labels_(torch::randint(10, {128}, torch::kLong)) {}

    double run(int steps) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < steps; ++i) {
            optimizer_.zero_grad();
            torch::Tensor loss = torch::nn::functional::cross_entropy(model_->forward(inputs_), labels_);
            loss.backward();
            optimizer_.step();
        }
        return bench::seconds_since(start);
    }

private:
    torch::nn::Sequential model_;
    torch::optim::Adam optimizer_;
    torch::Tensor inputs_;
    torch::Tensor labels_;
};

class TorchEpoch {
public:
    explicit TorchEpoch(const xgrad::data::TensorDataset& train)
        : model_(make_torch_mlp()), optimizer_(model_->parameters(), torch::optim::AdamOptions(1e-3)) {
        const auto& images = train.inputs().values<float>();
        const auto& labels = train.targets().values<std::int64_t>();
        const auto n = static_cast<std::int64_t>(train.size());
        inputs_ = torch::from_blob(const_cast<float*>(images.data()), {n, 784}).clone();
        labels_ = torch::from_blob(const_cast<std::int64_t*>(labels.data()), {n}, torch::kLong).clone();
    }

    double run() {
        const auto start = std::chrono::steady_clock::now();
        const std::int64_t n = inputs_.size(0);
        const torch::Tensor order = torch::randperm(n);
        for (std::int64_t first = 0; first < n; first += 128) {
            const torch::Tensor positions = order.slice(0, first, std::min(first + 128, n));
            optimizer_.zero_grad();
            torch::Tensor loss = torch::nn::functional::cross_entropy(
                model_->forward(inputs_.index_select(0, positions)), labels_.index_select(0, positions));
            loss.backward();
            optimizer_.step();
        }
        return bench::seconds_since(start);
    }

private:
    torch::nn::Sequential model_;
    torch::optim::Adam optimizer_;
    torch::Tensor inputs_;
    torch::Tensor labels_;
};

// --- reporting -------------------------------------------------------------------

struct Comparison {
    std::string bench;
    std::string unit;
    std::string json_key;
    std::vector<double> xgrad;
    std::vector<double> torch;
};

void report(const std::vector<Comparison>& comparisons) {
    std::printf("\n%-16s %14s %14s %22s  %s\n", "workload", "xgrad", "libtorch",
                "ratio xgrad/libtorch", "unit");
    for (const Comparison& c : comparisons) {
        std::vector<double> ratios;
        for (std::size_t i = 0; i < c.xgrad.size(); ++i) {
            ratios.push_back(c.xgrad[i] / c.torch[i]);
        }
        std::printf("%-16s %14.4f %14.4f %22.3f  %s (median of %zu rounds)\n", c.bench.c_str(),
                    median(c.xgrad), median(c.torch), median(ratios), c.unit.c_str(), ratios.size());
    }
    std::printf("\n");
    for (const Comparison& c : comparisons) {
        std::printf("{\"bench\": \"%s\", \"impl\": \"xgrad\", \"%s\": %.4f}\n", c.bench.c_str(),
                    c.json_key.c_str(), median(c.xgrad));
        std::printf("{\"bench\": \"%s\", \"impl\": \"libtorch\", \"%s\": %.4f}\n", c.bench.c_str(),
                    c.json_key.c_str(), median(c.torch));
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
        ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        ::execv("/proc/self/exe", argv);
        std::perror("bench_compare: cannot restart with OMP_WAIT_POLICY=PASSIVE");
        return 1;
    }
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
    torch::set_num_threads(2);
    torch::manual_seed(1);

    Comparison tape{"tape", "us per op", "us_per_op_median", {}, {}};
    Comparison step{"fmnist_mlp_step", "ms per step", "ms_per_step_median", {}, {}};
    Comparison epoch{"fmnist_train", "s per epoch", "s_per_epoch_median", {}, {}};

    const ChainRun xgrad_check = xgrad_chain();  // also the warm-ups
    const ChainRun torch_check = torch_chain();
    std::printf("tape chain values: xgrad out = %.8g, dx = %.8g, dw = %.8g\n", xgrad_check.out,
                xgrad_check.dx, xgrad_check.dw);
    std::printf("                libtorch out = %.8g, dx = %.8g, dw = %.8g\n", torch_check.out,
                torch_check.dx, torch_check.dw);
    bench::XgradMlpStep xgrad_step;
    TorchMlpStep torch_step;
    xgrad_step.run(20);
    torch_step.run(20);
    for (int round = 0; round < rounds; ++round) {
        tape.xgrad.push_back(xgrad_chain().us_per_op);
        tape.torch.push_back(torch_chain().us_per_op);
        step.xgrad.push_back(xgrad_step.run(kStepsPerRound) * 1e3 / kStepsPerRound);
        step.torch.push_back(torch_step.run(kStepsPerRound) * 1e3 / kStepsPerRound);
    }

    const auto train = xgrad::data::load_fashion_mnist(xgrad::data::fashion_mnist_dir(),
                                                       xgrad::data::Split::train);
    bench::XgradEpoch xgrad_epoch(train);
    TorchEpoch torch_epoch(train);
    for (int round = 0; round < std::max(3, rounds / 2); ++round) {
        epoch.xgrad.push_back(xgrad_epoch.run());
        epoch.torch.push_back(torch_epoch.run());
    }

    report({tape, step, epoch});
    return 0;
}

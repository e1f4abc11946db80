// Federated averaging against plain data parallelism on Fashion-MNIST.
//
// What it teaches: the two ways xgrad::distributed trains one model on
// several ranks. Data parallelism averages the gradients after every
// backward pass (GradientAverager), so the ranks train as one process with
// the combined batch. Federated averaging (FedAvg, McMahan et al., 2017)
// lets each rank take --local-steps SGD steps on its own shard and then
// averages the weights (FederatedAveraging), which exchanges the model far
// less often. Both runs start from the same weights, see the same number of
// examples and use plain SGD with the same learning rate.
//
// With --split by-label, each rank trains only on a contiguous range of
// classes, as clients in the federated setting often do. Averaging the
// gradients does not care where the examples live, but local steps on such a
// shard pull each rank's model towards its own classes.
//
// Run:    mpirun -np 2 build/examples/federated [--local-steps K] [--split by-label]
//         (on one machine add --mca btl self,vader --mca oob_tcp_if_include lo;
//         docs/distributed.md explains the options). Without mpirun the
//         program runs as one rank, and both methods then compute the same.
// Prints: on rank 0, a progress bar per epoch of each method (training loss
//         of rank 0's shard, validation accuracy) and a table with each
//         method's test accuracy, number of exchanges, megabytes each rank
//         passed to MPI_Allreduce and time. Writes --out/summary.json with
//         the same numbers.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <xgrad/distributed.hpp>
#include <xgrad/xgrad.hpp>

#include "common/flags.hpp"
#include "common/pipeline.hpp"

namespace {

using xgrad::Tensor;
namespace data = xgrad::data;
namespace distributed = xgrad::distributed;
namespace examples = xgrad::examples;
namespace nn = xgrad::nn;

struct Settings {
    int epochs;
    std::size_t batch_size;
    double lr;
    std::size_t local_steps;
    std::string split;
    std::size_t hidden;
    std::size_t validation;
    std::size_t limit_train;
    std::size_t limit_test;
    std::uint64_t seed;
    std::filesystem::path data_dir;
    std::filesystem::path out;
};

Settings parse_settings(int argc, char** argv) {
    examples::Flags flags("Trains the same MLP on Fashion-MNIST by data parallelism and by "
                          "federated averaging across MPI ranks, and compares them.");
    flags.add("epochs", "5", "Passes over the training set, for each method.");
    flags.add("batch-size", "32", "Examples per local step on each rank.");
    flags.add("lr", "0.05", "Learning rate of plain SGD, for both methods.");
    flags.add("local-steps", "8",
              "Federated averaging: local SGD steps between two averages of the weights.");
    flags.add("split", "iid",
              "How the training set is divided among the ranks: iid (every rank draws from "
              "all classes) or by-label (rank r gets the r-th range of classes).");
    flags.add("hidden", "128", "Width of the MLP's hidden layer.");
    flags.add("validation", "5000",
              "Training images held out for validation after each epoch (at most a fifth of "
              "them).");
    flags.add("limit-train", "0", "Use only the first N training images (0: all 60,000).");
    flags.add("limit-test", "0", "Use only the first N test images (0: all 10,000).");
    flags.add("seed", "1", "Seed of initialisation and shuffling.");
    flags.add("data-dir", data::fashion_mnist_dir().string(),
              "Directory holding the Fashion-MNIST IDX files (also set by XGRAD_DATA_DIR).");
    flags.add("out", "out/federated", "Directory for summary.json.");
    flags.parse(argc, argv);

    constexpr double kLargest = 1e300;
    Settings settings{};
    settings.epochs = static_cast<int>(flags.get_count("epochs", 1));
    settings.batch_size = flags.get_count("batch-size", 1);
    settings.lr = flags.get_double_in("lr", 0.0, kLargest);
    settings.local_steps = flags.get_count("local-steps", 1);
    settings.split = flags.get_choice("split", {"iid", "by-label"});
    settings.hidden = flags.get_count("hidden", 1);
    settings.validation = flags.get_count("validation");
    settings.limit_train = flags.get_count("limit-train");
    settings.limit_test = flags.get_count("limit-test");
    settings.seed = flags.get_uint64("seed");
    settings.data_dir = flags.get("data-dir");
    settings.out = flags.get("out");
    return settings;
}

// This rank's part of the training set. For iid, the loader shards every
// epoch's shuffled order (DataLoaderOptions::shard_count). For by-label,
// the examples are sorted by label and rank r keeps the r-th of
// context.size() equal ranges, shuffled each epoch by its own loader.
data::DataLoader make_loader(const Settings& settings, const distributed::Context& context,
                             const data::TensorDataset& train) {
    if (settings.split == "iid") {
        return data::DataLoader(train, {.batch_size = settings.batch_size,
                                        .drop_last = true,
                                        .seed = settings.seed,
                                        .shard_count = context.size(),
                                        .shard_index = context.rank(),
                                        .shard_drop_remainder = true});
    }
    const auto labels = train.targets().values<std::int64_t>();
    std::vector<std::int64_t> order(train.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&labels](std::int64_t a, std::int64_t b) { return labels(a) < labels(b); });
    const std::size_t share = train.size() / context.size();
    const auto first = order.begin() + static_cast<std::ptrdiff_t>(context.rank() * share);
    const std::vector<std::int64_t> mine(first, first + static_cast<std::ptrdiff_t>(share));
    return data::DataLoader(train.subset(mine), {.batch_size = settings.batch_size,
                                                 .drop_last = true,
                                                 .seed = settings.seed + context.rank()});
}

std::shared_ptr<nn::Sequential> make_mlp(const Settings& settings) {
    xgrad::Generator generator(settings.seed);
    auto model = std::make_shared<nn::Sequential>();
    model->push_back(std::make_shared<nn::Linear>(28 * 28, settings.hidden, generator));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::Linear>(settings.hidden, 10, generator));
    return model;
}

struct Result {
    std::string method;
    double test_accuracy = 0.0;
    std::size_t exchanges = 0;       ///< times the ranks combined their gradients or weights
    double megabytes_reduced = 0.0;  ///< what each rank passed to MPI_Allreduce, in total
    double seconds = 0.0;
};

// Trains a fresh model by one method, with a validation pass after every
// epoch, and evaluates it on the test set. Each rank trains on the same
// examples per epoch under both methods.
Result train(const std::string& method, const Settings& settings,
             const distributed::Context& context, const data::TensorDataset& train_set,
             const data::TensorDataset& held_out, const data::TensorDataset& test) {
    const std::shared_ptr<nn::Sequential> model = make_mlp(settings);
    distributed::broadcast_parameters(context, *model);
    xgrad::optim::SGD optimizer(model->parameters(), {.lr = settings.lr});
    data::DataLoader loader = make_loader(settings, context, train_set);
    if (loader.size() == 0) {
        throw xgrad::value_error("rank " + std::to_string(context.rank()) +
                                 " has fewer training images than one batch of --batch-size " +
                                 std::to_string(settings.batch_size));
    }

    const bool federated = method == "fedavg";
    distributed::GradientAverager averager(context, *model);
    distributed::FederatedAveraging fedavg(context, *model, {.local_steps = settings.local_steps});
    std::size_t steps = 0;
    const examples::TrainStep step = [&](const data::Batch& batch) {
        const Tensor logits = (*model)(batch.inputs);
        const Tensor loss = xgrad::cross_entropy(logits, batch.targets);
        optimizer.zero_grad();
        loss.backward();
        if (!federated) {
            averager.average();
        }
        optimizer.step();
        if (federated) {
            fedavg.step(static_cast<double>(batch.targets.numel()));
            if (++steps % loader.size() == 0) {
                fedavg.synchronize();  // the epoch ends with one model on every rank
            }
        }
        return std::pair{loss, logits};
    };

    const auto start = std::chrono::steady_clock::now();
    for (int epoch = 1; epoch <= settings.epochs; ++epoch) {
        examples::run_epoch(method, epoch, settings.epochs, loader, step, *model, held_out,
                            settings.lr);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::size_t floats = 0;
    for (const Tensor& parameter : model->parameters()) {
        floats += parameter.numel();
    }
    std::size_t exchanges = 0;  // a single rank exchanges nothing
    if (context.size() > 1) {
        exchanges = federated ? fedavg.rounds()
                              : loader.size() * static_cast<std::size_t>(settings.epochs);
    }
    return {method, examples::evaluate(*model, test).accuracy, exchanges,
            static_cast<double>(exchanges * floats * sizeof(float)) / 1e6, seconds};
}

void write_summary(const std::filesystem::path& path, const Settings& settings,
                   std::size_t ranks, const std::vector<Result>& results) {
    std::string json = "{\n  \"ranks\": " + std::to_string(ranks) + ",\n  \"split\": \"" +
                       settings.split + "\",\n  \"local_steps\": " +
                       std::to_string(settings.local_steps) + ",\n  \"methods\": [\n";
    char line[256];
    for (std::size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        std::snprintf(line, sizeof line,
                      "    {\"method\": \"%s\", \"test_accuracy\": %.4f, \"exchanges\": %zu, "
                      "\"megabytes_reduced_per_rank\": %.1f, \"seconds\": %.2f}%s\n",
                      r.method.c_str(), r.test_accuracy, r.exchanges, r.megabytes_reduced,
                      r.seconds,
                      i + 1 < results.size() ? "," : "");
        json += line;
    }
    json += "  ]\n}\n";
    examples::write_text(path, json);
}

int run(const Settings& settings, const distributed::Context& context) {
    std::printf("Loading Fashion-MNIST from %s\n", settings.data_dir.c_str());
    const data::TensorDataset raw_train =
        data::load_fashion_mnist(settings.data_dir, data::Split::train, settings.limit_train);
    const data::TensorDataset raw_test =
        data::load_fashion_mnist(settings.data_dir, data::Split::test, settings.limit_test);
    const double mean = xgrad::mean(raw_train.inputs()).item();
    const double stddev =
        std::sqrt(xgrad::mean(xgrad::pow(raw_train.inputs() - mean, 2.0)).item());
    const std::size_t validation = std::min(settings.validation, raw_train.size() / 5);
    auto [train_set, held_out] = data::random_split(raw_train.normalized(mean, stddev),
                                                    raw_train.size() - validation, settings.seed);
    const data::TensorDataset test = raw_test.normalized(mean, stddev);
    std::printf("%zu ranks, %s split, %zu training, %zu validation and %zu test images\n",
                context.size(), settings.split.c_str(), train_set.size(), held_out.size(),
                test.size());

    // The progress lines count rank 0's shard only.
    std::vector<Result> results;
    results.push_back(train("data_parallel", settings, context, train_set, held_out, test));
    results.push_back(train("fedavg", settings, context, train_set, held_out, test));

    std::printf("\n%-15s %14s %10s %20s %9s\n", "method", "test accuracy", "exchanges",
                "MB reduced per rank", "seconds");
    for (const Result& r : results) {
        std::printf("%-15s %14.4f %10zu %20.1f %9.1f\n", r.method.c_str(), r.test_accuracy,
                    r.exchanges, r.megabytes_reduced, r.seconds);
    }
    if (context.is_root()) {
        std::filesystem::create_directories(settings.out);
        write_summary(settings.out / "summary.json", settings, context.size(), results);
        std::printf("\nWrote summary.json to %s\n", settings.out.c_str());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const distributed::Context context;
    examples::print_on_root_only(context.is_root());
    const Settings settings = parse_settings(argc, argv);
    try {
        return run(settings, context);
    } catch (const std::exception& error) {
        std::fflush(stdout);
        std::fprintf(stderr, "federated (rank %zu): %s\n", context.rank(), error.what());
        return 1;
    }
}

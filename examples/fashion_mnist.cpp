// The main job: a multilayer perceptron trained on Fashion-MNIST, pruned,
// evaluated and reported by one command.
//
// What it teaches: loading a real data set, a training loop with a data
// loader, an optimizer and a learning-rate schedule, validation during
// training, capturing the training step as a graph, gradual magnitude
// pruning with fine-tuning on that graph, sparse inference, and writing
// results that scripts can read. Started by mpirun, the same program trains
// data-parallel across the ranks (see Parallel below).
//
// Run:    build/examples/fashion_mnist [--epochs N] [--out DIR] ... (--help lists all)
//         mpirun -np 2 build/examples/fashion_mnist ... (docs/distributed.md)
// Prints: a progress bar per epoch on a terminal (plain lines otherwise),
//         validation accuracy after each epoch, test accuracy at the end and
//         a summary table. Writes to --out: model.npz (the trained weights),
//         pruned.npz (the pruned weights, sparse layers in CSR form),
//         metrics.csv (one row per epoch of both stages), curves.svg (loss
//         and accuracy), graph.dot (the training step as a graph) and
//         summary.json (one entry per pipeline stage).
// Exits with 1 when the test accuracy is below --min-accuracy.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad/distributed.hpp>
#include <xgrad/graph/sparsify.hpp>
#include <xgrad/xgrad.hpp>

#include "common/activation.hpp"
#include "common/flags.hpp"
#include "common/pipeline.hpp"

namespace {

using xgrad::Tensor;
namespace data = xgrad::data;
namespace distributed = xgrad::distributed;
namespace nn = xgrad::nn;
namespace examples = xgrad::examples;
using examples::EpochMetrics;
using examples::Evaluation;
using examples::Stage;
using examples::TrainStep;

struct Settings {
    int epochs;
    std::size_t batch_size;
    std::string optimizer;
    double lr;
    double weight_decay;
    std::string schedule;
    std::vector<std::size_t> hidden;
    std::string activation;
    std::size_t validation;
    std::size_t limit_train;
    std::size_t limit_test;
    std::size_t inference_batch;
    std::uint64_t seed;
    std::filesystem::path data_dir;
    std::filesystem::path out;
    double min_accuracy;
    double prune_sparsity;
    int prune_epochs;
    double prune_lr;
    std::string prune_method;
    std::string quant_observer;
    std::size_t calibration_batches;
    int qat_epochs;
    double qat_lr;
};

Settings parse_settings(int argc, char** argv) {
    examples::Flags flags(
        "Trains an MLP on Fashion-MNIST and reports its accuracy, size and speed.");
    flags.add("epochs", "20", "Number of passes over the training set.");
    flags.add("batch-size", "128", "Examples per training step.");
    flags.add("optimizer", "adam", "Optimizer: adam, adamw or sgd (with momentum 0.9).");
    flags.add("lr", "0.001", "Initial learning rate.");
    flags.add("weight-decay", "0", "Weight decay (L2 for adam and sgd, decoupled for adamw).");
    flags.add("schedule", "cosine", "Learning-rate schedule over the epochs: cosine or constant.");
    flags.add("hidden", "256,128", "Widths of the hidden layers, comma-separated.");
    flags.add("activation", "relu", "Hidden activation: relu, tanh, gelu or leaky_relu.");
    flags.add("validation", "5000", "Training images held out for validation after each epoch.");
    flags.add("limit-train", "0", "Use only the first N training images (0: all 60,000).");
    flags.add("limit-test", "0", "Use only the first N test images (0: all 10,000).");
    flags.add("inference-batch", "256", "Batch size of the inference-time measurement.");
    flags.add("seed", "1", "Seed of initialisation, split and shuffling.");
    flags.add("data-dir", data::fashion_mnist_dir().string(),
              "Directory holding the Fashion-MNIST IDX files (also set by XGRAD_DATA_DIR).");
    flags.add("out", "out/fashion_mnist", "Directory for the checkpoint, metrics and pictures.");
    flags.add("min-accuracy", "0", "Exit with 1 when the dense test accuracy is lower (0 to 1).");
    flags.add("prune-sparsity", "0.9",
              "Fraction of the Linear weights to prune in the pruning stage, across all layers "
              "or in each layer as --prune-method says (0 skips the stage).");
    flags.add("prune-epochs", "10",
              "Epochs of fine-tuning during and after gradual pruning (the sparsity reaches its "
              "target after the first two thirds).");
    flags.add("prune-lr", "0.0005",
              "Adam's initial learning rate while pruning (cosine schedule).");
    flags.add(
        "prune-method", "global",
        "global: smallest magnitudes across all layers; layer: the same fraction of each layer.");
    flags.add("quant-observer", "histogram_mse",
              "Activation observer for int8 calibration: minmax, moving_average, "
              "histogram_percentile or histogram_mse.");
    flags.add(
        "calibration-batches", "32",
        "Training batches of 256 images observed to calibrate int8 (0 skips both int8 stages).");
    flags.add("qat-epochs", "2", "Epochs of quantization-aware fine-tuning (0 skips that stage).");
    flags.add("qat-lr", "0.0001", "Adam's learning rate during quantization-aware fine-tuning.");
    flags.parse(argc, argv);

    // Every value is checked here, before any data is loaded.
    constexpr double kLargest = 1e300;
    Settings settings{};
    settings.epochs = static_cast<int>(flags.get_count("epochs"));
    settings.batch_size = flags.get_count("batch-size", 1);
    settings.optimizer = flags.get_choice("optimizer", {"adam", "adamw", "sgd"});
    settings.lr = flags.get_double_in("lr", 0.0, kLargest);
    settings.weight_decay = flags.get_double_in("weight-decay", 0.0, kLargest);
    settings.schedule = flags.get_choice("schedule", {"cosine", "constant"});
    settings.activation = flags.get_choice("activation", examples::activation_names());
    const std::string width_list = flags.get("hidden");
    if (!width_list.empty() && width_list.back() == ',') {
        flags.fail("hidden", "ends with a comma");
    }
    std::stringstream widths(width_list);
    for (std::string width; std::getline(widths, width, ',');) {
        if (width.empty() || width.find_first_not_of("0123456789") != std::string::npos ||
            width.size() > 6 || std::stoul(width) == 0) {
            flags.fail("hidden", "expected positive widths such as 256,128");
        }
        settings.hidden.push_back(static_cast<std::size_t>(std::stoul(width)));
    }
    settings.validation = flags.get_count("validation");
    settings.limit_train = flags.get_count("limit-train");
    settings.limit_test = flags.get_count("limit-test");
    settings.inference_batch = flags.get_count("inference-batch", 1);
    settings.seed = flags.get_uint64("seed");
    settings.data_dir = flags.get("data-dir");
    settings.out = flags.get("out");
    settings.min_accuracy = flags.get_double_in("min-accuracy", 0.0, 1.0);
    settings.prune_sparsity = flags.get_double_in("prune-sparsity", 0.0, 0.999);
    settings.prune_epochs = static_cast<int>(flags.get_count("prune-epochs"));
    settings.prune_lr = flags.get_double_in("prune-lr", 0.0, kLargest);
    settings.prune_method = flags.get_choice("prune-method", {"global", "layer"});
    settings.quant_observer = flags.get_choice(
        "quant-observer", {"minmax", "moving_average", "histogram_percentile", "histogram_mse"});
    settings.calibration_batches = flags.get_count("calibration-batches");
    settings.qat_epochs = static_cast<int>(flags.get_count("qat-epochs"));
    settings.qat_lr = flags.get_double_in("qat-lr", 0.0, kLargest);
    return settings;
}

// 784 inputs, the hidden layers with their activation, 10 class logits.
std::shared_ptr<nn::Sequential> make_mlp(const Settings& settings, xgrad::Generator& generator) {
    auto model = std::make_shared<nn::Sequential>();
    std::size_t width = 28 * 28;
    for (std::size_t next : settings.hidden) {
        model->push_back(std::make_shared<nn::Linear>(width, next, generator));
        model->push_back(examples::make_activation(settings.activation));
        width = next;
    }
    model->push_back(std::make_shared<nn::Linear>(width, 10, generator));
    return model;
}

std::unique_ptr<xgrad::optim::Optimizer> make_optimizer(const Settings& settings,
                                                        const std::vector<Tensor>& parameters) {
    namespace optim = xgrad::optim;
    if (settings.optimizer == "adam") {
        return std::make_unique<optim::Adam>(
            parameters,
            optim::AdamOptions{.lr = settings.lr, .weight_decay = settings.weight_decay});
    }
    if (settings.optimizer == "adamw") {
        return std::make_unique<optim::AdamW>(
            parameters,
            optim::AdamWOptions{.lr = settings.lr, .weight_decay = settings.weight_decay});
    }
    return std::make_unique<optim::SGD>(
        parameters, optim::SGDOptions{
                        .lr = settings.lr, .momentum = 0.9, .weight_decay = settings.weight_decay});
}

// The data-parallel side of a run. Under `mpirun -np N`, each batch of
// --batch-size examples is split across the N ranks. Every rank's loader
// yields its shard of each epoch's order in batches of --batch-size / N.
// The ranks average their gradients before every optimizer step, so they
// train as one process with batches of --batch-size would. Rank 0 alone
// prints and writes files. Its training loss and accuracy (progress lines,
// metrics.csv) cover its own shard; every rank evaluates the whole
// validation and test sets. Without mpirun there is one rank, and averaging
// does nothing.
struct Parallel {
    const distributed::Context& context;
    distributed::GradientAverager& averager;
    std::size_t local_batch;  ///< examples per step on this rank

    data::DataLoaderOptions loader_options(std::uint64_t seed, bool drop_last) const {
        return {.batch_size = local_batch,
                .drop_last = drop_last,
                .seed = seed,
                .shard_count = context.size(),
                .shard_index = context.rank()};
    }
    bool writes() const { return context.is_root(); }
};

// Stage 1: dense training in eager mode, op by op on the tape.
void train_dense(nn::Module& model, const Settings& settings, const Parallel& parallel,
                 const data::TensorDataset& train, const data::TensorDataset& held_out,
                 std::vector<EpochMetrics>& metrics) {
    const auto optimizer = make_optimizer(settings, model.parameters());
    xgrad::optim::CosineAnnealingLR cosine(*optimizer, std::max(settings.epochs, 1));
    nn::CrossEntropyLoss criterion;
    data::DataLoader loader(train, parallel.loader_options(settings.seed, false));
    const TrainStep step = [&](const data::Batch& batch) {
        const Tensor logits = model(batch.inputs);
        const Tensor loss = criterion(logits, batch.targets);
        optimizer->zero_grad();
        loss.backward();
        parallel.averager.average();
        optimizer->step();
        return std::pair{loss, logits};
    };
    for (int epoch = 1; epoch <= settings.epochs; ++epoch) {
        const double lr = optimizer->param_groups()[0].lr;
        metrics.push_back(examples::run_epoch("dense", epoch, settings.epochs, loader, step, model,
                                              held_out, lr));
        if (settings.schedule == "cosine") {
            cosine.step();
        }
    }
}

// Stage 2: gradual magnitude pruning of every Linear weight, with
// fine-tuning, on the training step captured as a graph. The masks are
// nodes of that graph; the pruned weights of the model itself are zero too,
// so the eager model evaluates the pruned network.
xgrad::Graph prune_and_fine_tune(nn::Module& model, const Settings& settings,
                                 const Parallel& parallel, const data::TensorDataset& train,
                                 const data::TensorDataset& held_out,
                                 std::vector<EpochMetrics>& metrics) {
    namespace tf = xgrad::transforms;
    data::DataLoader loader(train, parallel.loader_options(settings.seed + 1, true));
    const xgrad::Graph captured = examples::training_graph(model, train, parallel.local_batch);
    if (parallel.writes()) {
        examples::write_text(settings.out / "graph.dot",
                             captured.to_dot("fashion_mnist training step"));
    }
    xgrad::Graph graph = tf::add_masks(captured, tf::linear_weights(captured));

    xgrad::optim::Adam optimizer(model.parameters(), {.lr = settings.prune_lr});
    const auto total_steps = static_cast<std::int64_t>(loader.size()) * settings.prune_epochs;
    const tf::PruningSchedule schedule = examples::pruning_schedule(settings.prune_sparsity, total_steps);
    const tf::PruneMethod method = settings.prune_method == "global"
                                       ? tf::PruneMethod::global_magnitude
                                       : tf::PruneMethod::magnitude;
    tf::GradualPruner pruner(graph, {.method = method}, schedule, &optimizer);

    const TrainStep replay =
        examples::graph_step(graph, optimizer, [&parallel] { parallel.averager.average(); });
    examples::fine_tune_while_pruning(pruner, schedule, settings.prune_epochs, loader, replay, optimizer,
                                      model, held_out, metrics);
    std::printf("%s", tf::format_sparsity_report(tf::sparsity_report(graph)).c_str());
    return graph;
}

// Stage 4: quantization-aware fine-tuning. The training graph (with any
// pruning masks) gets fake quantization; afterwards the weights convert to
// int8 with the calibrated activation parameters.
void quantization_aware_training(nn::Module& model, xgrad::Graph& train_graph,
                                 const xgrad::transforms::ActivationParams& params,
                                 const Settings& settings, const Parallel& parallel,
                                 const data::TensorDataset& train,
                                 const data::TensorDataset& held_out,
                                 std::vector<EpochMetrics>& metrics) {
    xgrad::Graph qat = xgrad::transforms::convert_qat(train_graph, params);
    xgrad::optim::Adam optimizer(model.parameters(), {.lr = settings.qat_lr});
    data::DataLoader loader(train, parallel.loader_options(settings.seed + 3, true));
    const TrainStep step =
        examples::graph_step(qat, optimizer, [&parallel] { parallel.averager.average(); });
    for (int epoch = 1; epoch <= settings.qat_epochs; ++epoch) {
        metrics.push_back(examples::run_epoch("qat", epoch, settings.qat_epochs, loader, step,
                                              model, held_out, settings.qat_lr));
    }
}

}  // namespace

int run(const Settings& settings, const distributed::Context& context) {
    if (settings.batch_size % context.size() != 0) {
        throw xgrad::value_error("--batch-size " + std::to_string(settings.batch_size) +
                                 " does not split evenly across " +
                                 std::to_string(context.size()) +
                                 " ranks; choose a multiple of the rank count");
    }
    if (context.is_root()) {
        std::filesystem::create_directories(settings.out);
    }

    // Data: pixels in [0, 1], standardised with the training set's statistics,
    // and a fixed validation split.
    std::printf("Loading Fashion-MNIST from %s\n", settings.data_dir.c_str());
    const data::TensorDataset full_train =
        data::load_fashion_mnist(settings.data_dir, data::Split::train, settings.limit_train);
    const data::TensorDataset full_test =
        data::load_fashion_mnist(settings.data_dir, data::Split::test, settings.limit_test);
    const double mean = xgrad::mean(full_train.inputs()).item();
    const double stddev =
        std::sqrt(xgrad::mean(xgrad::pow(full_train.inputs() - mean, 2.0)).item());
    const std::size_t validation = std::min(settings.validation, full_train.size() / 5);
    if (validation < settings.validation) {
        std::printf(
            "Holding out %zu images for validation, a fifth of the training images, instead "
            "of --validation %zu\n",
            validation, settings.validation);
    }
    auto [train, held_out] = data::random_split(full_train.normalized(mean, stddev),
                                                full_train.size() - validation, settings.seed);
    const data::TensorDataset test = full_test.normalized(mean, stddev);
    const Tensor inference_batch = test.head(settings.inference_batch).inputs();
    const std::size_t inference_size = inference_batch.shape()[0];
    std::printf("%zu training, %zu validation and %zu test images\n", train.size(), held_out.size(),
                test.size());

    xgrad::Generator generator(settings.seed);
    const std::shared_ptr<nn::Sequential> model = make_mlp(settings, generator);
    std::printf("%s\n%zu parameters\n", model->to_string().c_str(), model->parameter_count());
    distributed::broadcast_parameters(context, *model);
    distributed::GradientAverager averager(context, *model);
    const Parallel parallel{context, averager, settings.batch_size / context.size()};
    if (context.size() > 1) {
        std::printf("%zu ranks, %zu examples per rank and step\n", context.size(),
                    parallel.local_batch);
    }
    std::vector<EpochMetrics> metrics;
    std::vector<Stage> stages;

    // Rank 0 writes the files and times inference. The other ranks report
    // zero bytes and no time, and they print nothing.
    const auto save = [&](const std::string& file, const std::function<void(const std::filesystem::path&)>& write) {
        if (!parallel.writes()) {
            return std::uintmax_t{0};
        }
        write(settings.out / file);
        return std::filesystem::file_size(settings.out / file);
    };
    const auto time_inference = [&](xgrad::Graph& graph) {
        return parallel.writes() ? examples::inference_ms(graph, inference_batch) : std::nan("");
    };

    // Stage 1: dense training.
    train_dense(*model, settings, parallel, train, held_out, metrics);
    const Evaluation dense = examples::evaluate(*model, test);
    std::printf("Dense test accuracy: %.4f\n", dense.accuracy);
    const std::uintmax_t dense_bytes = save(
        "model.npz", [&](const std::filesystem::path& path) { xgrad::save_model(*model, path); });
    xgrad::Graph dense_graph = examples::inference_graph(*model, inference_batch);
    stages.push_back({"dense", dense.accuracy, 0.0, dense_bytes, time_inference(dense_graph)});

    // Stage 2: pruning with fine-tuning, then sparse inference.
    xgrad::Graph train_graph;
    const bool prune = settings.prune_sparsity > 0.0 && settings.prune_epochs > 0;
    if (prune) {
        train_graph = prune_and_fine_tune(*model, settings, parallel, train, held_out, metrics);
        const Evaluation pruned = examples::evaluate(*model, test);
        std::printf("Pruned test accuracy: %.4f\n", pruned.accuracy);
        const double sparsity =
            xgrad::transforms::overall_sparsity(xgrad::transforms::sparsity_report(*model));
        // CSR stores 12 bytes per kept float32 weight (value and int64 column)
        // against 4 dense, so it is smaller from a sparsity of 2/3.
        const std::uintmax_t pruned_bytes = save("pruned.npz", [&](const std::filesystem::path& path) {
            xgrad::io::save_npz(path, xgrad::transforms::compressed_state_dict(*model, 2.0 / 3.0));
        });
        // tests/bench/bench_sparse measured sparse_linear faster than dense
        // from a sparsity of 0.7-0.8 at batch 128 (0.95 at batch 1), so the
        // inference batch of 256 uses the lower threshold.
        xgrad::Graph sparse_graph = xgrad::eliminate_dead_code(
            xgrad::sparsify(examples::inference_graph(*model, inference_batch), 0.8));
        stages.push_back(
            {"pruned", pruned.accuracy, sparsity, pruned_bytes, time_inference(sparse_graph)});
    } else {
        train_graph = examples::training_graph(*model, train, parallel.local_batch);
    }

    // Stage 3: post-training int8 quantization of the (pruned) float model.
    // Stage 4: quantization-aware fine-tuning, then int8 again.
    if (settings.calibration_batches > 0) {
        namespace tf = xgrad::transforms;
        const std::string base = prune ? "pruned_" : "";
        const double sparsity = tf::overall_sparsity(tf::sparsity_report(*model));
        const tf::ActivationParams params =
            examples::calibrate(*model, train, settings.quant_observer,
                                settings.calibration_batches, settings.seed + 2);
        auto int8_stage = [&](const std::string& name) {
            const double accuracy = examples::int8_accuracy(*model, params, test);
            std::printf("%s test accuracy: %.4f\n", name.c_str(), accuracy);
            xgrad::Graph graph = examples::int8_graph(*model, inference_batch, params);
            const std::uintmax_t bytes = save(name + ".npz", [&](const std::filesystem::path& path) {
                xgrad::io::save_npz(path, tf::quantized_state_dict(graph));
            });
            stages.push_back({name, accuracy, sparsity, bytes, time_inference(graph)});
        };
        int8_stage(base + "int8");
        if (settings.qat_epochs > 0) {
            quantization_aware_training(*model, train_graph, params, settings, parallel, train,
                                        held_out, metrics);
            int8_stage(base + "int8_qat");
        }
    }

    if (parallel.writes()) {
        examples::write_metrics(settings.out / "metrics.csv", metrics);
        examples::write_curves(settings.out / "curves.svg", metrics);
        examples::write_summary(settings.out / "summary.json", inference_size, stages);
    }
    examples::print_table(inference_size, stages);
    std::string written = "model.npz, ";
    for (std::size_t i = 1; i < stages.size(); ++i) {
        written += stages[i].name + ".npz, ";
    }
    std::printf("\nWrote %smetrics.csv, curves.svg%s and summary.json to %s\n", written.c_str(),
                prune ? ", graph.dot" : "", settings.out.c_str());

    if (dense.accuracy < settings.min_accuracy) {
        std::printf("FAILED: dense test accuracy %.4f is below --min-accuracy %.4f\n",
                    dense.accuracy, settings.min_accuracy);
        return 1;
    }
    return 0;
}

int main(int argc, char** argv) {
    const distributed::Context context;
    examples::print_on_root_only(context.is_root());
    const Settings settings = parse_settings(argc, argv);
    try {
        return run(settings, context);
    } catch (const std::exception& error) {
        std::fflush(stdout);  // keep the log in order when both go to one file
        // A missing data set, an unwritable --out, a corrupt file: one line,
        // not an abort.
        std::fprintf(stderr, "fashion_mnist: %s\n", error.what());
        return 1;
    }
}

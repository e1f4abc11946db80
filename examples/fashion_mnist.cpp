// The main job: a multilayer perceptron trained on Fashion-MNIST, evaluated
// and reported by one command.
//
// What it teaches: loading a real data set, a training loop with a data
// loader, an optimizer and a learning-rate schedule, validation during
// training, and writing results that scripts can read.
//
// Run:    build/examples/fashion_mnist [--epochs N] [--out DIR] ... (--help lists all)
// Prints: a progress bar per epoch on a terminal (plain lines otherwise),
//         validation accuracy after each epoch, test accuracy at the end and
//         a summary table. Writes to --out: model.npz (the trained weights),
//         metrics.csv (one row per epoch), curves.svg (loss and accuracy) and
//         summary.json (one entry per pipeline stage).
// Exits with 1 when the test accuracy is below --min-accuracy.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad/checkpoint.hpp>
#include <xgrad/io.hpp>
#include <xgrad/optim.hpp>
#include <xgrad/xgrad.hpp>

#include "common/flags.hpp"
#include "common/progress.hpp"
#include "common/svg.hpp"

namespace {

using xgrad::Tensor;
namespace data = xgrad::data;
namespace nn = xgrad::nn;
namespace examples = xgrad::examples;

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
};

Settings parse_settings(int argc, char** argv) {
    examples::Flags flags("Trains an MLP on Fashion-MNIST and reports its accuracy, size and speed.");
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
    flags.add("min-accuracy", "0", "Exit with 1 when the test accuracy is lower (0 to 1).");
    flags.parse(argc, argv);

    Settings settings{};
    settings.epochs = flags.get_int("epochs");
    settings.batch_size = static_cast<std::size_t>(flags.get_int("batch-size"));
    settings.optimizer = flags.get("optimizer");
    settings.lr = flags.get_double("lr");
    settings.weight_decay = flags.get_double("weight-decay");
    settings.schedule = flags.get("schedule");
    settings.activation = flags.get("activation");
    std::stringstream widths(flags.get("hidden"));
    for (std::string width; std::getline(widths, width, ',');) {
        settings.hidden.push_back(static_cast<std::size_t>(std::stoul(width)));
    }
    settings.validation = static_cast<std::size_t>(flags.get_int("validation"));
    settings.limit_train = static_cast<std::size_t>(flags.get_int("limit-train"));
    settings.limit_test = static_cast<std::size_t>(flags.get_int("limit-test"));
    settings.inference_batch = static_cast<std::size_t>(flags.get_int("inference-batch"));
    settings.seed = static_cast<std::uint64_t>(flags.get_int("seed"));
    settings.data_dir = flags.get("data-dir");
    settings.out = flags.get("out");
    settings.min_accuracy = flags.get_double("min-accuracy");
    return settings;
}

[[noreturn]] void invalid_setting(const std::string& flag, const std::string& value) {
    std::fprintf(stderr, "--%s: invalid value '%s'; see --help\n", flag.c_str(), value.c_str());
    std::exit(2);
}

std::shared_ptr<nn::Module> make_activation(const std::string& name) {
    if (name == "relu") {
        return std::make_shared<nn::ReLU>();
    }
    if (name == "tanh") {
        return std::make_shared<nn::Tanh>();
    }
    if (name == "gelu") {
        return std::make_shared<nn::GELU>();
    }
    if (name == "leaky_relu") {
        return std::make_shared<nn::LeakyReLU>();
    }
    invalid_setting("activation", name);
}

// 784 inputs, the hidden layers with their activation, 10 class logits.
std::shared_ptr<nn::Sequential> make_mlp(const Settings& settings, xgrad::Generator& generator) {
    auto model = std::make_shared<nn::Sequential>();
    std::size_t width = 28 * 28;
    for (std::size_t next : settings.hidden) {
        model->push_back(std::make_shared<nn::Linear>(width, next, generator));
        model->push_back(make_activation(settings.activation));
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
            parameters, optim::AdamOptions{.lr = settings.lr, .weight_decay = settings.weight_decay});
    }
    if (settings.optimizer == "adamw") {
        return std::make_unique<optim::AdamW>(
            parameters, optim::AdamWOptions{.lr = settings.lr, .weight_decay = settings.weight_decay});
    }
    if (settings.optimizer == "sgd") {
        return std::make_unique<optim::SGD>(
            parameters, optim::SGDOptions{.lr = settings.lr, .momentum = 0.9,
                                          .weight_decay = settings.weight_decay});
    }
    invalid_setting("optimizer", settings.optimizer);
}

struct Evaluation {
    double loss = 0.0;
    double accuracy = 0.0;
};

std::size_t count_correct(const Tensor& logits, const Tensor& labels) {
    const Tensor predicted_classes = xgrad::argmax(logits);
    const auto& predicted = predicted_classes.values<std::int64_t>();
    const auto& expected = labels.values<std::int64_t>();
    std::size_t correct = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        correct += predicted(i) == expected(i) ? 1 : 0;
    }
    return correct;
}

// Mean loss and accuracy over a dataset, in eval mode and without recording.
Evaluation evaluate(nn::Module& model, const data::TensorDataset& dataset) {
    xgrad::NoGradGuard no_grad;
    model.eval();
    data::DataLoader loader(dataset, {.batch_size = 1000, .shuffle = false});
    double loss_sum = 0.0;
    std::size_t correct = 0;
    for (const data::Batch& batch : loader) {
        const Tensor logits = model(batch.inputs);
        loss_sum += xgrad::cross_entropy(logits, batch.targets, xgrad::Reduction::sum).item();
        correct += count_correct(logits, batch.targets);
    }
    model.train();
    const auto n = static_cast<double>(std::max<std::size_t>(dataset.size(), 1));
    return {loss_sum / n, static_cast<double>(correct) / n};
}

// Median wall time of one forward pass over a batch, in milliseconds.
double inference_ms(nn::Module& model, const data::TensorDataset& dataset, std::size_t batch_size) {
    xgrad::NoGradGuard no_grad;
    model.eval();
    const Tensor inputs = dataset.head(batch_size).inputs();
    std::vector<double> times;
    for (int round = 0; round < 50; ++round) {
        const auto start = std::chrono::steady_clock::now();
        const Tensor logits = model(inputs);
        const auto stop = std::chrono::steady_clock::now();
        times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    }
    model.train();
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

struct EpochMetrics {
    int epoch;
    double train_loss;
    double train_accuracy;
    double validation_loss;
    double validation_accuracy;
    double lr;
    double seconds;
};

// One row of the final table and one entry of summary.json.
struct Stage {
    std::string name;
    double test_accuracy;
    double sparsity;
    std::uintmax_t model_bytes;
    double inference_ms;
};

void write_text(const std::filesystem::path& path, const std::string& text) {
    xgrad::io::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

void write_metrics(const std::filesystem::path& path, const std::vector<EpochMetrics>& metrics) {
    std::string csv = "epoch,train_loss,train_accuracy,validation_loss,validation_accuracy,lr,seconds\n";
    char row[256];
    for (const EpochMetrics& m : metrics) {
        std::snprintf(row, sizeof row, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f\n", m.epoch, m.train_loss,
                      m.train_accuracy, m.validation_loss, m.validation_accuracy, m.lr, m.seconds);
        csv += row;
    }
    write_text(path, csv);
}

void write_curves(const std::filesystem::path& path, const std::vector<EpochMetrics>& metrics) {
    examples::Series train_loss{"training", {}, {}};
    examples::Series validation_loss{"validation", {}, {}};
    examples::Series train_accuracy{"training", {}, {}};
    examples::Series validation_accuracy{"validation", {}, {}};
    for (const EpochMetrics& m : metrics) {
        const auto epoch = static_cast<double>(m.epoch);
        train_loss.x.push_back(epoch);
        train_loss.y.push_back(m.train_loss);
        validation_loss.x.push_back(epoch);
        validation_loss.y.push_back(m.validation_loss);
        train_accuracy.x.push_back(epoch);
        train_accuracy.y.push_back(m.train_accuracy);
        validation_accuracy.x.push_back(epoch);
        validation_accuracy.y.push_back(m.validation_accuracy);
    }
    write_text(path, examples::render_svg({
                         {"Cross-entropy loss", "epoch", "loss", {train_loss, validation_loss}},
                         {"Accuracy", "epoch", "accuracy", {train_accuracy, validation_accuracy}},
                     }));
}

void write_summary(const std::filesystem::path& path, const Settings& settings,
                   const std::vector<Stage>& stages) {
    std::string json = "{\n  \"inference_batch_size\": " + std::to_string(settings.inference_batch) +
                       ",\n  \"stages\": [\n";
    char entry[512];
    for (std::size_t i = 0; i < stages.size(); ++i) {
        const Stage& s = stages[i];
        std::snprintf(entry, sizeof entry,
                      "    {\"name\": \"%s\", \"test_accuracy\": %.4f, \"sparsity\": %.4f, "
                      "\"model_bytes\": %ju, \"inference_ms_per_batch\": %.4f}%s\n",
                      s.name.c_str(), s.test_accuracy, s.sparsity, s.model_bytes, s.inference_ms,
                      i + 1 < stages.size() ? "," : "");
        json += entry;
    }
    write_text(path, json + "  ]\n}\n");
}

void print_table(const Settings& settings, const std::vector<Stage>& stages) {
    std::printf("\n%-10s %14s %10s %14s %22s\n", "stage", "test accuracy", "sparsity", "model bytes",
                ("inference ms / " + std::to_string(settings.inference_batch)).c_str());
    for (const Stage& s : stages) {
        std::printf("%-10s %14.4f %9.1f%% %14ju %22.3f\n", s.name.c_str(), s.test_accuracy,
                    100.0 * s.sparsity, s.model_bytes, s.inference_ms);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const Settings settings = parse_settings(argc, argv);
    std::filesystem::create_directories(settings.out);

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
    auto [train, held_out] = data::random_split(full_train.normalized(mean, stddev),
                                                full_train.size() - validation, settings.seed);
    const data::TensorDataset test = full_test.normalized(mean, stddev);
    std::printf("%zu training, %zu validation and %zu test images\n", train.size(), held_out.size(),
                test.size());

    // Model, optimizer, schedule.
    xgrad::Generator generator(settings.seed);
    const std::shared_ptr<nn::Sequential> model = make_mlp(settings, generator);
    std::printf("%s\n%zu parameters\n", model->to_string().c_str(), model->parameter_count());
    const auto optimizer_owner = make_optimizer(settings, model->parameters());
    xgrad::optim::Optimizer& optimizer = *optimizer_owner;
    if (settings.schedule != "cosine" && settings.schedule != "constant") {
        invalid_setting("schedule", settings.schedule);
    }
    xgrad::optim::CosineAnnealingLR cosine(optimizer, std::max(settings.epochs, 1));
    nn::CrossEntropyLoss criterion;
    data::DataLoader loader(train, {.batch_size = settings.batch_size, .seed = settings.seed});

    std::vector<EpochMetrics> metrics;
    for (int epoch = 1; epoch <= settings.epochs; ++epoch) {
        const double lr = optimizer.param_groups()[0].lr;
        examples::Progress progress(
            "epoch " + std::to_string(epoch) + "/" + std::to_string(settings.epochs), loader.size());
        double loss_sum = 0.0;
        std::size_t correct = 0;
        std::size_t seen = 0;
        std::size_t step = 0;
        for (const data::Batch& batch : loader) {
            // Forward, loss, backward, update.
            const Tensor logits = (*model)(batch.inputs);
            const Tensor loss = criterion(logits, batch.targets);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();

            const std::size_t n = batch.targets.numel();
            loss_sum += loss.item() * static_cast<double>(n);
            correct += count_correct(logits, batch.targets);
            seen += n;
            char status[64];
            std::snprintf(status, sizeof status, "loss %.4f", loss_sum / static_cast<double>(seen));
            progress.update(++step, seen, status);
        }
        const Evaluation validation_result = evaluate(*model, held_out);
        char status[128];
        std::snprintf(status, sizeof status, "loss %.4f  validation accuracy %.4f",
                      loss_sum / static_cast<double>(seen), validation_result.accuracy);
        progress.finish(status);
        metrics.push_back({epoch, loss_sum / static_cast<double>(seen),
                           static_cast<double>(correct) / static_cast<double>(seen),
                           validation_result.loss, validation_result.accuracy, lr,
                           progress.elapsed_seconds()});
        if (settings.schedule == "cosine") {
            cosine.step();
        }
    }

    // Results: test accuracy, checkpoint, metrics, pictures, summary.
    const Evaluation tested = evaluate(*model, test);
    std::printf("Test accuracy: %.4f\n", tested.accuracy);
    const std::filesystem::path checkpoint = settings.out / "model.npz";
    xgrad::save_model(*model, checkpoint);
    write_metrics(settings.out / "metrics.csv", metrics);
    write_curves(settings.out / "curves.svg", metrics);
    const std::vector<Stage> stages = {
        {"dense", tested.accuracy, 0.0, std::filesystem::file_size(checkpoint),
         inference_ms(*model, test, settings.inference_batch)},
    };
    write_summary(settings.out / "summary.json", settings, stages);
    print_table(settings, stages);
    std::printf("\nWrote %s/{model.npz, metrics.csv, curves.svg, summary.json}\n",
                settings.out.c_str());

    if (tested.accuracy < settings.min_accuracy) {
        std::printf("FAILED: test accuracy %.4f is below --min-accuracy %.4f\n", tested.accuracy,
                    settings.min_accuracy);
        return 1;
    }
    return 0;
}

// Hyperparameter tuning by k-fold cross-validation on a Fashion-MNIST subset.
//
// What it teaches: describing a model once as a factory of fresh models,
// cross-validating it, CV = (1/k) Σᵢ Loss(Xᵢ, ωᵢ), for each configuration of
// a grid or random search over the learning rate and the batch size,
// reading the ranked table, and refitting the best configuration on all
// training images before one final look at the test set.
//
// Run:    build/examples/tune_hyperparameters [--search grid|random] [--out DIR] ...
//         (--help lists all flags)
// Prints: a progress bar over the training runs on a terminal (one plain
//         line otherwise), the ranked table, the best configuration and its
//         test accuracy after the refit. Writes to --out: search.csv (the
//         table with per-fold scores) and summary.json (the best
//         configuration, its scores and the test accuracy).
// Exits with 1 when the test accuracy is below --min-accuracy.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <xgrad/select.hpp>
#include <xgrad/xgrad.hpp>

#include "common/flags.hpp"
#include "common/progress.hpp"

namespace {

using xgrad::Tensor;
namespace data = xgrad::data;
namespace examples = xgrad::examples;
namespace nn = xgrad::nn;
namespace select = xgrad::select;

constexpr std::size_t kImagePixels = 28 * 28;
constexpr std::size_t kClasses = 10;

struct Settings {
    std::string search;
    double lr_low;
    double lr_high;
    std::int64_t batch_low;
    std::int64_t batch_high;
    std::size_t lr_points;
    std::size_t batch_points;
    std::size_t candidates;
    std::size_t folds;
    std::string split;
    std::size_t epochs;
    std::size_t patience;
    std::vector<std::int64_t> hidden;
    double momentum;
    std::size_t train_size;
    std::size_t test_size;
    std::size_t threads;
    std::uint64_t seed;
    std::filesystem::path data_dir;
    std::filesystem::path out;
    double min_accuracy;
};

// Parses "a,b" into two numbers with a < b, or fails the flag.
std::pair<double, double> parse_range(const examples::Flags& flags, const std::string& name) {
    const std::string text = flags.get(name);
    const std::size_t comma = text.find(',');
    try {
        std::size_t used_low = 0;
        std::size_t used_high = 0;
        const double low = std::stod(text.substr(0, comma), &used_low);
        const double high = std::stod(text.substr(comma + 1), &used_high);
        if (comma != std::string::npos && used_low == comma &&
            used_high == text.size() - comma - 1 && low > 0.0 && low < high &&
            std::isfinite(high)) {
            return {low, high};
        }
    } catch (const std::exception&) {
    }
    flags.fail(name, "expected two positive numbers low,high with low < high");
}

Settings parse_settings(int argc, char** argv) {
    examples::Flags flags(
        "Tunes the learning rate and batch size of an MLP on Fashion-MNIST by k-fold "
        "cross-validation, then refits the best configuration and reports its test accuracy.");
    flags.add(
        "search", "grid",
        "grid: every combination of --lr-points and --batch-size-points values; random: "
        "--candidates draws, the learning rate log-uniform and the batch size integer-uniform.");
    flags.add("lr-range", "0.01,0.1", "Learning-rate range low,high of SGD.");
    flags.add("batch-size-range", "10,100", "Batch-size range low,high, in examples per step.");
    flags.add("lr-points", "3",
              "Grid search: learning rates spaced evenly on a log scale over --lr-range, ends "
              "included, to 3 significant digits (1: the geometric middle).");
    flags.add("batch-size-points", "3",
              "Grid search: batch sizes spaced evenly over --batch-size-range, ends included "
              "(1: the middle).");
    flags.add("candidates", "9", "Random search: number of configurations drawn.");
    flags.add("folds", "5", "Number of cross-validation folds k.");
    flags.add("split", "stratified",
              "Fold construction: stratified (each fold keeps the class shares) or kfold.");
    flags.add("epochs", "5",
              "Training epochs per fold and for the refit. With --patience, the maximum per fold, "
              "and the refit trains for the best configuration's mean best epoch.");
    flags.add("patience", "0",
              "Early stopping: stop a fold after this many epochs without a lower validation loss "
              "and keep its best epoch (0: off).");
    flags.add("hidden", "128", "Widths of the hidden ReLU layers, comma-separated.");
    flags.add("momentum", "0", "SGD momentum (0: plain SGD).");
    flags.add("train-size", "10000",
              "Training images to tune and refit on: the first N of 60,000.");
    flags.add("test-size", "0", "Test images for the final accuracy: the first N (0: all 10,000).");
    flags.add("threads", "2", "Threads that train configurations and folds concurrently.");
    flags.add("seed", "1",
              "Seed of the folds, the initial weights, the shuffling and random search.");
    flags.add("data-dir", data::fashion_mnist_dir().string(),
              "Directory holding the Fashion-MNIST IDX files (also set by XGRAD_DATA_DIR).");
    flags.add("out", "out/tune_hyperparameters", "Directory for search.csv and summary.json.");
    flags.add("min-accuracy", "0.8",
              "Exit with 1 when the refit's test accuracy is lower (0 to 1).");
    flags.parse(argc, argv);

    Settings settings{};
    settings.search = flags.get_choice("search", {"grid", "random"});
    std::tie(settings.lr_low, settings.lr_high) = parse_range(flags, "lr-range");
    const auto [batch_low, batch_high] = parse_range(flags, "batch-size-range");
    if (batch_low != std::floor(batch_low) || batch_high != std::floor(batch_high) ||
        batch_high > 1e6) {
        flags.fail("batch-size-range", "expected whole numbers up to 1000000");
    }
    settings.batch_low = static_cast<std::int64_t>(batch_low);
    settings.batch_high = static_cast<std::int64_t>(batch_high);
    settings.lr_points = flags.get_count("lr-points", 1);
    settings.batch_points = flags.get_count("batch-size-points", 1);
    settings.candidates = flags.get_count("candidates", 1);
    settings.folds = flags.get_count("folds", 2);
    settings.split = flags.get_choice("split", {"stratified", "kfold"});
    settings.epochs = flags.get_count("epochs", 1);
    settings.patience = flags.get_count("patience");
    std::stringstream widths(flags.get("hidden"));
    for (std::string width; std::getline(widths, width, ',');) {
        if (width.empty() || width.find_first_not_of("0123456789") != std::string::npos ||
            width.size() > 6 || std::stol(width) == 0) {
            flags.fail("hidden", "expected positive widths such as 256,128");
        }
        settings.hidden.push_back(std::stol(width));
    }
    if (settings.hidden.empty()) {
        flags.fail("hidden", "expected at least one width, such as 128");
    }
    settings.momentum = flags.get_double_in("momentum", 0.0, 0.999);
    settings.train_size = flags.get_count("train-size", 1);
    settings.test_size = flags.get_count("test-size");
    settings.threads = flags.get_count("threads", 1);
    settings.seed = flags.get_uint64("seed");
    settings.data_dir = flags.get("data-dir");
    settings.out = flags.get("out");
    settings.min_accuracy = flags.get_double_in("min-accuracy", 0.0, 1.0);
    return settings;
}

// `count` values from low to high, ends included: evenly spaced, or evenly
// spaced in the logarithm. One value is the (geometric) middle. Values are
// rounded to 3 significant digits, so the table shows 0.0316, not
// 0.031622776601683791.
std::vector<double> spaced(double low, double high, std::size_t count, bool logarithmic) {
    const double a = logarithmic ? std::log(low) : low;
    const double b = logarithmic ? std::log(high) : high;
    std::vector<double> values;
    for (std::size_t i = 0; i < count; ++i) {
        const double t = count == 1 ? 0.5 : static_cast<double>(i) / static_cast<double>(count - 1);
        const double value = logarithmic ? std::exp(a + t * (b - a)) : a + t * (b - a);
        char rounded[32];
        std::snprintf(rounded, sizeof rounded, "%.3g", value);
        values.push_back(std::stod(rounded));
    }
    return values;
}

// The configurations to cross-validate: a grid, or draws from the ranges.
std::vector<select::Params> make_candidates(const Settings& settings) {
    if (settings.search == "random") {
        const select::ParamDistributions space = {
            {"lr", select::Distribution::log_uniform(settings.lr_low, settings.lr_high)},
            {"batch_size",
             select::Distribution::int_uniform(settings.batch_low, settings.batch_high)},
        };
        return select::sample_params(space, settings.candidates, settings.seed);
    }
    std::vector<select::ParamValue> rates;
    for (double lr : spaced(settings.lr_low, settings.lr_high, settings.lr_points, true)) {
        rates.emplace_back(lr);
    }
    std::vector<select::ParamValue> batch_sizes;
    for (double size :
         spaced(static_cast<double>(settings.batch_low), static_cast<double>(settings.batch_high),
                settings.batch_points, false)) {
        const select::ParamValue rounded = static_cast<std::int64_t>(std::lround(size));
        if (std::find(batch_sizes.begin(), batch_sizes.end(), rounded) == batch_sizes.end()) {
            batch_sizes.push_back(rounded);
        }
    }
    return select::expand_grid({{"lr", rates}, {"batch_size", batch_sizes}});
}

// The model factory: a fresh MLP 784 -> hidden -> 10 with ReLU, its weights
// drawn from `seed`, trained by SGD with the configuration's learning rate
// and batch size.
select::ModelFactory mlp_factory(const Settings& settings) {
    return [settings](const select::Params& params, std::uint64_t seed) {
        xgrad::Generator generator(seed);
        auto model = std::make_shared<nn::Sequential>();
        std::size_t width = kImagePixels;
        for (const std::int64_t hidden : settings.hidden) {
            model->push_back(
                std::make_shared<nn::Linear>(width, static_cast<std::size_t>(hidden), generator));
            model->push_back(std::make_shared<nn::ReLU>());
            width = static_cast<std::size_t>(hidden);
        }
        model->push_back(std::make_shared<nn::Linear>(width, kClasses, generator));
        auto optimizer = std::make_unique<xgrad::optim::SGD>(
            model->parameters(),
            xgrad::optim::SGDOptions{.lr = params.get_double("lr"), .momentum = settings.momentum});
        // drop_last: 8,000 training images in batches of 31 would end every
        // epoch with a step on 2 images, whose noise shows in the validation
        // loss measured right after it and would penalise such batch sizes.
        return select::TrainingSetup{
            .model = model,
            .optimizer = std::move(optimizer),
            .batch_size = static_cast<std::size_t>(params.get_int("batch_size")),
            .drop_last = true,
            .epochs = settings.epochs};
    };
}

std::string describe(const select::Params& params) {
    char text[64];
    std::snprintf(text, sizeof text, "lr=%.4g batch_size=%lld", params.get_double("lr"),
                  static_cast<long long>(params.get_int("batch_size")));
    return text;
}

void print_table(const select::SearchResult& result) {
    std::printf("\n%4s  %8s  %10s  %20s  %20s  %10s\n", "rank", "lr", "batch_size",
                "CV loss (mean+-std)", "CV accuracy", "best epoch");
    for (const select::Candidate& candidate : result.candidates) {
        const select::CrossValidationResult& cv = candidate.cross_validation;
        std::printf("%4zu  %8.4g  %10lld  %11.4f +- %.4f  %11.4f +- %.4f  %10.1f\n", candidate.rank,
                    candidate.params.get_double("lr"),
                    static_cast<long long>(candidate.params.get_int("batch_size")), cv.mean_loss,
                    cv.std_loss, cv.mean_accuracy, cv.std_accuracy, cv.mean_best_epoch);
    }
}

// A JSON number with 6 decimals, or null for NaN and infinities, which JSON
// cannot represent.
std::string json_number(double value) {
    if (!std::isfinite(value)) {
        return "null";
    }
    char text[64];
    std::snprintf(text, sizeof text, "%.6f", value);
    return text;
}

void write_summary(const std::filesystem::path& path, const Settings& settings,
                   std::size_t train_images, const select::SearchResult& result,
                   const select::Evaluation& test, double seconds) {
    const select::Candidate& best = result.best();
    const select::CrossValidationResult& cv = best.cross_validation;
    char json[1024];
    std::snprintf(json, sizeof json,
                  "{\n  \"search\": \"%s\",\n  \"configurations\": %zu,\n  \"folds\": %zu,\n"
                  "  \"train_images\": %zu,\n  \"best\": {\"lr\": %s, \"batch_size\": %lld, "
                  "\"cv_loss\": %s, \"cv_loss_std\": %s, \"cv_accuracy\": %s, "
                  "\"cv_accuracy_std\": %s},\n  \"refit_epochs\": %zu,\n"
                  "  \"test_loss\": %s,\n  \"test_accuracy\": %s,\n  \"seconds\": %.1f\n}\n",
                  settings.search.c_str(), result.candidates.size(), result.fold_count, train_images,
                  select::format_value(best.params.at("lr")).c_str(),
                  static_cast<long long>(best.params.get_int("batch_size")),
                  json_number(cv.mean_loss).c_str(), json_number(cv.std_loss).c_str(),
                  json_number(cv.mean_accuracy).c_str(), json_number(cv.std_accuracy).c_str(),
                  result.refit->history.size(), json_number(test.loss).c_str(),
                  json_number(test.accuracy).c_str(), seconds);
    const std::string text = json;
    xgrad::io::write_file_atomically(path, [&text](std::ostream& out) { out << text; });
}

}  // namespace

int run(const Settings& settings) {
    const auto start = std::chrono::steady_clock::now();
    std::filesystem::create_directories(settings.out);

    // Data: pixels in [0, 1], standardised with the training subset's
    // statistics. The test images stay out of the search entirely.
    std::printf("Loading Fashion-MNIST from %s\n", settings.data_dir.c_str());
    const data::TensorDataset raw_train =
        data::load_fashion_mnist(settings.data_dir, data::Split::train, settings.train_size);
    const data::TensorDataset raw_test =
        data::load_fashion_mnist(settings.data_dir, data::Split::test, settings.test_size);
    const double mean = xgrad::mean(raw_train.inputs()).item();
    const double stddev = std::sqrt(xgrad::mean(xgrad::pow(raw_train.inputs() - mean, 2.0)).item());
    const data::TensorDataset train = raw_train.normalized(mean, stddev);
    const data::TensorDataset test = raw_test.normalized(mean, stddev);

    // The search: every configuration is trained k times, once per fold,
    // on the other k - 1 folds, and scored on the fold it did not see.
    const std::vector<select::Params> candidates = make_candidates(settings);
    std::unique_ptr<select::Splitter> splitter;
    if (settings.split == "stratified") {
        splitter = std::make_unique<select::StratifiedKFold>(
            select::KFoldOptions{.k = settings.folds, .seed = settings.seed});
    } else {
        splitter = std::make_unique<select::KFold>(
            select::KFoldOptions{.k = settings.folds, .seed = settings.seed});
    }
    std::printf(
        "%zu training and %zu test images; %s search over lr in [%g, %g] and batch size in "
        "[%lld, %lld]: %zu configurations x %zu folds, %zu epoch(s) each, on %zu thread(s)\n",
        train.size(), test.size(), settings.search.c_str(), settings.lr_low, settings.lr_high,
        static_cast<long long>(settings.batch_low), static_cast<long long>(settings.batch_high),
        candidates.size(), settings.folds, settings.epochs, settings.threads);

    select::SearchOptions options{
        .cross_validation = {.seed = settings.seed, .threads = settings.threads}};
    if (settings.patience > 0) {
        options.cross_validation.early_stopping =
            select::EarlyStopping{.patience = settings.patience};
    }
    // One progress step per training run: a fold of a configuration, or the refit.
    examples::Progress progress("search", candidates.size() * settings.folds + 1);
    options.cross_validation.on_progress = [&](const select::FitProgress& event) {
        const std::string run = describe(candidates[event.candidate]);
        char status[160];
        if (event.fold) {
            std::snprintf(status, sizeof status, "%s fold %zu: accuracy %.4f", run.c_str(),
                          *event.fold + 1, event.validation.accuracy);
        } else {
            std::snprintf(status, sizeof status, "refit %s on all %zu images", run.c_str(),
                          train.size());
        }
        progress.update(event.completed, event.examples, status);
    };
    const select::SearchResult result =
        select::search(mlp_factory(settings), candidates, train, *splitter, options);
    progress.finish("done");

    print_table(result);
    // Saved before best(), which throws when every configuration diverged.
    select::write_csv(result, settings.out / "search.csv");

    // The refit model saw every training image; the test set judges it once.
    const select::Candidate& best = result.best();
    const select::Evaluation test_scores =
        select::evaluate(*result.refit->setup.model, test, select::Task::classification);
    std::printf("\nBest: %s, CV loss %.4f +- %.4f, CV accuracy %.4f +- %.4f\n",
                describe(best.params).c_str(), best.cross_validation.mean_loss,
                best.cross_validation.std_loss, best.cross_validation.mean_accuracy,
                best.cross_validation.std_accuracy);
    std::printf(
        "Refit on all %zu training images for %zu epoch(s): test loss %.4f, test accuracy %.4f\n",
        train.size(), result.refit->history.size(), test_scores.loss, test_scores.accuracy);

    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_summary(settings.out / "summary.json", settings, train.size(), result, test_scores, seconds);
    std::printf("Wrote search.csv and summary.json to %s in %s\n", settings.out.c_str(),
                examples::format_duration(seconds).c_str());

    if (!(test_scores.accuracy >= settings.min_accuracy)) {
        std::printf("FAILED: test accuracy %.4f is below --min-accuracy %.4f\n",
                    test_scores.accuracy, settings.min_accuracy);
        return 1;
    }
    return 0;
}

int main(int argc, char** argv) {
    const Settings settings = parse_settings(argc, argv);
    try {
        return run(settings);
    } catch (const std::exception& error) {
        std::fflush(stdout);  // keep the log in order when both go to one file
        // A missing data set, an unwritable --out, a fold count larger than
        // a class: one line, not an abort.
        std::fprintf(stderr, "tune_hyperparameters: %s\n", error.what());
        return 1;
    }
}

// Attribution pictures for the main job's classifier: which pixels of a
// Fashion-MNIST test image move the score of a class, by four methods.
//
// What it teaches: explaining a model with xgrad::attribution (saliency,
// input × gradient, SmoothGrad and integrated gradients). The input
// standardisation is folded into the explained function, so attributions
// refer to raw pixels. Integrated gradients are checked by their
// completeness, and the pictures are written as PNG files.
//
// Run:    build/examples/explain [--model out/fashion_mnist/model.npz] [--images 4]
//                                [--out out/explain] ... (--help lists all)
//         Run build/examples/fashion_mnist first for the main job's model;
//         without a checkpoint this trains a quick model of the same shape.
// Prints: where the model came from; for each image its true and predicted
//         class and the completeness error of integrated gradients; the
//         files written.
// Writes to --out: image_<k>.png for test image k (the image beside its four
//         heatmaps) and attributions.png (all of them, one row each).
// Exits with 1 when the largest completeness error exceeds
// --max-completeness-error.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <xgrad/attribution.hpp>
#include <xgrad/xgrad.hpp>

#include "common/activation.hpp"
#include "common/flags.hpp"
#include "common/png.hpp"

namespace {

using xgrad::Tensor;
namespace attr = xgrad::attribution;
namespace data = xgrad::data;
namespace examples = xgrad::examples;
namespace nn = xgrad::nn;

constexpr std::size_t kSide = 28;  // Fashion-MNIST images are 28 × 28 pixels
constexpr double kHeatmapQuantile = 0.99;

struct Settings {
    std::filesystem::path model;
    std::filesystem::path data_dir;
    std::filesystem::path out;
    std::size_t images;
    std::size_t first;
    std::string target;
    std::string score;
    std::size_t steps;
    std::string rule;
    std::size_t samples;
    double noise;
    std::size_t scale;
    std::uint64_t seed;
    std::string activation;
    std::size_t limit_train;
    int quick_epochs;
    double max_completeness_error;
};

Settings parse_settings(int argc, char** argv) {
    examples::Flags flags(
        "Writes PNG pictures of Fashion-MNIST test images beside their attribution heatmaps.");
    flags.add(
        "model", "out/fashion_mnist/model.npz",
        "Checkpoint of the main job's MLP; when the file is missing, a quick model is trained.");
    flags.add("data-dir", data::fashion_mnist_dir().string(),
              "Directory holding the Fashion-MNIST IDX files (also set by XGRAD_DATA_DIR).");
    flags.add("out", "out/explain", "Directory for the PNG files.");
    flags.add("images", "4", "Number of test images to explain.");
    flags.add("first", "0", "Index of the first test image to explain.");
    flags.add("target", "predicted", "Class to explain: predicted or true.");
    flags.add("score", "logit", "Score to explain: logit or log_probability.");
    flags.add("steps", "64", "Steps of integrated gradients.");
    flags.add("rule", "trapezoid",
              "Integration rule of integrated gradients: trapezoid, midpoint, left or right.");
    flags.add("samples", "50", "Noisy copies per image for SmoothGrad.");
    flags.add(
        "noise", "0.15",
        "Standard deviation of SmoothGrad's noise, in pixel values (pixels run from 0 to 1).");
    flags.add("scale", "5", "Screen pixels per image pixel in the pictures.");
    flags.add("seed", "1", "Seed of SmoothGrad's noise and of the quick model.");
    flags.add("activation", "relu",
              "Hidden activation of the checkpoint's model, as passed to the main job: relu, tanh, "
              "gelu or leaky_relu. The checkpoint holds weights only, so a wrong value goes "
              "unnoticed and explains a different network.");
    flags.add(
        "limit-train", "0",
        "Use only the first N training images (0: all 60,000) for the pixel statistics that "
        "standardise the inputs, as the main job's --limit-train, and to train a quick model.");
    flags.add("quick-epochs", "2", "Epochs of the quick model, trained only without a checkpoint.");
    flags.add("max-completeness-error", "0.01",
              "Exit with 1 when |sum of attributions - (f(x) - f(baseline))| exceeds this fraction "
              "of |f(x) - f(baseline)| for an image.");
    flags.parse(argc, argv);

    Settings settings{};
    settings.model = flags.get("model");
    settings.data_dir = flags.get("data-dir");
    settings.out = flags.get("out");
    settings.images = flags.get_count("images", 1);
    settings.first = flags.get_count("first");
    settings.target = flags.get_choice("target", {"predicted", "true"});
    settings.score = flags.get_choice("score", {"logit", "log_probability"});
    settings.steps = flags.get_count("steps", 1);
    settings.rule = flags.get_choice("rule", {"trapezoid", "midpoint", "left", "right"});
    settings.samples = flags.get_count("samples", 1);
    settings.noise = flags.get_double_in("noise", 0.0, 10.0);
    settings.scale = flags.get_count("scale", 1);
    if (settings.scale > 32) {
        flags.fail("scale", "must be at most 32");
    }
    settings.seed = flags.get_uint64("seed");
    settings.activation = flags.get_choice("activation", examples::activation_names());
    settings.limit_train = flags.get_count("limit-train");
    settings.quick_epochs = static_cast<int>(flags.get_count("quick-epochs", 1));
    settings.max_completeness_error = flags.get_double_in("max-completeness-error", 0.0, 1e300);
    return settings;
}

// An MLP with the layer widths of the checkpoint: Linear layers named "0",
// "2", "4", ... as the main job's make_mlp() names them, with the activation
// between them. load_model() then checks every name, shape and dtype.
std::shared_ptr<nn::Sequential> load_mlp(const std::filesystem::path& path,
                                         const std::string& activation) {
    std::map<int, xgrad::Shape> weights;  // layer position -> (out_features, in_features)
    for (const auto& [name, tensor] : xgrad::io::load_npz(path)) {
        const std::size_t dot = name.find(".weight");
        if (dot != std::string::npos && dot > 0 && dot + 7 == name.size() && tensor.dim() == 2 &&
            name.find_first_not_of("0123456789") == dot) {
            weights[std::stoi(name.substr(0, dot))] = tensor.shape();
        }
    }
    if (weights.empty()) {
        throw xgrad::value_error(path.string() +
                                 ": no Linear weights named '<position>.weight'; expected the "
                                 "model.npz that examples/fashion_mnist writes");
    }
    auto model = std::make_shared<nn::Sequential>();
    for (auto layer = weights.begin(); layer != weights.end(); ++layer) {
        if (layer != weights.begin()) {
            model->push_back(examples::make_activation(activation));
        }
        model->push_back(std::make_shared<nn::Linear>(layer->second[1], layer->second[0]));
    }
    xgrad::load_model(*model, path);
    return model;
}

// The main job's network, 784-256-128-10 with ReLU, trained briefly with Adam
// on standardised images.
std::shared_ptr<nn::Sequential> train_quick_mlp(const data::TensorDataset& train, double mean,
                                                double stddev, const Settings& settings) {
    xgrad::Generator generator(settings.seed);
    auto model =
        std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
            std::make_shared<nn::Linear>(kSide * kSide, 256, generator),
            std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(256, 128, generator),
            std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(128, 10, generator)});
    xgrad::optim::Adam optimizer(model->parameters(), {.lr = 0.001});
    nn::CrossEntropyLoss criterion;
    data::DataLoader loader(train.normalized(mean, stddev),
                            {.batch_size = 128, .seed = settings.seed});
    for (int epoch = 1; epoch <= settings.quick_epochs; ++epoch) {
        double loss_sum = 0.0;
        std::size_t steps = 0;
        for (const data::Batch& batch : loader) {
            const Tensor loss = criterion((*model)(batch.inputs), batch.targets);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            loss_sum += loss.item();
            ++steps;
        }
        std::printf("quick model epoch %d/%d  loss %.4f\n", epoch, settings.quick_epochs,
                    loss_sum / static_cast<double>(std::max<std::size_t>(steps, 1)));
    }
    return model;
}

attr::IntegrationRule parse_rule(const std::string& name) {
    if (name == "midpoint") {
        return attr::IntegrationRule::midpoint;
    }
    if (name == "left") {
        return attr::IntegrationRule::left;
    }
    if (name == "right") {
        return attr::IntegrationRule::right;
    }
    return attr::IntegrationRule::trapezoid;
}

// Row `row` of a (n, 784) tensor as a 28 × 28 array.
xt::xarray<double> picture(const Tensor& rows, std::size_t row) {
    const xt::xarray<double> all = rows.to_xarray<double>();
    xt::xarray<double> result = xt::zeros<double>({kSide, kSide});
    for (std::size_t i = 0; i < kSide * kSide; ++i) {
        result(i / kSide, i % kSide) = all(row, i);
    }
    return result;
}

examples::Image heatmap_panel(const Tensor& attributions, std::size_t row,
                              examples::Colormap colormap, std::size_t scale) {
    const xt::xarray<double> values = picture(attributions, row);
    return examples::upscale(
        examples::heatmap(values, colormap, examples::robust_limit(values, kHeatmapQuantile)),
        scale);
}

}  // namespace

int run(const Settings& settings) {
    // Data: raw test pixels in [0, 1], and the training set's pixel
    // statistics, which standardise the model's inputs as in the main job.
    std::printf("Loading Fashion-MNIST from %s\n", settings.data_dir.c_str());
    const data::TensorDataset train =
        data::load_fashion_mnist(settings.data_dir, data::Split::train, settings.limit_train);
    const data::TensorDataset test_split = data::load_fashion_mnist(
        settings.data_dir, data::Split::test, settings.first + settings.images);
    if (test_split.size() < settings.first + settings.images) {
        std::fprintf(stderr,
                     "explain: --first %zu --images %zu asks for more than the %zu test images\n",
                     settings.first, settings.images, test_split.size());
        return 2;
    }
    std::vector<std::int64_t> positions;
    for (std::size_t i = 0; i < settings.images; ++i) {
        positions.push_back(static_cast<std::int64_t>(settings.first + i));
    }
    const data::TensorDataset test = test_split.subset(positions);
    // NOTE: model.npz stores no pixel statistics. They are recomputed here,
    // which matches the main job only when both ran with the same --limit-train.
    const double mean = xgrad::mean(train.inputs()).item();
    const double stddev = std::sqrt(xgrad::mean(xgrad::pow(train.inputs() - mean, 2.0)).item());

    // The model: the main job's checkpoint, or a quick one.
    std::shared_ptr<nn::Sequential> model;
    if (std::filesystem::exists(settings.model)) {
        model = load_mlp(settings.model, settings.activation);
        std::printf("Loaded %s\n", settings.model.c_str());
    } else {
        std::printf(
            "No checkpoint at %s (build/examples/fashion_mnist writes it); training a quick "
            "model on %zu images for %d epochs instead\n",
            settings.model.c_str(), train.size(), settings.quick_epochs);
        model = train_quick_mlp(train, mean, stddev, settings);
    }
    model->eval();
    std::printf("%s\n", model->to_string().c_str());

    // Predictions, and the function to explain: the score of one class per
    // image as a function of the raw pixels, standardisation included.
    const Tensor pixels = test.inputs();
    const Tensor labels = test.targets();
    Tensor probabilities;
    {
        xgrad::NoGradGuard no_grad;
        probabilities = xgrad::softmax((*model)((pixels - mean) / stddev));
    }
    const Tensor predicted = xgrad::argmax(probabilities);
    const Tensor classes = settings.target == "true" ? labels : predicted;
    const attr::ScoreFunction model_score = attr::class_score(
        *model, classes,
        settings.score == "logit" ? attr::ClassScore::logit : attr::ClassScore::log_probability);
    const attr::ScoreFunction score(
        [model_score, mean, stddev](const Tensor& raw) {
            return model_score((raw - mean) / stddev);
        },
        model->parameters());

    // The four attributions, each of shape (images, 784). Integrated
    // gradients start from a black image, all pixels 0.
    xgrad::Generator generator(settings.seed);
    const Tensor saliency = attr::saliency(score, pixels);
    const Tensor input_x_gradient = attr::input_x_gradient(score, pixels);
    // SmoothGrad averages the signed gradients, so that noise of either sign
    // cancels, and is drawn as magnitudes beside the saliency map.
    const Tensor smooth_grad = xgrad::abs(attr::smooth_grad(
        score, pixels, {.samples = settings.samples, .noise_stddev = settings.noise}, generator));
    const attr::IntegratedGradients integrated = attr::integrated_gradients(
        score, pixels, {.steps = settings.steps, .rule = parse_rule(settings.rule)});

    // One picture per image, then all of them stacked.
    std::filesystem::create_directories(settings.out);
    const xt::xarray<double> gaps = integrated.completeness_gap().values<double>();
    const xt::xarray<double>& scores = integrated.scores.values<double>();
    const xt::xarray<double>& baseline_scores = integrated.baseline_scores.values<double>();
    std::vector<std::string> written;
    std::vector<examples::Image> rows;
    double worst_error = 0.0;
    for (std::size_t i = 0; i < settings.images; ++i) {
        const std::size_t index = settings.first + i;
        const auto truth = static_cast<std::size_t>(labels.values<std::int64_t>()(i));
        const auto guess = static_cast<std::size_t>(predicted.values<std::int64_t>()(i));
        const double confidence = probabilities.values<float>()(i, guess);
        const double change = scores(i) - baseline_scores(i);
        const double error = std::abs(gaps(i)) / std::abs(change);
        worst_error = std::max(worst_error,
                               std::isnan(error) ? std::numeric_limits<double>::infinity() : error);
        std::printf(
            "test image %zu: true %s, predicted %s (%.2f); integrated gradients sum to %.4f, "
            "f(x) - f(black) = %.4f, completeness error %.3f%%\n",
            index, data::kFashionMnistClasses[truth], data::kFashionMnistClasses[guess], confidence,
            change + gaps(i), change, 100.0 * error);

        using examples::Colormap;
        const std::vector<examples::Panel> panels = {
            {"input", examples::upscale(examples::grayscale(picture(pixels, i)), settings.scale)},
            {"saliency", heatmap_panel(saliency, i, Colormap::sequential, settings.scale)},
            {"input x\ngradient",
             heatmap_panel(input_x_gradient, i, Colormap::diverging, settings.scale)},
            {"SmoothGrad", heatmap_panel(smooth_grad, i, Colormap::sequential, settings.scale)},
            {"integrated\ngradients",
             heatmap_panel(integrated.attributions, i, Colormap::diverging, settings.scale)},
        };
        char title[160];
        std::snprintf(title, sizeof title, "#%zu true: %s, predicted: %s (%.0f%%)", index,
                      data::kFashionMnistClasses[truth], data::kFashionMnistClasses[guess],
                      100.0 * confidence);
        rows.push_back(examples::side_by_side(panels, title));
        const std::string name = "image_" + std::to_string(index) + ".png";
        examples::write_png(settings.out / name, rows.back());
        written.push_back(name);
    }
    examples::write_png(settings.out / "attributions.png", examples::stack_vertically(rows));
    written.push_back("attributions.png");

    std::printf("Largest completeness error of integrated gradients: %.3f%% (%zu steps, %s rule)\n",
                100.0 * worst_error, settings.steps, settings.rule.c_str());
    std::printf("Wrote");
    for (const std::string& name : written) {
        std::printf(" %s", name.c_str());
    }
    std::printf(" to %s\n", settings.out.c_str());

    if (!(worst_error <= settings.max_completeness_error)) {
        std::printf("FAILED: completeness error %.3f%% is above --max-completeness-error %.3f%%\n",
                    100.0 * worst_error, 100.0 * settings.max_completeness_error);
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
        // A missing data set, a checkpoint of another model, an unwritable
        // --out: one line, not an abort.
        std::fprintf(stderr, "explain: %s\n", error.what());
        return 1;
    }
}

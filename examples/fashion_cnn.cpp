// A convolutional network for Fashion-MNIST, trained with data augmentation,
// pruned, quantized, evaluated and reported like the main job
// (examples/fashion_mnist).
//
// What it teaches: images as NCHW tensors and a model of convolution blocks
// (Conv2d without bias, BatchNorm2d, ReLU, max pooling) with a classifier.
// The data loader draws random crops and flips per batch, and the batch norm
// layers behave differently in train and eval modes. After dense training,
// four stages start from the trained model:
//   channels     a copy loses half of each convolution's output channels
//                (structured pruning with fine-tuning), and the pruned
//                channels are removed, so the model gets narrower;
//   pruned       the model loses 90% of its conv and linear weights
//                (unstructured, global magnitude, with fine-tuning);
//   pruned_int8  each batch norm folds into its convolution, and every
//                convolution and linear layer runs in int8;
//   pruned_int8_qat
//                the same after quantization-aware fine-tuning.
//
// Run:    build/examples/fashion_cnn [--epochs N] [--out DIR] ... (--help lists all)
// Prints: a progress bar per epoch on a terminal (plain lines otherwise),
//         validation accuracy after each epoch, the test accuracy of each
//         stage and a summary table. Writes to --out: model.npz (weights and
//         batch norm statistics), channels.npz (the narrower model),
//         pruned.npz (the pruned weights, sparse ones in CSR form),
//         pruned_int8.npz and pruned_int8_qat.npz (int8 weights and
//         scales), metrics.csv (one row per epoch of every stage),
//         curves.svg (loss and accuracy), graph.dot (the inference graph)
//         and summary.json.
// Exits with 1 when the dense test accuracy is below --min-accuracy.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad/graph/sparsify.hpp>
#include <xgrad/xgrad.hpp>

#include "common/flags.hpp"
#include "common/pipeline.hpp"

namespace {

using xgrad::Tensor;
namespace data = xgrad::data;
namespace nn = xgrad::nn;
namespace examples = xgrad::examples;

constexpr std::size_t kSide = 28;
constexpr std::size_t kClasses = 10;

struct Settings {
    int epochs;
    std::size_t batch_size;
    double lr;
    double weight_decay;
    std::vector<std::size_t> channels;
    std::size_t hidden;
    double dropout;
    std::size_t crop_padding;
    double flip;
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
    double channel_sparsity;
    int channel_epochs;
    std::string quant_observer;
    std::size_t calibration_batches;
    int qat_epochs;
    double qat_lr;
};

Settings parse_settings(int argc, char** argv) {
    examples::Flags flags("Trains a CNN on Fashion-MNIST with data augmentation and reports its "
                          "accuracy, size and speed.");
    flags.add("epochs", "15", "Number of passes over the training set.");
    flags.add("batch-size", "128", "Examples per training step.");
    flags.add("lr", "0.002", "AdamW's initial learning rate (cosine schedule to 0).");
    flags.add("weight-decay", "0.0005", "AdamW's decoupled weight decay.");
    flags.add("channels", "32,64,64",
              "Output channels of the convolution blocks, comma-separated. The first two "
              "blocks are each followed by 2x2 max pooling.");
    flags.add("hidden", "128", "Width of the classifier's hidden layer.");
    flags.add("dropout", "0.3", "Dropout probability before each classifier layer.");
    flags.add("crop-padding", "2",
              "Random crops: pad each training image by this many zero pixels, then crop 28x28 "
              "at a random offset (0 turns crops off).");
    flags.add("flip", "0.5", "Probability of mirroring a training image left to right.");
    flags.add("validation", "5000",
              "Training images held out for validation after each epoch (at most a fifth of "
              "them).");
    flags.add("limit-train", "0", "Use only the first N training images (0: all 60,000).");
    flags.add("limit-test", "0", "Use only the first N test images (0: all 10,000).");
    flags.add("inference-batch", "256", "Batch size of the inference-time measurement.");
    flags.add("seed", "1", "Seed of initialisation, split, shuffling, augmentation and dropout.");
    flags.add("data-dir", data::fashion_mnist_dir().string(),
              "Directory holding the Fashion-MNIST IDX files (also set by XGRAD_DATA_DIR).");
    flags.add("out", "out/fashion_cnn", "Directory for the checkpoint, metrics and pictures.");
    flags.add("min-accuracy", "0", "Exit with 1 when the dense test accuracy is lower (0 to 1).");
    flags.add("prune-sparsity", "0.9",
              "Fraction of all conv and linear weights to prune, smallest magnitudes across the "
              "layers, from 0 to 0.999 (0 skips the pruning stage).");
    flags.add("prune-epochs", "4",
              "Epochs of fine-tuning during and after gradual pruning (the sparsity reaches its "
              "target after the first two thirds; 0 skips the pruning stage).");
    flags.add("prune-lr", "0.0005", "AdamW's initial learning rate while pruning (cosine schedule).");
    flags.add("channel-sparsity", "0.5",
              "Fraction of each convolution's output channels to prune, smallest L1 norms first, "
              "from 0 to 0.99, in the channels stage, which starts from the dense model and "
              "removes the pruned channels (0 skips that stage).");
    flags.add("channel-epochs", "3",
              "Epochs of fine-tuning during and after gradual channel pruning (0 skips the "
              "channels stage).");
    flags.add("quant-observer", "histogram_mse",
              "Activation observer for int8 calibration: minmax, moving_average, "
              "histogram_percentile or histogram_mse.");
    flags.add("calibration-batches", "32",
              "Training batches of 256 images observed to calibrate int8 (0 skips both int8 "
              "stages).");
    flags.add("qat-epochs", "2",
              "Epochs of quantization-aware fine-tuning with frozen batch norm statistics (0 "
              "skips that stage).");
    flags.add("qat-lr", "0.0001", "AdamW's learning rate during quantization-aware fine-tuning.");
    flags.parse(argc, argv);

    constexpr double kLargest = 1e300;
    Settings settings{};
    settings.epochs = static_cast<int>(flags.get_count("epochs", 1));
    settings.batch_size = flags.get_count("batch-size", 2);  // batch norm needs two examples
    settings.lr = flags.get_double_in("lr", 0.0, kLargest);
    settings.weight_decay = flags.get_double_in("weight-decay", 0.0, kLargest);
    const std::string width_list = flags.get("channels");
    if (!width_list.empty() && width_list.back() == ',') {
        flags.fail("channels", "ends with a comma");
    }
    std::stringstream widths(width_list);
    for (std::string width; std::getline(widths, width, ',');) {
        if (width.empty() || width.find_first_not_of("0123456789") != std::string::npos ||
            width.size() > 5 || std::stoul(width) == 0) {
            flags.fail("channels", "expected positive channel counts such as 32,64,64");
        }
        settings.channels.push_back(static_cast<std::size_t>(std::stoul(width)));
    }
    if (settings.channels.empty()) {
        flags.fail("channels", "expected at least one convolution block");
    }
    settings.hidden = flags.get_count("hidden", 1);
    settings.dropout = flags.get_double_in("dropout", 0.0, 0.99);
    settings.crop_padding = flags.get_count("crop-padding");
    if (settings.crop_padding > kSide) {
        flags.fail("crop-padding", "expected at most 28, the image size");
    }
    settings.flip = flags.get_double_in("flip", 0.0, 1.0);
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
    settings.channel_sparsity = flags.get_double_in("channel-sparsity", 0.0, 0.99);
    settings.channel_epochs = static_cast<int>(flags.get_count("channel-epochs"));
    settings.quant_observer = flags.get("quant-observer");
    settings.calibration_batches = flags.get_count("calibration-batches");
    settings.qat_epochs = static_cast<int>(flags.get_count("qat-epochs"));
    settings.qat_lr = flags.get_double_in("qat-lr", 0.0, kLargest);
    return settings;
}

// Each convolution block is a 3x3 conv, batch norm and ReLU. The conv has no
// bias because batch norm's shift replaces it. The first two blocks end in
// 2x2 max pooling. The classifier flattens, then applies dropout, a hidden
// layer and the class logits.
std::shared_ptr<nn::Sequential> make_cnn(const Settings& settings, xgrad::Generator& generator) {
    auto model = std::make_shared<nn::Sequential>();
    std::size_t channels = 1;
    std::size_t side = kSide;
    for (std::size_t block = 0; block < settings.channels.size(); ++block) {
        const std::size_t out = settings.channels[block];
        model->push_back(std::make_shared<nn::Conv2d>(
            nn::Conv2dOptions{.in_channels = channels, .out_channels = out, .kernel = {3, 3},
                              .padding = {1, 1}, .bias = false},
            generator));
        model->push_back(std::make_shared<nn::BatchNorm2d>(out));
        model->push_back(std::make_shared<nn::ReLU>());
        if (block < 2) {
            model->push_back(std::make_shared<nn::MaxPool2d>(xgrad::MaxPool2dParams{.kernel = {2, 2}}));
            side /= 2;
        }
        channels = out;
    }
    model->push_back(std::make_shared<nn::Flatten>());
    model->push_back(std::make_shared<nn::Dropout>(settings.dropout, generator));
    model->push_back(std::make_shared<nn::Linear>(channels * side * side, settings.hidden, generator));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::Dropout>(settings.dropout, generator));
    model->push_back(std::make_shared<nn::Linear>(settings.hidden, kClasses, generator));
    return model;
}

// The images as (n, 1, 28, 28) with pixels in [0, 1]. They are not
// standardised: the crops pad with zeros, which must stay the background's
// value, and the first batch norm layer rescales the first convolution's
// output anyway.
data::TensorDataset as_images(const data::TensorDataset& flat) {
    const auto n = static_cast<std::int64_t>(flat.size());
    const auto side = static_cast<std::int64_t>(kSide);
    xgrad::NoGradGuard no_grad;
    return {xgrad::reshape(flat.inputs(), {n, 1, side, side}), flat.targets()};
}

data::Augmentation make_augmentation(const Settings& settings) {
    std::vector<data::Augmentation> steps;
    if (settings.crop_padding > 0) {
        steps.push_back(data::RandomCrop{.padding = settings.crop_padding});
    }
    if (settings.flip > 0.0) {
        steps.push_back(data::RandomHorizontalFlip{.p = settings.flip});
    }
    return steps.empty() ? data::Augmentation{} : data::compose(std::move(steps));
}

data::DataLoader training_loader(const Settings& settings, const data::TensorDataset& train_set,
                                 std::uint64_t seed) {
    return data::DataLoader(train_set, {.batch_size = settings.batch_size,
                                        .drop_last = true,  // no batch of one for batch norm
                                        .seed = seed,
                                        .augment = make_augmentation(settings)});
}

// An eager training step. Batch norm updates its running statistics as the
// ops run, which a replayed graph would not do, and dropout draws a new mask
// per step, which a captured graph would freeze. `after_step` runs after
// each optimizer step.
examples::TrainStep eager_step(nn::Module& model, xgrad::optim::Optimizer& optimizer,
                               std::function<void()> after_step = {}) {
    return [&model, &optimizer, after_step](const data::Batch& batch) {
        const Tensor logits = model(batch.inputs);
        const Tensor loss = xgrad::cross_entropy(logits, batch.targets);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        if (after_step) {
            after_step();
        }
        return std::pair{loss, logits};
    };
}

// Stage 1: dense training.
void train(nn::Module& model, const Settings& settings, const data::TensorDataset& train_set,
           const data::TensorDataset& held_out, std::vector<examples::EpochMetrics>& metrics) {
    xgrad::optim::AdamW optimizer(model.parameters(),
                                  {.lr = settings.lr, .weight_decay = settings.weight_decay});
    xgrad::optim::CosineAnnealingLR cosine(optimizer, std::max(settings.epochs, 1));
    data::DataLoader loader = training_loader(settings, train_set, settings.seed);
    const examples::TrainStep step = eager_step(model, optimizer);
    for (int epoch = 1; epoch <= settings.epochs; ++epoch) {
        const double lr = optimizer.param_groups()[0].lr;
        metrics.push_back(
            examples::run_epoch("cnn", epoch, settings.epochs, loader, step, model, held_out, lr));
        cosine.step();
    }
}

// The choices of one pruning stage: method, layers, sparsity and epochs.
struct PruningPlan {
    std::string stage;  ///< label of its epochs in the progress and metrics.csv
    xgrad::transforms::PruneMethod method;
    bool linear_layers;  ///< prune the classifier's weights too, not only the convolutions'
    double sparsity;
    int epochs;
    std::uint64_t seed;  ///< of the training order and augmentation
};

// Gradual pruning with eager fine-tuning. The masks live in an eval-mode
// graph of the model, whose parameters are the model's own tensors;
// GradualPruner updates them and zeroes the pruned weights and their
// optimizer state. In eager training the pruned weights still receive
// gradients, so after every step they are multiplied by their masks again.
// Structured methods also mask each pruned channel's batch norm weight and
// bias, which keeps the channel exactly zero.
void prune_and_fine_tune(nn::Module& model, const Settings& settings, const PruningPlan& plan,
                         const data::TensorDataset& train_set, const data::TensorDataset& held_out,
                         const Tensor& example_inputs, std::vector<examples::EpochMetrics>& metrics) {
    namespace tf = xgrad::transforms;
    const xgrad::Graph captured = examples::inference_graph(model, example_inputs);
    std::vector<std::string> weights = tf::conv_weights(captured);
    if (plan.linear_layers) {
        const std::vector<std::string> linear = tf::linear_weights(captured);
        weights.insert(weights.end(), linear.begin(), linear.end());
    }
    std::vector<std::string> masked_names = weights;
    const bool structured = plan.method == tf::PruneMethod::structured_l1 ||
                            plan.method == tf::PruneMethod::structured_l2;
    if (structured) {
        const std::vector<std::string> channel = tf::channel_parameters(captured, weights);
        masked_names.insert(masked_names.end(), channel.begin(), channel.end());
    }
    xgrad::Graph masked = tf::add_masks(captured, masked_names);

    std::vector<std::pair<Tensor, Tensor>> masked_tensors;  // (parameter, mask), sharing values
    for (const std::string& name : masked_names) {
        masked_tensors.emplace_back(masked.value(masked.find_value(name)).tensor,
                                    masked.value(masked.find_value(name + ".mask")).tensor);
    }
    const auto apply_masks = [&masked_tensors] {
        xgrad::NoGradGuard no_grad;
        for (auto& [parameter, mask] : masked_tensors) {
            parameter.mutable_values<float>() *= mask.values<float>();
        }
    };

    xgrad::optim::AdamW optimizer(model.parameters(),
                                  {.lr = settings.prune_lr, .weight_decay = settings.weight_decay});
    data::DataLoader loader = training_loader(settings, train_set, plan.seed);
    const auto total_steps = static_cast<std::int64_t>(loader.size()) * plan.epochs;
    const tf::PruningSchedule schedule = examples::pruning_schedule(plan.sparsity, total_steps);
    tf::GradualPruner pruner(masked, {.method = plan.method, .parameters = weights}, schedule,
                             &optimizer);

    const examples::TrainStep train_step = eager_step(model, optimizer, apply_masks);
    examples::fine_tune_while_pruning(pruner, schedule, plan.epochs, loader, train_step, optimizer,
                                      model, held_out, metrics, plan.stage);
    std::printf("%s", tf::format_sparsity_report(tf::sparsity_report(masked)).c_str());
}

// The channels stage: structured pruning of the convolutions' output
// channels, then removal of the pruned channels. The smaller graph's
// tensors are loaded into a narrower model of the same design, which is
// evaluated and saved as an ordinary model.
examples::Stage prune_channels(const Settings& settings, const data::TensorDataset& train_set,
                               const data::TensorDataset& held_out, const data::TensorDataset& test,
                               const Tensor& inference_batch,
                               std::vector<examples::EpochMetrics>& metrics) {
    namespace tf = xgrad::transforms;
    xgrad::Generator generator(settings.seed);
    const std::shared_ptr<nn::Sequential> model = make_cnn(settings, generator);
    xgrad::load_model(*model, settings.out / "model.npz");
    prune_and_fine_tune(*model, settings,
                        {.stage = "channels",
                         .method = tf::PruneMethod::structured_l1,
                         .linear_layers = false,
                         .sparsity = settings.channel_sparsity,
                         .epochs = settings.channel_epochs,
                         .seed = settings.seed + 2},
                        train_set, held_out, inference_batch, metrics);

    const xgrad::Graph graph = examples::inference_graph(*model, inference_batch);
    const std::vector<std::string> convolutions = tf::conv_weights(graph);
    const tf::ChannelRemoval removal = tf::remove_pruned_channels(graph, convolutions);
    std::printf("%s", tf::format_channel_report(removal.layers).c_str());

    Settings narrow = settings;
    narrow.channels.clear();
    for (const tf::LayerChannels& layer : removal.layers) {
        if (std::find(convolutions.begin(), convolutions.end(), layer.weight) != convolutions.end()) {
            narrow.channels.push_back(layer.after);
        }
    }
    const std::shared_ptr<nn::Sequential> slim = make_cnn(narrow, generator);
    tf::load_graph_state(*slim, removal.graph);
    std::printf("%zu parameters after removing channels, %zu before\n", slim->parameter_count(),
                model->parameter_count());

    const examples::Evaluation result = examples::evaluate(*slim, test);
    std::printf("Channels test accuracy: %.4f\n", result.accuracy);
    xgrad::save_model(*slim, settings.out / "channels.npz");
    xgrad::Graph slim_graph =
        tf::fold_batch_norm(examples::inference_graph(*slim, inference_batch));
    return {"channels", result.accuracy, 0.0,
            std::filesystem::file_size(settings.out / "channels.npz"),
            examples::inference_ms(slim_graph, inference_batch)};
}

// The activation parameters of a calibration on the unfolded graph, under
// the names of the folded graph: fold_batch_norm() renames each folded
// convolution's weight to "<weight>.folded", and the passes know a layer by
// its weight's name. The activations themselves are the same in both graphs.
xgrad::transforms::ActivationParams folded_names(const xgrad::transforms::ActivationParams& params,
                                                 const xgrad::Graph& folded) {
    std::set<std::string> names;
    for (const xgrad::Value& value : folded.values()) {
        names.insert(value.name);
    }
    xgrad::transforms::ActivationParams renamed;
    for (const auto& [weight, qparams] : params) {
        const bool was_folded = names.count(weight + ".folded") > 0;
        renamed.emplace(was_folded ? weight + ".folded" : weight, qparams);
    }
    return renamed;
}

// Stage 5: quantization-aware fine-tuning. The training step is captured in
// eval mode, so batch norm normalizes with its running statistics, which
// stay frozen, and dropout passes its input through. convert_qat() puts fake
// quantization on the input and the weight of every convolution and linear
// layer. Quantizing a convolution's weight per output channel before
// folding gives the same integers as quantizing the folded weight, because
// folding scales each channel by one factor. Pruned weights stay zero: each
// weight is multiplied by its pattern of zeros after every step.
void quantization_aware_training(nn::Module& model, const xgrad::transforms::ActivationParams& params,
                                 const Settings& settings, const data::TensorDataset& train_set,
                                 const data::TensorDataset& held_out,
                                 std::vector<examples::EpochMetrics>& metrics) {
    namespace tf = xgrad::transforms;
    model.eval();
    const xgrad::Graph captured = examples::training_graph(model, train_set, settings.batch_size);
    model.train();
    xgrad::Graph qat = tf::convert_qat(captured, params);

    std::vector<std::pair<Tensor, xt::xarray<float>>> nonzero_patterns;  // (weight, 1 where nonzero)
    std::vector<std::string> weights = tf::conv_weights(captured);
    const std::vector<std::string> linear = tf::linear_weights(captured);
    weights.insert(weights.end(), linear.begin(), linear.end());
    for (const std::string& name : weights) {
        const Tensor weight = captured.value(captured.find_value(name)).tensor;
        nonzero_patterns.emplace_back(weight,
                                      xt::cast<float>(xt::not_equal(weight.values<float>(), 0.0f)));
    }

    xgrad::optim::AdamW optimizer(model.parameters(),
                                  {.lr = settings.qat_lr, .weight_decay = settings.weight_decay});
    data::DataLoader loader = training_loader(settings, train_set, settings.seed + 4);
    const examples::TrainStep replay = examples::graph_step(qat, optimizer);
    const examples::TrainStep step = [&](const data::Batch& batch) {
        auto result = replay(batch);
        xgrad::NoGradGuard no_grad;
        for (auto& [weight, pattern] : nonzero_patterns) {
            weight.mutable_values<float>() *= pattern;
        }
        return result;
    };
    for (int epoch = 1; epoch <= settings.qat_epochs; ++epoch) {
        metrics.push_back(examples::run_epoch("qat", epoch, settings.qat_epochs, loader, step,
                                              model, held_out, settings.qat_lr));
    }
}

int run(const Settings& settings) {
    std::filesystem::create_directories(settings.out);

    std::printf("Loading Fashion-MNIST from %s\n", settings.data_dir.c_str());
    const data::TensorDataset full_train = as_images(
        data::load_fashion_mnist(settings.data_dir, data::Split::train, settings.limit_train));
    const data::TensorDataset test = as_images(
        data::load_fashion_mnist(settings.data_dir, data::Split::test, settings.limit_test));
    const std::size_t validation = std::min(settings.validation, full_train.size() / 5);
    if (validation < settings.validation) {
        std::printf("Holding out %zu images for validation, a fifth of the training images, instead "
                    "of --validation %zu\n",
                    validation, settings.validation);
    }
    auto [train_set, held_out] =
        data::random_split(full_train, full_train.size() - validation, settings.seed);
    if (train_set.size() < settings.batch_size) {
        throw xgrad::value_error("only " + std::to_string(train_set.size()) +
                                 " training images, fewer than one batch of --batch-size " +
                                 std::to_string(settings.batch_size) +
                                 "; raise --limit-train or lower --batch-size");
    }
    const Tensor inference_batch = test.head(settings.inference_batch).inputs();
    const std::size_t inference_size = inference_batch.shape()[0];
    std::printf("%zu training, %zu validation and %zu test images\n", train_set.size(),
                held_out.size(), test.size());

    xgrad::Generator generator(settings.seed);
    const std::shared_ptr<nn::Sequential> model = make_cnn(settings, generator);
    std::printf("%s\n%zu parameters\n", model->to_string().c_str(), model->parameter_count());

    std::vector<examples::EpochMetrics> metrics;
    train(*model, settings, train_set, held_out, metrics);
    const examples::Evaluation result = examples::evaluate(*model, test);
    std::printf("Dense test accuracy: %.4f\n", result.accuracy);

    xgrad::save_model(*model, settings.out / "model.npz");
    xgrad::Graph graph = examples::inference_graph(*model, inference_batch);
    examples::write_text(settings.out / "graph.dot", graph.to_dot("fashion_cnn inference"));
    std::vector<examples::Stage> stages = {
        {"cnn", result.accuracy, 0.0, std::filesystem::file_size(settings.out / "model.npz"),
         examples::inference_ms(graph, inference_batch)}};

    // Stage 2: channel pruning of a copy of the dense model, then removal
    // of the pruned channels.
    if (settings.channel_sparsity > 0.0 && settings.channel_epochs > 0) {
        stages.push_back(
            prune_channels(settings, train_set, held_out, test, inference_batch, metrics));
    }

    // Stage 3: pruning with fine-tuning. Inference runs on the graph with
    // each batch norm folded into its convolution and the sparse enough
    // linear layers in CSR form.
    if (settings.prune_sparsity > 0.0 && settings.prune_epochs > 0) {
        namespace tf = xgrad::transforms;
        prune_and_fine_tune(*model, settings,
                            {.stage = "prune",
                             .method = tf::PruneMethod::global_magnitude,
                             .linear_layers = true,
                             .sparsity = settings.prune_sparsity,
                             .epochs = settings.prune_epochs,
                             .seed = settings.seed + 1},
                            train_set, held_out, inference_batch, metrics);
        const examples::Evaluation pruned = examples::evaluate(*model, test);
        std::printf("Pruned test accuracy: %.4f\n", pruned.accuracy);
        xgrad::io::save_npz(settings.out / "pruned.npz", tf::compressed_state_dict(*model, 2.0 / 3.0));
        xgrad::Graph pruned_graph = xgrad::eliminate_dead_code(xgrad::sparsify(
            tf::fold_batch_norm(examples::inference_graph(*model, inference_batch)), 0.8));
        stages.push_back({"pruned", pruned.accuracy,
                          tf::overall_sparsity(tf::sparsity_report(*model)),
                          std::filesystem::file_size(settings.out / "pruned.npz"),
                          examples::inference_ms(pruned_graph, inference_batch)});
    }

    // Stage 4: post-training int8 quantization of the (pruned) float model.
    // Each batch norm folds into its convolution first, so every convolution
    // and linear layer runs on int8 weights, one scale per output channel.
    // Stage 5: quantization-aware fine-tuning, then int8 again.
    if (settings.calibration_batches > 0) {
        namespace tf = xgrad::transforms;
        const std::string base = stages.back().name == "pruned" ? "pruned_int8" : "int8";
        const examples::GraphPass fold = [](const xgrad::Graph& graph) {
            return tf::fold_batch_norm(graph);
        };
        const tf::ActivationParams params =
            examples::calibrate(*model, train_set, settings.quant_observer,
                                settings.calibration_batches, settings.seed + 3);
        const tf::ActivationParams folded_params =
            folded_names(params, fold(examples::inference_graph(*model, inference_batch)));
        const auto int8_stage = [&](const std::string& name) {
            const double accuracy = examples::int8_accuracy(*model, folded_params, test, fold);
            std::printf("%s test accuracy: %.4f\n", name.c_str(), accuracy);
            xgrad::Graph graph = examples::int8_graph(*model, inference_batch, folded_params, fold);
            const std::filesystem::path file = settings.out / (name + ".npz");
            xgrad::io::save_npz(file, tf::quantized_state_dict(graph));
            stages.push_back({name, accuracy, tf::overall_sparsity(tf::sparsity_report(*model)),
                              std::filesystem::file_size(file),
                              examples::inference_ms(graph, inference_batch)});
        };
        int8_stage(base);
        if (settings.qat_epochs > 0) {
            quantization_aware_training(*model, params, settings, train_set, held_out, metrics);
            int8_stage(base + "_qat");
        }
    }

    examples::write_metrics(settings.out / "metrics.csv", metrics);
    examples::write_curves(settings.out / "curves.svg", metrics);
    examples::write_summary(settings.out / "summary.json", inference_size, stages);
    examples::print_table(inference_size, stages);
    std::string written = "model.npz, ";
    for (std::size_t i = 1; i < stages.size(); ++i) {
        written += stages[i].name + ".npz, ";
    }
    std::printf("\nWrote %smetrics.csv, curves.svg, graph.dot and summary.json to %s\n",
                written.c_str(), settings.out.c_str());

    if (!(result.accuracy >= settings.min_accuracy)) {
        std::printf("FAILED: dense test accuracy %.4f is below --min-accuracy %.4f\n", result.accuracy,
                    settings.min_accuracy);
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Settings settings = parse_settings(argc, argv);
    try {
        return run(settings);
    } catch (const std::exception& error) {
        std::fflush(stdout);  // keep the log in order when both go to one file
        std::fprintf(stderr, "fashion_cnn: %s\n", error.what());
        return 1;
    }
}

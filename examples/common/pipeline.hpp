#pragma once

// The parts of a Fashion-MNIST pipeline that the MLP main job
// (examples/fashion_mnist) and the CNN example (examples/fashion_cnn) share.
// They evaluate a model, run one epoch with a progress display, replay the
// training step as a graph and calibrate int8. They also write the files and
// the table that report the stages.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/xgrad.hpp"

namespace xgrad::examples {

struct Evaluation {
    double loss = 0.0;
    double accuracy = 0.0;
};

/// How many rows of `logits` have their largest entry at the int64 label.
std::size_t count_correct(const Tensor& logits, const Tensor& labels);

/// Mean cross-entropy and accuracy over a dataset, in eval mode and without
/// recording, in batches of 1000. The model returns to train mode. NaN for
/// an empty dataset.
Evaluation evaluate(nn::Module& model, const data::TensorDataset& dataset);

/// The model's forward pass in eval mode as a graph over batches shaped like
/// `inputs`. The model returns to train mode.
Graph inference_graph(nn::Module& model, const Tensor& inputs);

/// Median wall time of one replayed forward pass over `inputs`, in
/// milliseconds, over 50 passes. Every stage is timed this way, so they
/// compare fairly.
double inference_ms(Graph& graph, const Tensor& inputs);

/// One row of metrics.csv: an epoch of one stage.
struct EpochMetrics {
    std::string stage;
    int epoch;
    double train_loss;
    double train_accuracy;
    double validation_loss;
    double validation_accuracy;
    double lr;
    double seconds;
};

/// One row of the final table and one entry of summary.json.
struct Stage {
    std::string name;
    double test_accuracy;
    double sparsity;
    std::uintmax_t model_bytes;
    double inference_ms;
};

/// One training step on a batch: forward, backward and update. Returns the
/// loss and the logits, for the epoch's statistics.
using TrainStep = std::function<std::pair<Tensor, Tensor>(const data::Batch&)>;

/// One epoch over `loader` with a progress display labelled
/// "<stage> epoch <epoch>/<epochs>", followed by validation on `held_out`.
EpochMetrics run_epoch(const std::string& stage, int epoch, int epochs, data::DataLoader& loader,
                       const TrainStep& train_step, nn::Module& model,
                       const data::TensorDataset& held_out, double lr);

/// The training step as a graph: inputs and labels in, the mean
/// cross-entropy and the logits out, captured on the first batch of
/// `batch_size` examples. Replay needs that batch shape, so loaders over
/// the graph drop the last, smaller batch.
Graph training_graph(nn::Module& model, const data::TensorDataset& train, std::size_t batch_size);

/// A TrainStep that replays `graph` (made by training_graph()), calls
/// `after_backward` when given (to average gradients across ranks, say) and
/// steps the optimizer. Both must outlive the returned function.
TrainStep graph_step(Graph& graph, optim::Optimizer& optimizer,
                     std::function<void()> after_backward = {});

/// The gradual pruning schedule of both examples: the sparsity rises from 0
/// to `sparsity` over the first two thirds of `total_steps`, with a mask
/// update every 50 steps.
transforms::PruningSchedule pruning_schedule(double sparsity, std::int64_t total_steps);

/// Runs `epochs` epochs of `train_step` labelled `stage`, with `pruner`
/// stepped before every training step and a cosine learning-rate schedule
/// over the epochs. Afterwards it completes the pruning schedule if the
/// epochs ended first, so that the masks reach the final sparsity.
void fine_tune_while_pruning(transforms::GradualPruner& pruner,
                             const transforms::PruningSchedule& schedule, int epochs,
                             data::DataLoader& loader, const TrainStep& train_step,
                             optim::Optimizer& optimizer, nn::Module& model,
                             const data::TensorDataset& held_out,
                             std::vector<EpochMetrics>& metrics,
                             const std::string& stage = "prune");

/// A pass applied to the inference graph before quantization, such as
/// transforms::fold_batch_norm; empty means none.
using GraphPass = std::function<Graph(const Graph&)>;

/// Observes the inputs of every linear and conv2d op of the model's
/// inference graph (after `prepare`) on up to `batches` shuffled training
/// batches of 256 and returns the calibrated int8 activation parameters.
transforms::ActivationParams calibrate(nn::Module& model, const data::TensorDataset& train,
                                       const std::string& observer, std::size_t batches,
                                       std::uint64_t seed, const GraphPass& prepare = {});

/// Builds the model's int8 inference graph over batches shaped like
/// `inputs`: captures the inference graph, applies `prepare`, then
/// transforms::convert_int8().
Graph int8_graph(nn::Module& model, const Tensor& inputs,
                 const transforms::ActivationParams& params, const GraphPass& prepare = {});

/// Accuracy of the model's int8 version on a dataset, in batches of 1000. A
/// graph is built by int8_graph() per batch shape. NaN for an empty set.
double int8_accuracy(nn::Module& model, const transforms::ActivationParams& params,
                     const data::TensorDataset& dataset, const GraphPass& prepare = {});

/// Sends standard output to /dev/null unless `is_root`, so that in a run of
/// several MPI ranks only rank 0 prints progress and results. Errors on
/// standard error still show from every rank.
void print_on_root_only(bool is_root);

/// Writes `text` to `path` through a temporary file and a rename.
void write_text(const std::filesystem::path& path, const std::string& text);

/// metrics.csv: a header, then one row per epoch.
void write_metrics(const std::filesystem::path& path, const std::vector<EpochMetrics>& metrics);

/// curves.svg: loss and accuracy per epoch, counted across stages.
void write_curves(const std::filesystem::path& path, const std::vector<EpochMetrics>& metrics);

/// summary.json: the inference batch size and one entry per stage.
void write_summary(const std::filesystem::path& path, std::size_t inference_size,
                   const std::vector<Stage>& stages);

/// Prints the stage table to standard output.
void print_table(std::size_t inference_size, const std::vector<Stage>& stages);

}  // namespace xgrad::examples

#pragma once

// Training a fresh model per fold and scoring it on the fold's validation
// examples: k-fold cross-validation,
//
//     CV = (1/k) Σᵢ Loss(Xᵢ, ωᵢ),
//
// where Xᵢ are the validation examples of fold i and ωᵢ the weights trained
// on the other folds. A user describes the model once, as a ModelFactory:
//
//     select::ModelFactory factory = [](const select::Params& params, std::uint64_t seed) {
//         Generator generator(seed);
//         auto model = std::make_shared<nn::Sequential>(...layers drawing from generator...);
//         auto optimizer = std::make_unique<optim::SGD>(
//             model->parameters(), optim::SGDOptions{.lr = params.get_double("lr")});
//         return select::TrainingSetup{.model = model, .optimizer = std::move(optimizer),
//                                      .batch_size = 32, .epochs = 5};
//     };
//
// and cross_validate() calls it once per fold, trains with a standard loop
// (shuffled mini-batches, zero_grad, backward, step) and evaluates after
// every epoch. docs/model-selection.md walks through a complete example.
//
// Threads: every training run happens on a worker thread, and so on a tape
// of its own. With `threads` > 1 several runs train at once, and the factory
// is called from several threads concurrently. It must then change no shared
// state without a lock, and tensors it captures must carry no recorded
// history (detach() them). The dataset's tensors are detached before they
// are shared. Each fold's seed depends only on `seed` and the fold index.
// The worker's default generator is reseeded with it before the factory
// runs, and OpenBLAS runs single-threaded during the call. So the results do
// not depend on the number of threads or on which thread ran a fold.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "xgrad/data/dataset.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/optim/optimizer.hpp"
#include "xgrad/select/params.hpp"
#include "xgrad/select/split.hpp"

namespace xgrad::select {

/// What the targets are, which decides the default loss and whether
/// accuracy is measured.
enum class Task {
    /// Outputs are logits (n, classes), targets int64 labels (n). The default
    /// loss is cross_entropy, and accuracy is the share of argmax predictions
    /// equal to the label.
    classification,
    /// Outputs and targets are float tensors of the same shape. The default
    /// loss is mse_loss, and accuracy is not measured (NaN).
    regression,
};

/// Computes a batch's mean loss from the model's output and the targets.
using LossFunction = std::function<Tensor(const Tensor& output, const Tensor& targets)>;

/// A fresh model with its optimizer and training schedule, as a
/// ModelFactory returns it.
struct TrainingSetup {
    std::shared_ptr<nn::Module> model = nullptr;

    /// An optimizer over the model's parameters.
    std::unique_ptr<optim::Optimizer> optimizer = nullptr;

    /// Examples per training step, at least 1. The last batch of an epoch
    /// may be smaller.
    std::size_t batch_size = 32;

    /// Skip the last batch of an epoch when it is smaller than batch_size, as
    /// PyTorch's DataLoader(drop_last=True). A tiny last batch takes a full
    /// step along a noisy gradient right before the epoch's evaluation. In
    /// examples/tune_hyperparameters with batches of 31, whose last batch has
    /// 2 examples, it raised some epochs' validation loss 2.5-fold.
    bool drop_last = false;

    /// Passes over the training examples, at least 1. With early stopping,
    /// the maximum.
    std::size_t epochs = 10;

    /// The training and validation loss. Empty: the Task's default.
    LossFunction loss = nullptr;

    /// Called after each epoch's evaluation with the epoch number (from 1),
    /// for example to step a learning-rate scheduler that the factory
    /// created and captured.
    std::function<void(std::size_t epoch)> after_epoch = nullptr;
};

/// Builds a TrainingSetup for a configuration. `seed` is meant for the
/// model's initial weights: use it (through a Generator) for everything the
/// model draws, so that every configuration starts from comparable weights
/// in a given fold and the results repeat exactly.
using ModelFactory = std::function<TrainingSetup(const Params& params, std::uint64_t seed)>;

/// Stops training once the validation loss has not improved for `patience`
/// epochs, and restores the best epoch's weights at the end of training,
/// whether it stopped early or ran all its epochs. A loss improves when it is
/// below the best so far minus `min_delta`. NaN never improves.
struct EarlyStopping {
    /// Epochs without improvement before training stops, at least 1.
    std::size_t patience = 3;

    /// Smallest decrease of the validation loss that counts as an
    /// improvement, >= 0.
    double min_delta = 0.0;
};

struct FitOptions {
    Task task = Task::classification;

    /// Off when empty. Needs validation examples.
    std::optional<EarlyStopping> early_stopping = std::nullopt;

    /// Number of epochs, overriding TrainingSetup::epochs when set.
    std::optional<std::size_t> epochs = std::nullopt;

    /// Batch size of evaluation, which runs without recording. At least 1.
    std::size_t evaluation_batch_size = 1000;
};

/// Mean loss and accuracy over a dataset.
struct Evaluation {
    double loss = 0.0;

    /// Share of correctly classified examples, or NaN for regression.
    double accuracy = 0.0;
};

/// Loss and accuracy after one epoch of training.
struct EpochRecord {
    /// Epoch number, from 1.
    std::size_t epoch = 0;

    /// Mean training loss over the epoch's batches, weighted by batch size,
    /// as measured while the weights changed.
    double train_loss = 0.0;

    /// Training examples in the epoch's batches: all of them, or fewer with
    /// drop_last.
    std::size_t examples = 0;

    /// Scores on the validation examples after the epoch, or NaN without them.
    Evaluation validation = {};
};

/// A trained model and how training went.
struct FitResult {
    /// The factory's model and optimizer after training. With early
    /// stopping the model has the best epoch's weights, while the optimizer
    /// keeps the state of the last epoch that ran.
    TrainingSetup setup;

    /// One record per epoch that ran.
    std::vector<EpochRecord> history;

    /// The epoch whose weights the model has and whose validation result
    /// `validation` reports: the best one with early stopping, the last one
    /// otherwise. From 1.
    std::size_t best_epoch = 0;

    /// The validation result of best_epoch, or NaN without validation examples.
    Evaluation validation = {};
};

/// Builds a model with `factory(params, seed)` and trains it on `train`,
/// evaluating on `validation` after every epoch (pass an empty dataset,
/// TensorDataset{}, for none). The DataLoader shuffles with
/// derive_seed(seed, 0), so the batches differ from the factory's draws.
///
/// Runs on the calling thread and leaves its default generator alone.
/// Throws value_error
/// - for an empty training set or an evaluation batch size of 0;
/// - when the factory's setup has no model or no optimizer, a batch size or
///   epoch count of 0, or drop_last with fewer training examples than one
///   batch;
/// - when early stopping is on without validation examples, with patience 0
///   or with a negative or non-finite min_delta;
/// - for the problems that evaluate() reports.
/// Exceptions from the factory, the model or the loss propagate.
FitResult fit(const ModelFactory& factory, const Params& params, std::uint64_t seed,
              const data::TensorDataset& train, const data::TensorDataset& validation,
              const FitOptions& options = {});

/// Computes the mean loss and accuracy of `model` over `dataset` in batches of
/// `batch_size`, in eval mode and without recording. The model returns to
/// the mode it was in afterwards. An empty `loss` means the Task's default. The
/// loss is the mean over examples: batch means weighted by batch size.
/// Classification needs outputs of shape (n, classes) and int64 targets of
/// shape (n), or else throws value_error. An empty dataset gives NaN for both.
Evaluation evaluate(nn::Module& model, const data::TensorDataset& dataset, Task task,
                    const LossFunction& loss = {}, std::size_t batch_size = 1000);

/// A seed for stream `stream` of `seed`, mixed with SplitMix64 so that
/// nearby seeds and streams give unrelated values. Cross-validation gives
/// fold i the seed derive_seed(seed, i).
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

/// Reported after each training run (a fold, or the refit of a search)
/// finishes. The callback runs on the thread that called cross_validate()
/// or the search, one call at a time, in the order in which the runs finish.
struct FitProgress {
    /// Runs finished so far, including this one.
    std::size_t completed = 0;

    /// Runs in the whole call: candidates times folds, plus one for a refit.
    std::size_t total = 0;

    /// The configuration's index in the order the search generated it, or 0
    /// in cross_validate().
    std::size_t candidate = 0;

    /// The fold, or empty for the refit on all training examples.
    std::optional<std::size_t> fold = std::nullopt;

    /// This run's validation result (NaN for the refit).
    Evaluation validation = {};

    /// Epochs this run trained.
    std::size_t epochs = 0;

    /// Training examples processed by all runs finished so far, counting an
    /// example once per epoch that used it.
    std::size_t examples = 0;
};

using ProgressCallback = std::function<void(const FitProgress&)>;

struct CrossValidateOptions {
    Task task = Task::classification;

    /// Off when empty. Applies to every fold.
    std::optional<EarlyStopping> early_stopping = std::nullopt;

    /// Fold i calls the factory with derive_seed(seed, i).
    std::uint64_t seed = 0;

    /// Threads that train folds (and, in a search, configurations)
    /// concurrently, where 0 means std::thread::hardware_concurrency(). The
    /// results are the same for every value.
    std::size_t threads = 1;

    /// Batch size of evaluation, at least 1.
    std::size_t evaluation_batch_size = 1000;

    /// Called after each training run, unless empty.
    ProgressCallback on_progress = nullptr;
};

/// One fold's outcome.
struct FoldResult {
    std::size_t train_size = 0;
    std::size_t validation_size = 0;

    /// See FitResult: the validation result of best_epoch.
    Evaluation validation = {};
    std::size_t best_epoch = 0;
    std::vector<EpochRecord> history;
};

struct CrossValidationResult {
    Task task = Task::classification;
    std::vector<FoldResult> folds;

    /// Mean and population standard deviation (divisor k, as scikit-learn's
    /// cv_results_) over the folds of the validation loss, which is the CV
    /// value above.
    double mean_loss = 0.0;
    double std_loss = 0.0;

    /// The same for the validation accuracy, or NaN for regression.
    double mean_accuracy = 0.0;
    double std_accuracy = 0.0;

    /// Mean of the folds' best_epoch: with early stopping, how long training
    /// paid off on average.
    double mean_best_epoch = 0.0;
};

/// Trains one model per fold of `splitter` on `dataset` and evaluates it on
/// the fold's validation examples. Throws what splitter.split() and fit()
/// throw. When several folds fail, the exception of the lowest failed fold
/// propagates once every thread has stopped.
CrossValidationResult cross_validate(const ModelFactory& factory, const Params& params,
                                     const data::TensorDataset& dataset, const Splitter& splitter,
                                     const CrossValidateOptions& options = {});

}  // namespace xgrad::select

#include "xgrad/select/cross_validate.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "select/runner.hpp"
#include "xgrad/autograd.hpp"
#include "xgrad/ops/loss.hpp"
#include "xgrad/ops/reduce.hpp"

namespace xgrad::select {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

LossFunction default_loss(Task task) {
    if (task == Task::classification) {
        return [](const Tensor& output, const Tensor& targets) {
            return cross_entropy(output, targets);
        };
    }
    return [](const Tensor& output, const Tensor& targets) { return mse_loss(output, targets); };
}

std::size_t count_correct(const Tensor& output, const Tensor& targets) {
    if (output.dim() != 2 || targets.dtype() != Dtype::int64 || targets.dim() != 1) {
        throw value_error(
            "evaluate: accuracy needs outputs of shape (n, classes) and int64 "
            "targets of shape (n), got outputs of shape " +
            shape_string(output.shape()) + " and " + dtype_name(targets.dtype()) +
            " targets of shape " + shape_string(targets.shape()) +
            "; use Task::regression for other targets");
    }
    const xt::xarray<std::int64_t> predicted = argmax(output, 1).values<std::int64_t>();
    const auto& expected = targets.values<std::int64_t>();
    std::size_t correct = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        correct += predicted(i) == expected(i) ? 1 : 0;
    }
    return correct;
}

void check_setup(const TrainingSetup& setup, std::size_t epochs, const Params& params,
                 std::size_t train_size) {
    const std::string context = "fit: the factory's setup for {" + params.to_string() + "}";
    if (!setup.model) {
        throw value_error(context + " has no model");
    }
    if (!setup.optimizer) {
        throw value_error(context + " has no optimizer");
    }
    if (setup.batch_size == 0) {
        throw value_error(context + " has batch_size 0; it must be at least 1");
    }
    if (epochs == 0) {
        throw value_error(context + " trains for 0 epochs; it must be at least 1");
    }
    if (setup.drop_last && train_size < setup.batch_size) {
        throw value_error(context + " has drop_last with batch_size " +
                          std::to_string(setup.batch_size) + ", which leaves no batch of " +
                          std::to_string(train_size) +
                          " training examples; lower the batch size or turn drop_last off");
    }
}

void check_early_stopping(const EarlyStopping& early_stopping,
                          const data::TensorDataset& validation) {
    if (validation.size() == 0) {
        throw value_error(
            "fit: early stopping needs validation examples, but the validation "
            "set is empty");
    }
    if (early_stopping.patience == 0) {
        throw value_error("fit: early stopping needs a patience of at least 1 epoch, got 0");
    }
    if (!(early_stopping.min_delta >= 0.0 && std::isfinite(early_stopping.min_delta))) {
        throw value_error("fit: early stopping needs a finite min_delta >= 0, got " +
                          std::to_string(early_stopping.min_delta));
    }
}

bool improves(double loss, double best, double min_delta) {
    if (std::isnan(loss)) {
        return false;
    }
    return std::isnan(best) || loss < best - min_delta;
}

// Deep copies of the model's parameters and buffers, to restore later.
nn::NamedTensors snapshot(const nn::Module& model) {
    nn::NamedTensors state = model.state_dict();
    for (auto& entry : state) {
        entry.second = entry.second.clone();
    }
    return state;
}

// Mean over the runs, and the population standard deviation around it.
std::pair<double, double> mean_and_std(const std::vector<double>& values) {
    if (values.empty()) {
        return {kNaN, kNaN};
    }
    double sum = 0.0;
    for (double value : values) {
        sum += value;
    }
    const double mean = sum / static_cast<double>(values.size());
    double squares = 0.0;
    for (double value : values) {
        squares += (value - mean) * (value - mean);
    }
    return {mean, std::sqrt(squares / static_cast<double>(values.size()))};
}

CrossValidationResult summarize(Task task, std::vector<FoldResult> folds) {
    std::vector<double> losses;
    std::vector<double> accuracies;
    std::vector<double> best_epochs;
    for (const FoldResult& fold : folds) {
        losses.push_back(fold.validation.loss);
        accuracies.push_back(fold.validation.accuracy);
        best_epochs.push_back(static_cast<double>(fold.best_epoch));
    }
    CrossValidationResult result;
    result.task = task;
    result.folds = std::move(folds);
    std::tie(result.mean_loss, result.std_loss) = mean_and_std(losses);
    std::tie(result.mean_accuracy, result.std_accuracy) = mean_and_std(accuracies);
    result.mean_best_epoch = mean_and_std(best_epochs).first;
    return result;
}

}  // namespace

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
    // SplitMix64's output function applied to seed + (stream + 1) times its
    // increment (Steele, Lea and Flood, "Fast splittable pseudorandom number
    // generators", OOPSLA 2014).
    std::uint64_t z = seed + (stream + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

Evaluation evaluate(nn::Module& model, const data::TensorDataset& dataset, Task task,
                    const LossFunction& loss, std::size_t batch_size) {
    if (batch_size == 0) {
        throw value_error("evaluate: batch_size must be at least 1");
    }
    if (dataset.size() == 0) {
        return {kNaN, kNaN};  // nothing to measure, not a perfect score
    }
    const LossFunction& loss_function = loss ? loss : default_loss(task);

    NoGradGuard no_grad;
    const bool was_training = model.is_training();
    model.eval();
    data::DataLoader loader(dataset, {.batch_size = batch_size, .shuffle = false});
    double loss_sum = 0.0;
    std::size_t correct = 0;
    try {
        for (const data::Batch& batch : loader) {
            const Tensor output = model(batch.inputs);
            if (task == Task::classification) {
                correct += count_correct(output, batch.targets);  // checks the shapes first
            }
            const auto n = static_cast<double>(batch.inputs.shape()[0]);
            loss_sum += loss_function(output, batch.targets).item() * n;
        }
    } catch (...) {
        model.train(was_training);
        throw;
    }
    model.train(was_training);

    const auto n = static_cast<double>(dataset.size());
    const double accuracy = task == Task::classification ? static_cast<double>(correct) / n : kNaN;
    return {loss_sum / n, accuracy};
}

FitResult fit(const ModelFactory& factory, const Params& params, std::uint64_t seed,
              const data::TensorDataset& train, const data::TensorDataset& validation,
              const FitOptions& options) {
    if (options.early_stopping) {
        check_early_stopping(*options.early_stopping, validation);
    }
    if (options.evaluation_batch_size == 0) {
        throw value_error("fit: evaluation_batch_size must be at least 1");
    }
    if (train.size() == 0) {
        throw value_error("fit: the training set is empty");
    }
    FitResult result;
    result.setup = factory(params, seed);
    TrainingSetup& setup = result.setup;
    const std::size_t epochs = options.epochs.value_or(setup.epochs);
    check_setup(setup, epochs, params, train.size());
    const LossFunction loss = setup.loss ? setup.loss : default_loss(options.task);

    nn::Module& model = *setup.model;
    data::DataLoader loader(train, {.batch_size = setup.batch_size,
                                    .drop_last = setup.drop_last,
                                    .seed = derive_seed(seed, 0)});
    nn::NamedTensors best_state;
    double best_loss = kNaN;
    std::size_t epochs_since_best = 0;
    model.train();
    for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
        // One pass over the shuffled training examples.
        double loss_sum = 0.0;
        std::size_t seen = 0;
        for (const data::Batch& batch : loader) {
            const Tensor batch_loss = loss(model(batch.inputs), batch.targets);
            setup.optimizer->zero_grad();
            batch_loss.backward();
            setup.optimizer->step();
            const std::size_t n = batch.inputs.shape()[0];
            loss_sum += batch_loss.item() * static_cast<double>(n);
            seen += n;
        }
        const Evaluation scores =
            evaluate(model, validation, options.task, loss, options.evaluation_batch_size);
        result.history.push_back({epoch, loss_sum / static_cast<double>(seen), seen, scores});

        // Early stopping keeps the weights of the best epoch so far.
        if (options.early_stopping) {
            if (improves(scores.loss, best_loss, options.early_stopping->min_delta)) {
                best_loss = scores.loss;
                result.best_epoch = epoch;
                epochs_since_best = 0;
                best_state = snapshot(model);
            } else {
                ++epochs_since_best;
            }
        }
        if (setup.after_epoch) {
            setup.after_epoch(epoch);
        }
        if (options.early_stopping && epochs_since_best >= options.early_stopping->patience) {
            break;
        }
    }

    // Without early stopping, or when no epoch had a number for a loss, the
    // last epoch counts.
    if (result.best_epoch == 0) {
        result.best_epoch = result.history.size();
    } else if (result.best_epoch != result.history.size()) {
        model.load_state_dict(best_state);
    }
    result.validation = result.history[result.best_epoch - 1].validation;
    return result;
}

namespace detail {

std::vector<CrossValidationResult> cross_validate_candidates(const ModelFactory& factory,
                                                             const std::vector<Params>& candidates,
                                                             const data::TensorDataset& dataset,
                                                             const std::vector<Fold>& folds,
                                                             const CrossValidateOptions& options,
                                                             ProgressCounter& counter) {
    const std::size_t k = folds.size();
    const FitOptions fit_options{.task = options.task,
                                 .early_stopping = options.early_stopping,
                                 .evaluation_batch_size = options.evaluation_batch_size};
    // Slot t receives the result of candidate t / k on fold t % k. Each task
    // writes only its own slot.
    std::vector<FoldResult> slots(candidates.size() * k);

    const auto task = [&](std::size_t t) {
        const Params& params = candidates[t / k];
        const Fold& fold = folds[t % k];
        const std::uint64_t seed = derive_seed(options.seed, t % k);
        // Layers built without a generator draw from this thread's default
        // one; reseeding it keeps them independent of earlier tasks here.
        manual_seed(seed);
        FitResult fitted = fit(factory, params, seed, dataset.subset(fold.train),
                               dataset.subset(fold.validation), fit_options);
        slots[t] = {fold.train.size(), fold.validation.size(), fitted.validation, fitted.best_epoch,
                    std::move(fitted.history)};
    };
    const auto on_done = [&](std::size_t t) {
        const FoldResult& result = slots[t];
        ++counter.completed;
        for (const EpochRecord& record : result.history) {
            counter.examples += record.examples;
        }
        if (options.on_progress) {
            options.on_progress({.completed = counter.completed,
                                 .total = counter.total,
                                 .candidate = t / k,
                                 .fold = t % k,
                                 .validation = result.validation,
                                 .epochs = result.history.size(),
                                 .examples = counter.examples});
        }
    };
    run_tasks(slots.size(), options.threads, task, on_done);

    std::vector<CrossValidationResult> results;
    for (std::size_t c = 0; c < candidates.size(); ++c) {
        const auto first = slots.begin() + static_cast<std::ptrdiff_t>(c * k);
        std::vector<FoldResult> candidate_folds(
            std::make_move_iterator(first),
            std::make_move_iterator(first + static_cast<std::ptrdiff_t>(k)));
        results.push_back(summarize(options.task, std::move(candidate_folds)));
    }
    return results;
}

}  // namespace detail

CrossValidationResult cross_validate(const ModelFactory& factory, const Params& params,
                                     const data::TensorDataset& dataset, const Splitter& splitter,
                                     const CrossValidateOptions& options) {
    const std::vector<Fold> folds = splitter.split(dataset);
    detail::ProgressCounter counter{.total = folds.size()};
    return detail::cross_validate_candidates(factory, {params}, detail::detached(dataset), folds,
                                             options, counter)
        .front();
}

}  // namespace xgrad::select

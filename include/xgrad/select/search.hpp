#pragma once

// Hyperparameter search by cross-validation: grid search over every
// combination of given values, and random search over distributions
// (log-uniform for scales such as the learning rate, uniform or
// integer-uniform otherwise). Both cross-validate each configuration on the
// same folds, rank the configurations by mean validation loss, and refit the
// best one on all training examples, as scikit-learn's GridSearchCV and
// RandomizedSearchCV do:
//
//     select::ParamGrid grid = {{"lr", {0.01, 0.03, 0.1}}, {"batch_size", {10, 100}}};
//     select::SearchResult result = select::grid_search(
//         factory, grid, train, select::KFold({.k = 5, .seed = 1}),
//         {.cross_validation = {.seed = 1, .threads = 2}});
//     result.best().params;        // the winning configuration
//     result.refit->setup.model;   // trained on all of `train`
//     select::write_csv(result, "search.csv");
//
// Determinism: the folds come from the splitter, each fold's seed from
// CrossValidateOptions::seed and the fold index, and random candidates from
// the same seed, so a seed fixes the whole table. The number of threads does
// not change it (cross_validate.hpp explains why).

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "xgrad/select/cross_validate.hpp"
#include "xgrad/select/params.hpp"
#include "xgrad/select/split.hpp"

namespace xgrad::select {

/// The score that ranks configurations.
enum class RankBy {
    /// Mean validation loss, lowest first: the CV value of cross_validate.hpp.
    loss,
    /// Mean validation accuracy, highest first. Classification only.
    accuracy,
};

struct SearchOptions {
    /// Task, early stopping, seed, threads and progress callback of every
    /// cross-validation. The progress total counts the refit as one more run.
    CrossValidateOptions cross_validation = {};

    RankBy rank_by = RankBy::loss;

    /// Train the best configuration again on all training examples, for the
    /// epochs that its TrainingSetup sets. With early stopping, the refit has
    /// no validation examples to stop on, so it trains for the best
    /// configuration's mean best epoch over the folds instead, rounded to the
    /// nearest whole epoch (halves up). The refit's factory seed is
    /// derive_seed(cross_validation.seed, k) for k folds.
    bool refit = true;
};

/// One configuration's row of the ranked table.
struct Candidate {
    /// Position in the ranking, from 1. Ties keep the generation order, so
    /// every rank is distinct.
    std::size_t rank = 0;

    /// Position in the order the search generated the configurations, from 0.
    std::size_t index = 0;

    Params params;
    CrossValidationResult cross_validation;
};

struct SearchResult {
    Task task = Task::classification;
    RankBy rank_by = RankBy::loss;

    /// Number of folds each configuration was cross-validated on.
    std::size_t fold_count = 0;

    /// Hyperparameter names in order of first appearance across the
    /// candidates: the table's parameter columns.
    std::vector<std::string> param_names;

    /// Every configuration, best first. A configuration whose mean
    /// validation loss is NaN (training diverged) ranks after all others,
    /// also when ranking by accuracy.
    std::vector<Candidate> candidates;

    /// The best configuration trained on all training examples, or empty
    /// when SearchOptions::refit is false or every configuration diverged.
    std::optional<FitResult> refit;

    /// The first row of the table. Throws value_error when it is empty or
    /// when every configuration diverged.
    const Candidate& best() const;
};

/// Cross-validates each configuration of `candidates` with `factory` on the
/// folds of `splitter` (split once, shared by all), ranks them and, with
/// options.refit, refits the best. Configurations and folds run as
/// independent tasks on options.cross_validation.threads threads. Throws
/// value_error for an empty candidate list and for RankBy::accuracy with
/// Task::regression, and propagates what cross_validate() throws.
SearchResult search(const ModelFactory& factory, const std::vector<Params>& candidates,
                    const data::TensorDataset& dataset, const Splitter& splitter,
                    const SearchOptions& options = {});

/// Searches every combination of `grid`, in expand_grid() order.
SearchResult grid_search(const ModelFactory& factory, const ParamGrid& grid,
                         const data::TensorDataset& dataset, const Splitter& splitter,
                         const SearchOptions& options = {});

/// Searches `count` configurations drawn by
/// sample_params(distributions, count, options.cross_validation.seed).
SearchResult random_search(const ModelFactory& factory, const ParamDistributions& distributions,
                           std::size_t count, const data::TensorDataset& dataset,
                           const Splitter& splitter, const SearchOptions& options = {});

/// The ranked table as CSV (RFC 4180, "\n" line ends), one header line and
/// one line per candidate, best first. Columns:
///
///   rank, then one per hyperparameter (format_value(), or empty when a
///   candidate lacks the name), mean_validation_loss,
///   std_validation_loss, mean_validation_accuracy,
///   std_validation_accuracy, mean_best_epoch, then
///   fold<i>_validation_loss and fold<i>_validation_accuracy for each fold
///   i from 1.
///
/// Regression tables have no accuracy columns. Numbers are written in their
/// shortest round-trip form, so parsing them gives the same doubles, and NaN
/// is "nan". A field with a comma, a quote or a line break is quoted, such as
/// a list value "256,128".
std::string to_csv(const SearchResult& result);

/// Writes to_csv(result) to `path` atomically (io::write_file_atomically):
/// readers see the old file or the complete new one. Throws io_error.
void write_csv(const SearchResult& result, const std::filesystem::path& path);

}  // namespace xgrad::select

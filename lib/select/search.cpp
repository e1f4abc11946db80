#include "xgrad/select/search.hpp"

#include <algorithm>
#include <cmath>
#include <ostream>

#include "select/runner.hpp"
#include "xgrad/io/file.hpp"
#include "xgrad/random.hpp"

namespace xgrad::select {

namespace {

// The score to rank by, as a number where lower is better. NaN when the
// mean loss is NaN, even when ranking by accuracy: a model with NaN weights
// predicts class 0 everywhere and would score the share of that class.
double ranking_score(const CrossValidationResult& result, RankBy rank_by) {
    if (std::isnan(result.mean_loss)) {
        return result.mean_loss;
    }
    return rank_by == RankBy::loss ? result.mean_loss : -result.mean_accuracy;
}

void rank(std::vector<Candidate>& candidates, RankBy rank_by) {
    std::stable_sort(candidates.begin(), candidates.end(),
                     [rank_by](const Candidate& a, const Candidate& b) {
                         const double score_a = ranking_score(a.cross_validation, rank_by);
                         const double score_b = ranking_score(b.cross_validation, rank_by);
                         // NaN ranks last, so a diverged run is never the best.
                         if (std::isnan(score_a) || std::isnan(score_b)) {
                             return !std::isnan(score_a) && std::isnan(score_b);
                         }
                         return score_a < score_b;
                     });
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        candidates[i].rank = i + 1;
    }
}

std::vector<std::string> names_in_order(const std::vector<Params>& candidates) {
    std::vector<std::string> names;
    for (const Params& params : candidates) {
        for (const auto& item : params.items()) {
            if (std::find(names.begin(), names.end(), item.first) == names.end()) {
                names.push_back(item.first);
            }
        }
    }
    return names;
}

// Trains the best configuration on all examples, on a thread of its own
// like the folds, so the caller's default generator and tape stay untouched.
FitResult refit_best(const ModelFactory& factory, const Candidate& best,
                     const data::TensorDataset& dataset, std::size_t fold_count,
                     const CrossValidateOptions& options, detail::ProgressCounter& counter) {
    FitOptions fit_options{.task = options.task,
                           .evaluation_batch_size = options.evaluation_batch_size};
    if (options.early_stopping) {
        const double epochs = std::round(best.cross_validation.mean_best_epoch);
        fit_options.epochs = static_cast<std::size_t>(std::max(epochs, 1.0));
    }
    const std::uint64_t seed = derive_seed(options.seed, fold_count);
    std::optional<FitResult> fitted;
    const auto task = [&](std::size_t) {
        manual_seed(seed);
        fitted = fit(factory, best.params, seed, dataset, data::TensorDataset{}, fit_options);
    };
    const auto on_done = [&](std::size_t) {
        ++counter.completed;
        for (const EpochRecord& record : fitted->history) {
            counter.examples += record.examples;
        }
        if (options.on_progress) {
            options.on_progress({.completed = counter.completed,
                                 .total = counter.total,
                                 .candidate = best.index,
                                 .fold = std::nullopt,
                                 .validation = fitted->validation,
                                 .epochs = fitted->history.size(),
                                 .examples = counter.examples});
        }
    };
    detail::run_tasks(1, 1, task, on_done);
    return std::move(*fitted);
}

// Quotes a CSV field when it contains a comma, a quote or a line break, as
// RFC 4180 requires, doubling the quotes inside.
std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\r\n") == std::string::npos) {
        return text;
    }
    std::string quoted = "\"";
    for (char c : text) {
        quoted += c == '"' ? "\"\"" : std::string(1, c);
    }
    return quoted + "\"";
}

void append_row(std::string& csv, const std::vector<std::string>& fields) {
    for (std::size_t i = 0; i < fields.size(); ++i) {
        csv += (i == 0 ? "" : ",") + csv_field(fields[i]);
    }
    csv += "\n";
}

}  // namespace

const Candidate& SearchResult::best() const {
    if (candidates.empty()) {
        throw value_error("SearchResult::best: the table is empty");
    }
    if (std::isnan(ranking_score(candidates.front().cross_validation, rank_by))) {
        throw value_error("SearchResult::best: all " + std::to_string(candidates.size()) +
                          " configurations diverged (their mean validation loss is NaN); "
                          "try smaller learning rates");
    }
    return candidates.front();
}

SearchResult search(const ModelFactory& factory, const std::vector<Params>& candidates,
                    const data::TensorDataset& dataset, const Splitter& splitter,
                    const SearchOptions& options) {
    const CrossValidateOptions& cv = options.cross_validation;
    if (candidates.empty()) {
        throw value_error("search: there are no configurations to try");
    }
    if (options.rank_by == RankBy::accuracy && cv.task == Task::regression) {
        throw value_error(
            "search: RankBy::accuracy needs Task::classification; regression "
            "has no accuracy, so rank by loss");
    }

    const std::vector<Fold> folds = splitter.split(dataset);
    const data::TensorDataset shared = detail::detached(dataset);
    detail::ProgressCounter counter{.total =
                                        candidates.size() * folds.size() + (options.refit ? 1 : 0)};
    std::vector<CrossValidationResult> scores =
        detail::cross_validate_candidates(factory, candidates, shared, folds, cv, counter);

    SearchResult result;
    result.task = cv.task;
    result.rank_by = options.rank_by;
    result.fold_count = folds.size();
    result.param_names = names_in_order(candidates);
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        result.candidates.push_back({0, i, candidates[i], std::move(scores[i])});
    }
    rank(result.candidates, options.rank_by);

    // When every configuration diverged there is nothing worth refitting;
    // best() then throws a value_error that explains why.
    const Candidate& first = result.candidates.front();
    if (options.refit && !std::isnan(ranking_score(first.cross_validation, options.rank_by))) {
        result.refit = refit_best(factory, first, shared, folds.size(), cv, counter);
    }
    return result;
}

SearchResult grid_search(const ModelFactory& factory, const ParamGrid& grid,
                         const data::TensorDataset& dataset, const Splitter& splitter,
                         const SearchOptions& options) {
    return search(factory, expand_grid(grid), dataset, splitter, options);
}

SearchResult random_search(const ModelFactory& factory, const ParamDistributions& distributions,
                           std::size_t count, const data::TensorDataset& dataset,
                           const Splitter& splitter, const SearchOptions& options) {
    const std::vector<Params> candidates =
        sample_params(distributions, count, options.cross_validation.seed);
    return search(factory, candidates, dataset, splitter, options);
}

std::string to_csv(const SearchResult& result) {
    const bool classification = result.task == Task::classification;

    std::vector<std::string> header{"rank"};
    header.insert(header.end(), result.param_names.begin(), result.param_names.end());
    header.insert(header.end(), {"mean_validation_loss", "std_validation_loss"});
    if (classification) {
        header.insert(header.end(), {"mean_validation_accuracy", "std_validation_accuracy"});
    }
    header.push_back("mean_best_epoch");
    for (std::size_t fold = 1; fold <= result.fold_count; ++fold) {
        const std::string prefix = "fold" + std::to_string(fold) + "_validation_";
        header.push_back(prefix + "loss");
        if (classification) {
            header.push_back(prefix + "accuracy");
        }
    }
    std::string csv;
    append_row(csv, header);

    for (const Candidate& candidate : result.candidates) {
        const CrossValidationResult& cv = candidate.cross_validation;
        std::vector<std::string> row{std::to_string(candidate.rank)};
        for (const std::string& name : result.param_names) {
            row.push_back(candidate.params.contains(name) ? format_value(candidate.params.at(name))
                                                          : "");
        }
        row.insert(row.end(), {format_number(cv.mean_loss), format_number(cv.std_loss)});
        if (classification) {
            row.insert(row.end(),
                       {format_number(cv.mean_accuracy), format_number(cv.std_accuracy)});
        }
        row.push_back(format_number(cv.mean_best_epoch));
        for (const FoldResult& fold : cv.folds) {
            row.push_back(format_number(fold.validation.loss));
            if (classification) {
                row.push_back(format_number(fold.validation.accuracy));
            }
        }
        append_row(csv, row);
    }
    return csv;
}

void write_csv(const SearchResult& result, const std::filesystem::path& path) {
    const std::string csv = to_csv(result);
    io::write_file_atomically(path, [&csv](std::ostream& out) { out << csv; });
}

}  // namespace xgrad::select

#include "xgrad/select/split.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <string>

#include "xgrad/error.hpp"
#include "xgrad/random.hpp"

namespace xgrad::select {

namespace {

void check_k(const char* splitter, std::size_t k) {
    if (k < 2) {
        throw value_error(std::string(splitter) + ": k must be at least 2, got " +
                          std::to_string(k));
    }
}

void check_k_fits(const char* splitter, std::size_t k, std::size_t n) {
    if (k > n) {
        throw value_error(std::string(splitter) + ": k = " + std::to_string(k) +
                          " is larger than the number of examples (" + std::to_string(n) +
                          "); every fold needs at least one validation example");
    }
}

std::vector<std::int64_t> positions(std::size_t n, bool shuffle, std::uint64_t seed) {
    if (shuffle) {
        Generator generator(seed);
        return data::permutation(n, generator);
    }
    std::vector<std::int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    return order;
}

// Builds the folds from each example's fold number: fold i validates on the
// examples numbered i and trains on the rest, both in ascending order.
std::vector<Fold> folds_from_assignment(const std::vector<std::size_t>& fold_of, std::size_t k) {
    std::vector<Fold> folds(k);
    for (std::size_t position = 0; position < fold_of.size(); ++position) {
        for (std::size_t fold = 0; fold < k; ++fold) {
            auto& part = fold == fold_of[position] ? folds[fold].validation : folds[fold].train;
            part.push_back(static_cast<std::int64_t>(position));
        }
    }
    return folds;
}

std::vector<std::int64_t> labels_of(const Tensor& labels, const char* context) {
    if (!labels.defined() || labels.dtype() != Dtype::int64 || labels.dim() != 1) {
        throw value_error(std::string(context) +
                          ": labels must be an int64 tensor of shape (n), got " +
                          (labels.defined() ? std::string(dtype_name(labels.dtype())) +
                                                  " of shape " + shape_string(labels.shape())
                                            : std::string("an undefined tensor")));
    }
    const auto& values = labels.values<std::int64_t>();
    return std::vector<std::int64_t>(values.begin(), values.end());
}

}  // namespace

// --- KFold -------------------------------------------------------------------

KFold::KFold(KFoldOptions options) : options_(options) {
    check_k("KFold", options_.k);
}

std::vector<Fold> KFold::split(std::size_t n) const {
    check_k_fits("KFold", options_.k, n);
    const std::vector<std::int64_t> order = positions(n, options_.shuffle, options_.seed);

    std::vector<std::size_t> fold_of(n);
    const std::size_t base = n / options_.k;
    const std::size_t extra = n % options_.k;
    std::size_t next = 0;
    for (std::size_t fold = 0; fold < options_.k; ++fold) {
        const std::size_t size = base + (fold < extra ? 1 : 0);
        for (std::size_t i = 0; i < size; ++i) {
            fold_of[static_cast<std::size_t>(order[next++])] = fold;
        }
    }
    return folds_from_assignment(fold_of, options_.k);
}

std::vector<Fold> KFold::split(const data::TensorDataset& dataset) const {
    return split(dataset.size());
}

// --- StratifiedKFold -----------------------------------------------------------

StratifiedKFold::StratifiedKFold(KFoldOptions options) : options_(options) {
    check_k("StratifiedKFold", options_.k);
}

std::vector<Fold> StratifiedKFold::split(const std::vector<std::int64_t>& labels) const {
    const std::size_t k = options_.k;
    const std::size_t n = labels.size();
    check_k_fits("StratifiedKFold", k, n);

    // Members of each class in ascending position order; std::map keeps the
    // classes in ascending label order.
    std::map<std::int64_t, std::vector<std::size_t>> members;
    for (std::size_t position = 0; position < n; ++position) {
        members[labels[position]].push_back(position);
    }
    for (const auto& [label, positions_of_class] : members) {
        if (positions_of_class.size() < k) {
            throw value_error("StratifiedKFold: class " + std::to_string(label) + " has " +
                              std::to_string(positions_of_class.size()) +
                              " members, fewer than k = " + std::to_string(k) +
                              "; lower k or merge the rare classes");
        }
    }

    // Deal the examples, sorted by label, to the folds in turn: the example
    // at sorted position s goes to fold s mod k. A class of c members that
    // starts at sorted position s therefore puts floor(c / k) or one more in
    // each fold, and the fold sizes come out as KFold's.
    Generator generator(options_.seed);
    std::vector<std::size_t> fold_of(n);
    std::size_t sorted_position = 0;
    for (const auto& [label, positions_of_class] : members) {
        std::vector<std::size_t> counts(k, 0);
        for (std::size_t i = 0; i < positions_of_class.size(); ++i) {
            ++counts[(sorted_position + i) % k];
        }
        sorted_position += positions_of_class.size();

        // The class's fold numbers in blocks (0, 0, 1, 1, ...), shuffled so
        // that a random subset of the class lands in each fold.
        std::vector<std::size_t> folds_of_class;
        for (std::size_t fold = 0; fold < k; ++fold) {
            folds_of_class.insert(folds_of_class.end(), counts[fold], fold);
        }
        if (options_.shuffle) {
            const std::vector<std::int64_t> order =
                data::permutation(folds_of_class.size(), generator);
            std::vector<std::size_t> shuffled(folds_of_class.size());
            for (std::size_t i = 0; i < order.size(); ++i) {
                shuffled[i] = folds_of_class[static_cast<std::size_t>(order[i])];
            }
            folds_of_class = std::move(shuffled);
        }
        for (std::size_t i = 0; i < positions_of_class.size(); ++i) {
            fold_of[positions_of_class[i]] = folds_of_class[i];
        }
    }
    return folds_from_assignment(fold_of, k);
}

std::vector<Fold> StratifiedKFold::split(const Tensor& labels) const {
    return split(labels_of(labels, "StratifiedKFold"));
}

std::vector<Fold> StratifiedKFold::split(const data::TensorDataset& dataset) const {
    return split(labels_of(dataset.targets(), "StratifiedKFold"));
}

// --- Holdout -------------------------------------------------------------------

Holdout::Holdout(HoldoutOptions options) : options_(options) {
    const double fraction = options_.validation_fraction;
    if (!(fraction > 0.0 && fraction < 1.0)) {
        throw value_error("Holdout: validation_fraction must be in (0, 1), got " +
                          format_number(fraction));
    }
}

Fold Holdout::split(std::size_t n) const {
    const auto validation_size =
        static_cast<std::size_t>(std::ceil(options_.validation_fraction * static_cast<double>(n)));
    if (validation_size == 0 || validation_size >= n) {
        throw value_error("Holdout: a validation fraction of " +
                          format_number(options_.validation_fraction) + " of " +
                          std::to_string(n) + " examples leaves " +
                          (validation_size == 0 ? "no validation" : "no training") +
                          " examples; use more examples or another fraction");
    }
    const std::vector<std::int64_t> order = positions(n, options_.shuffle, options_.seed);
    const auto cut = static_cast<std::ptrdiff_t>(n - validation_size);
    Fold fold{{order.begin(), order.begin() + cut}, {order.begin() + cut, order.end()}};
    std::sort(fold.train.begin(), fold.train.end());
    std::sort(fold.validation.begin(), fold.validation.end());
    return fold;
}

std::vector<Fold> Holdout::split(const data::TensorDataset& dataset) const {
    return {split(dataset.size())};
}

}  // namespace xgrad::select

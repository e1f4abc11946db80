#pragma once

// Splitters for model selection: k-fold, stratified k-fold and holdout. Each
// returns folds of example positions (indices along a dataset's first axis),
// and cross_validate() and the searches in search.hpp train one model per
// fold.
//
// In every fold the validation positions and the training positions are
// disjoint and together cover 0 .. n - 1. Across the folds of KFold and
// StratifiedKFold, the validation positions are disjoint and cover 0 .. n - 1
// too, so each example is validated exactly once. Both lists of a fold are
// sorted ascending. Shuffling decides which examples share a fold, not the
// order within it (the DataLoader shuffles the training order).
//
// Shuffling draws from xgrad::Generator, so a seed gives the same folds on
// every platform.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "xgrad/data/dataset.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::select {

/// Positions of the training and validation examples of one fold.
struct Fold {
    std::vector<std::int64_t> train;
    std::vector<std::int64_t> validation;
};

/// Base class of the splitters, so cross_validate() takes any of them.
class Splitter {
  public:
    virtual ~Splitter() = default;

    /// The folds for `dataset`. StratifiedKFold reads the labels from its
    /// targets, and the other splitters need only its size.
    virtual std::vector<Fold> split(const data::TensorDataset& dataset) const = 0;

    /// Number of folds that split() returns.
    virtual std::size_t fold_count() const = 0;
};

struct KFoldOptions {
    /// Number of folds, at least 2.
    std::size_t k = 5;

    /// Shuffle the positions before cutting them into folds. Without it, fold
    /// 0 validates on the first examples, fold 1 on the next ones, and so on.
    bool shuffle = true;

    /// Seed of the shuffle.
    std::uint64_t seed = 0;
};

/// K-fold cross-validation, as scikit-learn's KFold: the positions (shuffled
/// or not) are cut into k consecutive blocks, and fold i validates on block
/// i and trains on the others. When n is not a multiple of k, the first
/// n mod k blocks hold floor(n / k) + 1 examples and the others floor(n / k).
class KFold : public Splitter {
  public:
    /// Throws value_error for k < 2.
    explicit KFold(KFoldOptions options = {});

    /// The folds of n examples. Throws value_error when k > n.
    std::vector<Fold> split(std::size_t n) const;
    std::vector<Fold> split(const data::TensorDataset& dataset) const override;

    std::size_t fold_count() const override { return options_.k; }
    const KFoldOptions& options() const { return options_; }

  private:
    KFoldOptions options_;
};

/// K-fold cross-validation that keeps each class's share in every fold, as
/// scikit-learn's StratifiedKFold (since version 0.22):
///
/// - Each class's members are spread over the folds so that their counts
///   per fold differ by at most one.
/// - The folds that get a class's extra members rotate from class to class,
///   so the fold sizes follow the KFold rule: the first n mod k folds hold
///   one example more than the others. The classes take turns in ascending
///   label order, whereas scikit-learn uses the order of first appearance.
///   Without shuffle, the folds equal scikit-learn's when the orders agree.
/// - Without shuffle, a class's members go to the folds in order of
///   position: its first members to fold 0, the next ones to fold 1, and so
///   on. With shuffle, they are assigned in a random order drawn from the
///   seed.
///
/// Labels are int64 values, not necessarily 0 .. classes - 1.
class StratifiedKFold : public Splitter {
  public:
    /// Throws value_error for k < 2.
    explicit StratifiedKFold(KFoldOptions options = {});

    /// The folds for these labels, one per example. Throws value_error naming
    /// the class and its count when a class has fewer than k members, because
    /// a fold's validation set would then miss that class. (scikit-learn only
    /// warns in that case.)
    std::vector<Fold> split(const std::vector<std::int64_t>& labels) const;

    /// Reads the labels from an int64 tensor of shape (n). Throws value_error
    /// for another dtype or rank.
    std::vector<Fold> split(const Tensor& labels) const;

    /// Splits by the dataset's targets, which must be int64 labels of shape (n).
    std::vector<Fold> split(const data::TensorDataset& dataset) const override;

    std::size_t fold_count() const override { return options_.k; }
    const KFoldOptions& options() const { return options_; }

  private:
    KFoldOptions options_;
};

struct HoldoutOptions {
    /// Fraction of the examples to validate on, in (0, 1). The validation
    /// set gets ceil(fraction * n) examples, as in scikit-learn's
    /// train_test_split with a fractional test_size.
    double validation_fraction = 0.2;

    /// Shuffle before splitting. Without it, the last examples are validated on.
    bool shuffle = true;

    /// Seed of the shuffle.
    std::uint64_t seed = 0;
};

/// A single training/validation split, for data too large to train k times.
/// split() returns one fold.
class Holdout : public Splitter {
  public:
    /// Throws value_error for a validation_fraction outside (0, 1).
    explicit Holdout(HoldoutOptions options = {});

    /// The split of n examples. Throws value_error when either part would be
    /// empty.
    Fold split(std::size_t n) const;
    std::vector<Fold> split(const data::TensorDataset& dataset) const override;

    std::size_t fold_count() const override { return 1; }
    const HoldoutOptions& options() const { return options_; }

  private:
    HoldoutOptions options_;
};

}  // namespace xgrad::select

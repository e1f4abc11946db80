#include <algorithm>
#include <map>
#include <set>

#include "testing.hpp"
#include "xgrad/select.hpp"

using namespace xgrad;
using Positions = std::vector<std::int64_t>;

namespace {

// Checks that every fold's two parts are disjoint, sorted and cover
// 0 .. n - 1, and, with `across`, that the validation parts of all folds
// partition 0 .. n - 1.
void check_partition(const std::vector<select::Fold>& folds, std::size_t n, bool across = true) {
    std::vector<int> validated(n, 0);
    for (const select::Fold& fold : folds) {
        CHECK(std::is_sorted(fold.train.begin(), fold.train.end()));
        CHECK(std::is_sorted(fold.validation.begin(), fold.validation.end()));
        std::set<std::int64_t> seen(fold.train.begin(), fold.train.end());
        for (std::int64_t position : fold.validation) {
            CHECK(seen.insert(position).second);
            ++validated.at(static_cast<std::size_t>(position));
        }
        CHECK(seen.size() == n);
        CHECK(fold.train.size() + fold.validation.size() == n);
    }
    if (across) {
        for (std::size_t i = 0; i < n; ++i) {
            INFO("example " << i);
            CHECK(validated[i] == 1);
        }
    }
}

std::vector<std::size_t> validation_sizes(const std::vector<select::Fold>& folds) {
    std::vector<std::size_t> sizes;
    for (const select::Fold& fold : folds) {
        sizes.push_back(fold.validation.size());
    }
    return sizes;
}

// 20 labels: ten of class 0, six of class 1 and four of class 2, interleaved.
std::vector<std::int64_t> unbalanced_labels() {
    return {0, 1, 0, 2, 0, 1, 0, 0, 2, 1, 0, 0, 1, 2, 0, 1, 0, 1, 2, 0};
}

// Number of members of each class in each fold's validation part.
std::vector<std::map<std::int64_t, std::size_t>> class_counts(
    const std::vector<select::Fold>& folds, const std::vector<std::int64_t>& labels) {
    std::vector<std::map<std::int64_t, std::size_t>> counts;
    for (const select::Fold& fold : folds) {
        auto& fold_counts = counts.emplace_back();
        for (std::int64_t position : fold.validation) {
            ++fold_counts[labels[static_cast<std::size_t>(position)]];
        }
    }
    return counts;
}

}  // namespace

TEST_SUITE("split") {
    TEST_CASE("kfold partitions the examples") {
        for (const bool shuffle : {false, true}) {
            for (const std::size_t n : {6, 10, 11, 23}) {
                INFO("n = " << n << ", shuffle = " << shuffle);
                const select::KFold kfold({.k = 3, .shuffle = shuffle, .seed = 4});
                check_partition(kfold.split(n), n);
            }
        }
    }

    TEST_CASE("kfold puts the remainder in the first folds") {
        // 11 = 3 * 4 - 1: folds of 4, 4 and 3, as scikit-learn's KFold.
        CHECK(validation_sizes(select::KFold({.k = 3}).split(11)) ==
              std::vector<std::size_t>{4, 4, 3});
        CHECK(validation_sizes(select::KFold({.k = 4}).split(10)) ==
              std::vector<std::size_t>{3, 3, 2, 2});
        CHECK(validation_sizes(select::KFold({.k = 5}).split(10)) ==
              std::vector<std::size_t>{2, 2, 2, 2, 2});
        CHECK(validation_sizes(select::KFold({.k = 5}).split(5)) ==
              std::vector<std::size_t>{1, 1, 1, 1, 1});
    }

    TEST_CASE("kfold without shuffle keeps the order") {
        const auto folds = select::KFold({.k = 3, .shuffle = false}).split(10);
        CHECK(folds[0].validation == Positions{0, 1, 2, 3});
        CHECK(folds[1].validation == Positions{4, 5, 6});
        CHECK(folds[2].validation == Positions{7, 8, 9});
        CHECK(folds[1].train == Positions{0, 1, 2, 3, 7, 8, 9});
    }

    TEST_CASE("kfold shuffles by seed") {
        const auto first = select::KFold({.k = 4, .seed = 7}).split(40);
        const auto again = select::KFold({.k = 4, .seed = 7}).split(40);
        const auto other = select::KFold({.k = 4, .seed = 8}).split(40);
        const auto ordered = select::KFold({.k = 4, .shuffle = false}).split(40);
        for (std::size_t i = 0; i < first.size(); ++i) {
            CHECK(first[i].validation == again[i].validation);
            CHECK(first[i].train == again[i].train);
        }
        CHECK(first[0].validation != other[0].validation);
        CHECK(first[0].validation != ordered[0].validation);
    }

    TEST_CASE("kfold rejects bad k") {
        CHECK_THROWS_WITH_AS(select::KFold({.k = 1}),
                             doctest::Contains("KFold: k must be at least 2, got 1"), value_error);
        CHECK_THROWS_WITH_AS(
            select::KFold({.k = 5}).split(3),
            doctest::Contains("KFold: k = 5 is larger than the number of examples (3)"),
            value_error);
    }

    TEST_CASE("kfold splits a dataset by size") {
        const data::TensorDataset dataset(zeros({7, 2}), zeros({7}));
        const select::KFold kfold({.k = 2, .seed = 3});
        const select::Splitter& splitter = kfold;
        const auto folds = splitter.split(dataset);
        CHECK(splitter.fold_count() == 2);
        REQUIRE(folds.size() == 2);
        CHECK(folds[0].validation == kfold.split(7)[0].validation);
        check_partition(folds, 7);
    }

    TEST_CASE("stratified kfold keeps class shares") {
        const std::vector<std::int64_t> labels = unbalanced_labels();
        for (const bool shuffle : {false, true}) {
            INFO("shuffle = " << shuffle);
            const auto folds =
                select::StratifiedKFold({.k = 3, .shuffle = shuffle, .seed = 2}).split(labels);
            check_partition(folds, labels.size());
            // Fold sizes follow KFold's rule for 20 = 3 * 7 - 1.
            CHECK(validation_sizes(folds) == std::vector<std::size_t>{7, 7, 6});
            // Class 0 (10 members): 4, 3, 3; class 1 (6): 2 each; class 2 (4):
            // one fold gets 2. Dealing the sorted labels round-robin gives
            // the folds below.
            const auto counts = class_counts(folds, labels);
            CHECK(counts[0] == std::map<std::int64_t, std::size_t>{{0, 4}, {1, 2}, {2, 1}});
            CHECK(counts[1] == std::map<std::int64_t, std::size_t>{{0, 3}, {1, 2}, {2, 2}});
            CHECK(counts[2] == std::map<std::int64_t, std::size_t>{{0, 3}, {1, 2}, {2, 1}});
        }
    }

    TEST_CASE("stratified kfold without shuffle deals classes in order") {
        // Without shuffle each class fills fold 0 first, then fold 1, ...:
        // class 0 sits at 0, 2, 4, 6, 7, 10, 11, 14, 16, 19, so fold 0 gets
        // its first four members.
        const std::vector<std::int64_t> labels = unbalanced_labels();
        const auto folds = select::StratifiedKFold({.k = 3, .shuffle = false}).split(labels);
        CHECK(folds[0].validation == Positions{0, 1, 2, 3, 4, 5, 6});
        CHECK(folds[1].validation == Positions{7, 8, 9, 10, 11, 12, 13});
        CHECK(folds[2].validation == Positions{14, 15, 16, 17, 18, 19});
    }

    TEST_CASE("stratified kfold shuffles by seed") {
        std::vector<std::int64_t> labels;
        for (std::int64_t i = 0; i < 60; ++i) {
            labels.push_back(i % 3);
        }
        const auto first = select::StratifiedKFold({.k = 5, .seed = 11}).split(labels);
        const auto again = select::StratifiedKFold({.k = 5, .seed = 11}).split(labels);
        const auto other = select::StratifiedKFold({.k = 5, .seed = 12}).split(labels);
        for (std::size_t i = 0; i < first.size(); ++i) {
            CHECK(first[i].validation == again[i].validation);
        }
        CHECK(first[0].validation != other[0].validation);
        for (const auto& fold_counts : class_counts(first, labels)) {
            CHECK(fold_counts == std::map<std::int64_t, std::size_t>{{0, 4}, {1, 4}, {2, 4}});
        }
    }

    TEST_CASE("stratified kfold accepts any int64 labels") {
        const std::vector<std::int64_t> labels = {100, -5, 100, -5, 100, -5, 7, 7};
        const auto folds = select::StratifiedKFold({.k = 2, .seed = 1}).split(labels);
        check_partition(folds, labels.size());
        for (const auto& fold_counts : class_counts(folds, labels)) {
            CHECK(fold_counts.at(-5) >= 1);
            CHECK(fold_counts.at(7) == 1);
            CHECK(fold_counts.at(100) >= 1);
        }
    }

    TEST_CASE("stratified kfold reads tensor labels") {
        const Tensor labels(xt::xarray<std::int64_t>{0, 1, 0, 1, 0, 1});
        const select::StratifiedKFold stratified({.k = 3, .shuffle = false});
        const data::TensorDataset dataset(zeros({6, 1}), labels);
        CHECK(stratified.split(labels)[1].validation == Positions{2, 3});
        CHECK(stratified.split(dataset)[2].validation == Positions{4, 5});
    }

    TEST_CASE("stratified kfold rejects rare classes and bad labels") {
        const std::vector<std::int64_t> labels = {0, 0, 0, 7, 7, 0, 0};
        CHECK_THROWS_WITH_AS(
            select::StratifiedKFold({.k = 3}).split(labels),
            doctest::Contains("StratifiedKFold: class 7 has 2 members, fewer than k = 3"),
            value_error);
        CHECK_THROWS_WITH_AS(select::StratifiedKFold({.k = 1}),
                             doctest::Contains("StratifiedKFold: k must be at least 2"),
                             value_error);
        CHECK_THROWS_WITH_AS(select::StratifiedKFold({.k = 9}).split(labels),
                             doctest::Contains("StratifiedKFold: k = 9 is larger"), value_error);
        const data::TensorDataset regression(zeros({6, 1}), zeros({6}));
        CHECK_THROWS_WITH_AS(select::StratifiedKFold({.k = 2}).split(regression),
                             doctest::Contains("StratifiedKFold: labels must be an int64 tensor of "
                                               "shape (n), got float32 of shape (6)"),
                             value_error);
    }

    TEST_CASE("holdout splits once") {
        const select::Holdout ordered({.validation_fraction = 0.25, .shuffle = false});
        const select::Fold fold = ordered.split(10);
        // ceil(0.25 * 10) = 3 validation examples, the last ones.
        CHECK(fold.validation == Positions{7, 8, 9});
        CHECK(fold.train == Positions{0, 1, 2, 3, 4, 5, 6});
        check_partition({fold}, 10, false);

        const select::Holdout shuffled({.validation_fraction = 0.25, .seed = 3});
        const select::Fold first = shuffled.split(40);
        CHECK(first.validation.size() == 10);
        CHECK(first.validation == shuffled.split(40).validation);
        CHECK(first.validation !=
              select::Holdout({.validation_fraction = 0.25, .seed = 4}).split(40).validation);
        check_partition({first}, 40, false);

        const data::TensorDataset dataset(zeros({40, 1}), zeros({40}));
        CHECK(shuffled.split(dataset).size() == 1);
        CHECK(shuffled.fold_count() == 1);
    }

    TEST_CASE("holdout rejects bad fractions") {
        CHECK_THROWS_WITH_AS(select::Holdout({.validation_fraction = 1.0}),
                             doctest::Contains("Holdout: validation_fraction must be in (0, 1)"),
                             value_error);
        CHECK_THROWS_AS(select::Holdout({.validation_fraction = 0.0}), value_error);
        CHECK_THROWS_WITH_AS(select::Holdout({.validation_fraction = 0.5}).split(1),
                             doctest::Contains("leaves no training examples"), value_error);
    }
}

#pragma once

// In-memory datasets and a batching loader.

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "xgrad/data/augment.hpp"
#include "xgrad/random.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::data {

/// A batch of examples: inputs stacked along the first axis, and their targets.
struct Batch {
    Tensor inputs;
    Tensor targets;
};

/// Examples held as two tensors whose first axis indexes the example:
/// inputs of shape (n, ...) and targets of shape (n, ...).
class TensorDataset {
public:
    TensorDataset() = default;
    TensorDataset(Tensor inputs, Tensor targets);

    std::size_t size() const { return size_; }
    const Tensor& inputs() const { return inputs_; }
    const Tensor& targets() const { return targets_; }

    /// The examples at the given positions (an int64 tensor of shape (k)), in
    /// that order. Throws value_error for a position out of range.
    Batch get(const Tensor& positions) const;

    /// The examples at the given positions, as a new dataset.
    TensorDataset subset(const std::vector<std::int64_t>& positions) const;

    /// The first n examples.
    TensorDataset head(std::size_t n) const;

    /// A copy whose inputs are (x - mean) / stddev.
    TensorDataset normalized(double mean, double stddev) const;

private:
    Tensor inputs_;
    Tensor targets_;
    std::size_t size_ = 0;
};

/// Splits a dataset into a part of `first_size` examples and the rest,
/// after shuffling with `seed`. The same seed always gives the same split.
std::pair<TensorDataset, TensorDataset> random_split(const TensorDataset& dataset,
                                                     std::size_t first_size, std::uint64_t seed);

/// A random permutation of 0 .. n - 1 (Fisher-Yates), drawn from `generator`.
std::vector<std::int64_t> permutation(std::size_t n, Generator& generator);

struct DataLoaderOptions {
    std::size_t batch_size = 64;
    bool shuffle = true;     ///< reshuffle at the start of every epoch
    bool drop_last = false;  ///< skip a last batch smaller than batch_size
    std::uint64_t seed = 0;  ///< seed of the shuffling generator
    /// Runs on the inputs of every batch as the loader produces it, drawing
    /// from the loader's augment_generator(). Targets and the stored dataset
    /// stay unchanged. Empty (the default): no augmentation. Set it on the
    /// training loader only.
    Augmentation augment = {};
};

/// Cuts a dataset into batches, one epoch per pass:
///
///     data::DataLoader loader(train, {.batch_size = 128, .seed = 1});
///     for (int epoch = 0; epoch < 5; ++epoch) {
///         for (const data::Batch& batch : loader) { ... }
///     }
///
/// Each begin() starts a new epoch and, with shuffle, draws a new order from
/// the loader's generator, so the sequence of epochs is fixed by the seed.
/// With options.augment, the augmentation draws from a second generator,
/// also seeded from options.seed, so turning augmentation on leaves the
/// order of the examples unchanged.
class DataLoader {
public:
    DataLoader(TensorDataset dataset, DataLoaderOptions options);

    /// Number of batches in one epoch.
    std::size_t size() const;
    const TensorDataset& dataset() const { return dataset_; }
    const DataLoaderOptions& options() const { return options_; }

    /// The shuffling generator; saving and restoring its state resumes the
    /// sequence of epochs exactly.
    Generator& generator() { return generator_; }

    /// The generator that options().augment draws from. Save and restore it
    /// together with generator() to resume augmented epochs exactly.
    Generator& augment_generator() { return augment_generator_; }

    class Iterator {
    public:
        using value_type = Batch;
        using difference_type = std::ptrdiff_t;

        const Batch& operator*() const { return batch_; }
        const Batch* operator->() const { return &batch_; }
        Iterator& operator++();
        bool operator==(const Iterator& other) const { return batch_index_ == other.batch_index_; }

    private:
        friend class DataLoader;
        Iterator(DataLoader* loader, std::size_t batch_index);
        void load();
        void augment();

        DataLoader* loader_ = nullptr;
        std::size_t batch_index_ = 0;
        Batch batch_;
    };

    Iterator begin();
    Iterator end() const;

private:
    TensorDataset dataset_;
    DataLoaderOptions options_;
    Generator generator_;
    Generator augment_generator_;
    std::vector<std::int64_t> order_;
};

}  // namespace xgrad::data

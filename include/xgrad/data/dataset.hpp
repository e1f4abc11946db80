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

/// Returns shard `shard_index` of `shard_count` of an epoch's order, for
/// data-parallel training: the entries at positions shard_index,
/// shard_index + shard_count, shard_index + 2 * shard_count, ... of `order`.
/// The shards are equally long. When n = order.size() is not a multiple of
/// shard_count, `drop_remainder` false first pads the order to the next
/// multiple with its own first entries (repeated if n is smaller than the
/// padding), so every shard has ceil(n / shard_count) entries. With
/// `drop_remainder` true, the last n mod shard_count entries are dropped and
/// every shard has floor(n / shard_count). Without padding, the shards are
/// disjoint and together cover the order. PyTorch's DistributedSampler
/// follows the same rule. Throws value_error when shard_count is zero or
/// shard_index is not below it.
std::vector<std::int64_t> shard_order(const std::vector<std::int64_t>& order,
                                      std::size_t shard_count, std::size_t shard_index,
                                      bool drop_remainder = false);

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
    /// Data-parallel sharding (see shard_order()): the loader yields only
    /// shard `shard_index` of `shard_count` of every epoch's order, and every
    /// shard draws that order alike from `seed`. Take shard_count N,
    /// batch_size B and a dataset size that is a multiple of N. Then batch j
    /// of the N shards together contains the examples of batch j of an
    /// unsharded loader with batch size N * B and the same seed.
    std::size_t shard_count = 1;
    std::size_t shard_index = 0;
    /// Remainder rule of shard_order() for a dataset size that is not a
    /// multiple of shard_count. False pads every epoch's order by repeating
    /// its first examples, and true drops its last examples.
    bool shard_drop_remainder = false;
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
/// order of the examples unchanged. With options.shard_count above 1, each
/// epoch yields one shard of that order (see DataLoaderOptions), and every
/// shard has the same number of batches.
class DataLoader {
public:
    DataLoader(TensorDataset dataset, DataLoaderOptions options);

    /// Number of batches in one epoch (of this loader's shard).
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
    std::vector<std::int64_t> shard(const std::vector<std::int64_t>& order) const;

    TensorDataset dataset_;
    DataLoaderOptions options_;
    Generator generator_;
    Generator augment_generator_;
    std::vector<std::int64_t> order_;
};

}  // namespace xgrad::data

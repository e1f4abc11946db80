#include "xgrad/data/dataset.hpp"

#include <numeric>
#include <string>

#include "xgrad/autograd.hpp"
#include "xgrad/ops/binary.hpp"
#include "xgrad/ops/index.hpp"

namespace xgrad::data {

namespace {

// Added to DataLoaderOptions::seed to seed the augmentation generator, so
// that its draws are unrelated to the shuffling generator's (Generator
// scrambles every seed through splitmix64). The value is about 2^64 / phi.
constexpr std::uint64_t kAugmentSeedOffset = 0x9E3779B97F4A7C15ULL;

Tensor positions_tensor(const std::int64_t* first, std::size_t count) {
    xt::xarray<std::int64_t> positions(Shape{count});
    std::copy_n(first, count, positions.data());
    return Tensor(std::move(positions));
}

}  // namespace

TensorDataset::TensorDataset(Tensor inputs, Tensor targets)
    : inputs_(std::move(inputs)), targets_(std::move(targets)) {
    if (!inputs_.defined() || !targets_.defined() || inputs_.dim() == 0 || targets_.dim() == 0) {
        throw value_error("TensorDataset: inputs and targets must be defined tensors with at "
                          "least one dimension");
    }
    if (inputs_.shape()[0] != targets_.shape()[0]) {
        throw shape_error("TensorDataset: inputs have shape " + shape_string(inputs_.shape()) +
                          " but targets have shape " + shape_string(targets_.shape()) +
                          "; both need one entry per example along the first axis");
    }
    size_ = inputs_.shape()[0];
}

Batch TensorDataset::get(const Tensor& positions) const {
    NoGradGuard no_grad;
    return {index_select(inputs_, 0, positions), index_select(targets_, 0, positions)};
}

TensorDataset TensorDataset::subset(const std::vector<std::int64_t>& positions) const {
    const Batch batch = get(positions_tensor(positions.data(), positions.size()));
    return TensorDataset(batch.inputs, batch.targets);
}

TensorDataset TensorDataset::head(std::size_t n) const {
    std::vector<std::int64_t> positions(std::min(n, size_));
    std::iota(positions.begin(), positions.end(), 0);
    return subset(positions);
}

TensorDataset TensorDataset::normalized(double mean, double stddev) const {
    if (!(stddev > 0.0)) {
        throw value_error("TensorDataset::normalized: stddev must be positive, got " +
                          std::to_string(stddev));
    }
    NoGradGuard no_grad;
    return TensorDataset((inputs_ - mean) / stddev, targets_);
}

std::vector<std::int64_t> permutation(std::size_t n, Generator& generator) {
    std::vector<std::int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = n; i > 1; --i) {
        const std::size_t j = generator.below(i);
        std::swap(order[i - 1], order[j]);
    }
    return order;
}

std::vector<std::int64_t> shard_order(const std::vector<std::int64_t>& order,
                                      std::size_t shard_count, std::size_t shard_index,
                                      bool drop_remainder) {
    if (shard_count == 0) {
        throw value_error("shard_order: shard_count must be positive");
    }
    if (shard_index >= shard_count) {
        throw value_error("shard_order: shard_index must be below shard_count, got shard_index " +
                          std::to_string(shard_index) + " with shard_count " +
                          std::to_string(shard_count));
    }
    const std::size_t n = order.size();
    const std::size_t shard_size = drop_remainder ? n / shard_count
                                                  : (n + shard_count - 1) / shard_count;
    std::vector<std::int64_t> shard(n == 0 ? 0 : shard_size);
    for (std::size_t i = 0; i < shard.size(); ++i) {
        // Past the end of the order, padding wraps around to its start.
        shard[i] = order[(shard_index + i * shard_count) % n];
    }
    return shard;
}

std::pair<TensorDataset, TensorDataset> random_split(const TensorDataset& dataset,
                                                     std::size_t first_size, std::uint64_t seed) {
    if (first_size > dataset.size()) {
        throw value_error("random_split: the first part (" + std::to_string(first_size) +
                          " examples) is larger than the dataset (" +
                          std::to_string(dataset.size()) + ")");
    }
    Generator generator(seed);
    const std::vector<std::int64_t> order = permutation(dataset.size(), generator);
    const std::vector<std::int64_t> first(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(first_size));
    const std::vector<std::int64_t> rest(order.begin() + static_cast<std::ptrdiff_t>(first_size), order.end());
    return {dataset.subset(first), dataset.subset(rest)};
}

DataLoader::DataLoader(TensorDataset dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)),
      options_(std::move(options)),
      generator_(options_.seed),
      augment_generator_(options_.seed + kAugmentSeedOffset) {
    if (options_.batch_size == 0) {
        throw value_error("DataLoader: batch_size must be positive");
    }
    if (options_.shard_count == 0 || options_.shard_index >= options_.shard_count) {
        throw value_error("DataLoader: shard_index must be below shard_count, got shard_index " +
                          std::to_string(options_.shard_index) + " with shard_count " +
                          std::to_string(options_.shard_count));
    }
    std::vector<std::int64_t> order(dataset_.size());
    std::iota(order.begin(), order.end(), 0);
    order_ = shard(order);
}

std::vector<std::int64_t> DataLoader::shard(const std::vector<std::int64_t>& order) const {
    if (options_.shard_count == 1) {
        return order;
    }
    return shard_order(order, options_.shard_count, options_.shard_index,
                       options_.shard_drop_remainder);
}

std::size_t DataLoader::size() const {
    const std::size_t n = order_.size();
    const std::size_t full = n / options_.batch_size;
    return options_.drop_last || n % options_.batch_size == 0 ? full : full + 1;
}

DataLoader::Iterator DataLoader::begin() {
    if (options_.shuffle) {
        order_ = shard(permutation(dataset_.size(), generator_));
    }
    return Iterator(this, 0);
}

DataLoader::Iterator DataLoader::end() const { return Iterator(nullptr, size()); }

DataLoader::Iterator::Iterator(DataLoader* loader, std::size_t batch_index)
    : loader_(loader), batch_index_(batch_index) {
    if (loader_ != nullptr && batch_index_ < loader_->size()) {
        load();
    }
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
    ++batch_index_;
    if (batch_index_ < loader_->size()) {
        load();
    }
    return *this;
}

void DataLoader::Iterator::load() {
    const std::size_t batch_size = loader_->options_.batch_size;
    const std::size_t first = batch_index_ * batch_size;
    const std::size_t count = std::min(batch_size, loader_->order_.size() - first);
    batch_ = loader_->dataset_.get(positions_tensor(loader_->order_.data() + first, count));
    if (loader_->options_.augment) {
        augment();
    }
}

void DataLoader::Iterator::augment() {
    const Shape before = batch_.inputs.shape();
    Tensor augmented = loader_->options_.augment(batch_.inputs, loader_->augment_generator_);
    if (!augmented.defined() || augmented.dim() == 0 || augmented.shape()[0] != before[0]) {
        throw value_error("DataLoader: the augmentation turned a batch of shape " +
                          shape_string(before) + " into " +
                          (augmented.defined() ? "shape " + shape_string(augmented.shape())
                                               : std::string("an undefined tensor")) +
                          "; it must keep one entry per example along the first axis");
    }
    batch_.inputs = std::move(augmented);
}

}  // namespace xgrad::data

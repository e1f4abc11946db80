// Time per epoch of data augmentation on Fashion-MNIST-sized data: 60,000
// float32 images of shape (1, 28, 28), in batches of 128 (469 batches, the
// last one of 96). Uniform random pixels stand in for the real images, which
// cost the same.
//
// Each round times, one after the other:
//   - each augmentation alone, called on every batch of the epoch (the
//     batches are cut beforehand, so only the augmentation is timed);
//   - a DataLoader epoch with shuffling and no augmentation, and the same
//     with RandomCrop{.padding = 2} then RandomHorizontalFlip{}.
// It prints the median, minimum and maximum seconds per epoch over the rounds.
//
//   build/tests/bench/bench_augment [rounds]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "xgrad/xgrad.hpp"

namespace {

constexpr std::size_t kImages = 60000;
constexpr std::size_t kBatchSize = 128;
constexpr std::uint64_t kSeed = 3;

using Clock = std::chrono::steady_clock;

double seconds_of(const std::function<void()>& run) {
    const auto start = Clock::now();
    run();
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Row {
    std::string name;
    std::function<void()> run;
    std::vector<double> seconds;
};

}  // namespace

int main(int argc, char** argv) {
    using namespace xgrad;
    const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;

    Generator generator(kSeed);
    const Tensor images = uniform({kImages, 1, 28, 28}, 0.0, 1.0, generator);
    const Tensor labels = zeros({kImages}, Dtype::int64);
    const data::TensorDataset dataset(images, labels);

    std::vector<Tensor> batches;
    for (std::size_t first = 0; first < kImages; first += kBatchSize) {
        const auto stop = static_cast<std::int64_t>(std::min(first + kBatchSize, kImages));
        batches.push_back(slice(images, 0, static_cast<std::int64_t>(first), stop));
    }

    auto over_batches = [&](data::Augmentation augment) {
        return [&batches, augment, augment_generator = Generator(kSeed)]() mutable {
            for (const Tensor& batch : batches) {
                const Tensor result = augment(batch, augment_generator);
                (void)result;
            }
        };
    };
    auto loader_epoch = [&](data::Augmentation augment) {
        auto loader = std::make_shared<data::DataLoader>(
            dataset,
            data::DataLoaderOptions{.batch_size = kBatchSize, .seed = kSeed, .augment = augment});
        return [loader]() {
            for (const data::Batch& batch : *loader) {
                (void)batch;
            }
        };
    };
    const data::Augmentation crop_and_flip =
        data::compose({data::RandomCrop{.padding = 2}, data::RandomHorizontalFlip{}});

    std::vector<Row> rows;
    rows.push_back(
        {"RandomCrop{.padding = 2} alone", over_batches(data::RandomCrop{.padding = 2}), {}});
    rows.push_back(
        {"RandomHorizontalFlip{} alone", over_batches(data::RandomHorizontalFlip{}), {}});
    rows.push_back(
        {"RandomShift{.max_shift = 2} alone", over_batches(data::RandomShift{.max_shift = 2}), {}});
    rows.push_back({"crop then flip alone", over_batches(crop_and_flip), {}});
    rows.push_back({"DataLoader epoch, no augmentation", loader_epoch(nullptr), {}});
    rows.push_back({"DataLoader epoch, crop then flip", loader_epoch(crop_and_flip), {}});

    for (int round = 0; round < rounds; ++round) {
        for (Row& row : rows) {
            row.seconds.push_back(seconds_of(row.run));
        }
    }

    std::printf("%zu images of (1, 28, 28), batches of %zu, %d rounds; seconds per epoch\n",
                kImages, kBatchSize, rounds);
    std::printf("%-40s %10s %10s %10s\n", "workload", "median", "min", "max");
    for (Row& row : rows) {
        std::sort(row.seconds.begin(), row.seconds.end());
        std::printf("%-40s %10.4f %10.4f %10.4f\n", row.name.c_str(),
                    row.seconds[row.seconds.size() / 2], row.seconds.front(), row.seconds.back());
    }
    return 0;
}

// Data-parallel training against one process: N ranks with batches of B
// must follow one process with batches of N * B over the same data order.

#include <filesystem>
#include <limits>
#include <string>

#include "distributed_testing.hpp"

using namespace xgrad;
using xgrad::testing::max_parameter_difference;
using xgrad::testing::small_dataset;
using xgrad::testing::small_mlp;
using xgrad::testing::world_context;

namespace {

// 48 examples split evenly for every rank count from 1 to 4, and for the
// global batch of 8 used by the checkpoint test.
constexpr std::size_t kExamples = 48;
constexpr std::size_t kBatchPerRank = 4;
constexpr std::uint64_t kLoaderSeed = 7;
constexpr std::uint64_t kInitSeed = 100;

using MakeOptimizer = std::unique_ptr<optim::Optimizer> (*)(const nn::Module&);

std::unique_ptr<optim::Optimizer> make_sgd(const nn::Module& model) {
    return std::make_unique<optim::SGD>(model.parameters(),
                                        optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
}

std::unique_ptr<optim::Optimizer> make_plain_sgd(const nn::Module& model) {
    return std::make_unique<optim::SGD>(model.parameters(), optim::SGDOptions{.lr = 0.2});
}

std::unique_ptr<optim::Optimizer> make_adam(const nn::Module& model) {
    return std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions{.lr = 0.01});
}

// One process, batches of `batch_size`, the plain training loop.
std::shared_ptr<nn::Sequential> train_alone(std::size_t batch_size, std::size_t epochs,
                                            MakeOptimizer make_optimizer) {
    auto model = small_mlp(kInitSeed);
    auto optimizer = make_optimizer(*model);
    data::DataLoader loader(small_dataset(kExamples), {.batch_size = batch_size, .seed = kLoaderSeed});
    for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
        for (const data::Batch& batch : loader) {
            optimizer->zero_grad();
            cross_entropy((*model)(batch.inputs), batch.targets).backward();
            optimizer->step();
        }
    }
    return model;
}

// The same loop, data-parallel: the lines marked "+" are the difference.
std::shared_ptr<nn::Sequential> train_distributed(const distributed::Context& context,
                                                  std::size_t epochs, MakeOptimizer make_optimizer) {
    auto model = small_mlp(kInitSeed + context.rank());                            // differs per rank
    distributed::broadcast_parameters(context, *model);                              // +
    auto optimizer = make_optimizer(*model);
    distributed::GradientAverager averager(context, *model);                         // +
    data::DataLoader loader(small_dataset(kExamples),
                            {.batch_size = kBatchPerRank, .seed = kLoaderSeed,
                             .shard_count = context.size(), .shard_index = context.rank()});  // +
    for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
        for (const data::Batch& batch : loader) {
            optimizer->zero_grad();
            cross_entropy((*model)(batch.inputs), batch.targets).backward();
            averager.average();                                                      // +
            optimizer->step();
        }
    }
    return model;
}

}  // namespace

TEST_SUITE("data-parallel training") {
    TEST_CASE("N ranks with batch B follow one process with batch N*B") {
        const auto& context = world_context();
        const std::size_t global_batch = context.size() * kBatchPerRank;
        for (MakeOptimizer make_optimizer : {make_sgd, make_adam}) {
            const auto distributed_model = train_distributed(context, 3, make_optimizer);
            const auto alone = train_alone(global_batch, 3, make_optimizer);
            CHECK(max_parameter_difference(*distributed_model, *alone) < 1e-12);
            // The training moved the parameters well beyond that tolerance.
            CHECK(max_parameter_difference(*alone, *small_mlp(kInitSeed)) > 0.05);
            if (context.size() > 1) {
                // Batches of B alone take other steps: the averaging matters.
                const auto small_batches = train_alone(kBatchPerRank, 3, make_optimizer);
                CHECK(max_parameter_difference(*distributed_model, *small_batches) > 1e-3);
            }
        }
    }

    TEST_CASE("unequal local batches with example weights") {
        // A batch of 7 examples, split into N contiguous parts of unequal
        // sizes: weighting each rank's mean gradient by its example count
        // gives the gradient of the mean loss over all 7.
        const auto& context = world_context();
        const data::TensorDataset dataset = small_dataset(7);
        const std::size_t n = context.size();
        const std::size_t first = 7 * context.rank() / n;
        const std::size_t last = 7 * (context.rank() + 1) / n;
        std::vector<std::int64_t> positions;
        for (std::size_t i = first; i < last; ++i) {
            positions.push_back(static_cast<std::int64_t>(i));
        }
        const data::TensorDataset part = dataset.subset(positions);

        auto model = small_mlp(kInitSeed);
        cross_entropy((*model)(part.inputs()), part.targets()).backward();
        distributed::GradientAverager averager(context, *model);
        averager.average(static_cast<double>(part.size()));

        auto whole = small_mlp(kInitSeed);
        cross_entropy((*whole)(dataset.inputs()), dataset.targets()).backward();
        const auto got = model->parameters();
        const auto expected = whole->parameters();
        for (std::size_t i = 0; i < got.size(); ++i) {
            CHECK(testing::all_close(got[i].grad().values<double>(),
                                     expected[i].grad().values<double>(), 1e-14));
        }
    }

    TEST_CASE("federated averaging with one local step is plain SGD") {
        const auto& context = world_context();
        auto model = small_mlp(kInitSeed + context.rank());
        distributed::broadcast_parameters(context, *model);
        optim::SGD optimizer(model->parameters(), {.lr = 0.2});
        distributed::FederatedAveraging fedavg(context, *model, {.local_steps = 1});
        data::DataLoader loader(small_dataset(kExamples),
                                {.batch_size = kBatchPerRank, .seed = kLoaderSeed,
                                 .shard_count = context.size(), .shard_index = context.rank()});
        for (std::size_t epoch = 0; epoch < 2; ++epoch) {
            for (const data::Batch& batch : loader) {
                optimizer.zero_grad();
                cross_entropy((*model)(batch.inputs), batch.targets).backward();
                optimizer.step();
                CHECK(fedavg.step(static_cast<double>(batch.targets.shape()[0])));
            }
        }
        CHECK(fedavg.rounds() == 2 * loader.size());
        CHECK_FALSE(fedavg.synchronize());
        const auto alone = train_alone(context.size() * kBatchPerRank, 2, make_plain_sgd);
        CHECK(max_parameter_difference(*model, *alone) < 1e-12);
    }

    TEST_CASE("federated averaging of K local steps by hand") {
        // One scalar w per rank and the loss (w - c_r)^2 / 2 with c_r = r + 1.
        // K plain SGD steps of rate a take w to c_r + (w - c_r)(1 - a)^K, so
        // the average is m + (w - m)(1 - a)^K with m = (N + 1) / 2.
        struct Scalar : nn::Module {
            Scalar() { w = register_parameter("w", full({}, 10.0, Dtype::float64)); }
            std::string type_name() const override { return "Scalar"; }
            Tensor w;
        };
        const auto& context = world_context();
        const double target = static_cast<double>(context.rank()) + 1.0;
        const double mean = (static_cast<double>(context.size()) + 1.0) / 2.0;
        constexpr double kRate = 0.25;
        constexpr std::size_t kLocalSteps = 3;
        Scalar model;
        optim::SGD optimizer(model.parameters(), {.lr = kRate});
        distributed::FederatedAveraging fedavg(context, model, {.local_steps = kLocalSteps});

        double expected = 10.0;
        for (int round = 0; round < 2; ++round) {
            for (std::size_t step = 0; step < kLocalSteps; ++step) {
                optimizer.zero_grad();
                (pow(model.w - target, 2.0) * 0.5).backward();
                optimizer.step();
                CHECK(fedavg.step() == (step + 1 == kLocalSteps));
            }
            expected = mean + (expected - mean) * std::pow(1.0 - kRate, kLocalSteps);
            CHECK(model.w.item() == doctest::Approx(expected).epsilon(1e-14));
        }
        // One more local step, then an early average at the end of training.
        optimizer.zero_grad();
        (pow(model.w - target, 2.0) * 0.5).backward();
        optimizer.step();
        CHECK_FALSE(fedavg.step());
        CHECK(fedavg.pending_steps() == 1);
        CHECK(fedavg.synchronize());
        expected = mean + (expected - mean) * (1.0 - kRate);
        CHECK(model.w.item() == doctest::Approx(expected).epsilon(1e-14));
        CHECK(fedavg.rounds() == 3);
        CHECK_THROWS_WITH_AS(distributed::FederatedAveraging(context, model, {.local_steps = 0}),
                             doctest::Contains("local_steps must be at least 1"), value_error);
    }

    TEST_CASE("federated averaging rejects bad examples on every rank") {
        // Only the last rank passes a negative count, in the first of two
        // local steps. Every rank throws at the end of the round, and no rank
        // is left waiting.
        struct Scalar : nn::Module {
            Scalar() { w = register_parameter("w", full({}, 1.0, Dtype::float64)); }
            std::string type_name() const override { return "Scalar"; }
            Tensor w;
        };
        const auto& context = world_context();
        Scalar model;
        distributed::FederatedAveraging fedavg(context, model, {.local_steps = 2});
        const bool last = context.rank() + 1 == context.size();
        CHECK_FALSE(fedavg.step(last ? -1.0 : 1.0));
        CHECK_THROWS_WITH_AS(fedavg.step(1.0), doctest::Contains("negative or non-finite weight"),
                             value_error);
        CHECK(model.w.item() == 1.0);
    }

    TEST_CASE("federated averaging of identical shards") {
        // Every rank trains on the whole dataset in the same order, so the
        // local models stay equal and averaging them changes nothing: the
        // result is one process's run with batches of B.
        const auto& context = world_context();
        auto model = small_mlp(kInitSeed);
        optim::SGD optimizer(model->parameters(), {.lr = 0.2});
        distributed::FederatedAveraging fedavg(context, *model, {.local_steps = 5});
        data::DataLoader loader(small_dataset(kExamples),
                                {.batch_size = kBatchPerRank, .seed = kLoaderSeed});
        for (const data::Batch& batch : loader) {
            optimizer.zero_grad();
            cross_entropy((*model)(batch.inputs), batch.targets).backward();
            optimizer.step();
            fedavg.step();
        }
        CHECK(fedavg.synchronize());  // 12 steps: two rounds of 5, then 2 pending
        CHECK(fedavg.rounds() == 3);
        const auto alone = train_alone(kBatchPerRank, 1, make_plain_sgd);
        CHECK(max_parameter_difference(*model, *alone) < 1e-14);
    }
}

#include <set>

#include "testing.hpp"

using namespace xgrad;

namespace {

// Ten examples whose input row i is (i, 10 i) and whose target is i.
data::TensorDataset numbered(std::size_t n = 10) {
    xt::xarray<float> inputs(Shape{n, 2});
    xt::xarray<std::int64_t> targets(Shape{n});
    for (std::size_t i = 0; i < n; ++i) {
        inputs(i, 0) = static_cast<float>(i);
        inputs(i, 1) = static_cast<float>(10 * i);
        targets(i) = static_cast<std::int64_t>(i);
    }
    return data::TensorDataset(Tensor(inputs), Tensor(targets));
}

std::vector<std::int64_t> targets_of(const Tensor& targets) {
    const auto& values = targets.values<std::int64_t>();
    return std::vector<std::int64_t>(values.begin(), values.end());
}

std::vector<std::vector<std::int64_t>> epoch(data::DataLoader& loader) {
    std::vector<std::vector<std::int64_t>> batches;
    for (const data::Batch& batch : loader) {
        batches.push_back(targets_of(batch.targets));
        // Inputs travel with their targets.
        for (std::size_t i = 0; i < batch.targets.numel(); ++i) {
            CHECK(batch.inputs.values<float>()(i, 1) == 10.0f * static_cast<float>(batches.back()[i]));
        }
    }
    return batches;
}

}  // namespace

TEST_SUITE("dataset") {
    TEST_CASE("tensor dataset checks its sizes") {
        CHECK(numbered().size() == 10);
        CHECK_THROWS_WITH_AS(data::TensorDataset(zeros({3, 2}), zeros({4})),
                             doctest::Contains("TensorDataset: inputs have shape (3, 2) but targets have shape (4)"),
                             shape_error);
    }

    TEST_CASE("subset, head and normalized") {
        const data::TensorDataset dataset = numbered();
        CHECK(targets_of(dataset.subset({7, 2, 7}).targets()) == std::vector<std::int64_t>{7, 2, 7});
        CHECK(dataset.head(3).size() == 3);
        CHECK(dataset.head(30).size() == 10);
        const data::TensorDataset scaled = dataset.normalized(1.0, 2.0);
        CHECK(scaled.inputs().values<float>()(3, 0) == 1.0f);
        CHECK_THROWS_AS(dataset.normalized(0.0, 0.0), value_error);
        CHECK_THROWS_WITH_AS(dataset.subset({10}), doctest::Contains("index_select: index 10"),
                             value_error);
    }

    TEST_CASE("random split is disjoint, complete and seeded") {
        const data::TensorDataset dataset = numbered(100);
        const auto [train, validation] = data::random_split(dataset, 80, 7);
        CHECK(train.size() == 80);
        CHECK(validation.size() == 20);
        std::set<std::int64_t> seen;
        for (const auto& part : {train, validation}) {
            for (std::int64_t target : targets_of(part.targets())) {
                CHECK(seen.insert(target).second);
            }
        }
        CHECK(seen.size() == 100);
        const auto again = data::random_split(dataset, 80, 7);
        CHECK(targets_of(again.first.targets()) == targets_of(train.targets()));
        const auto other = data::random_split(dataset, 80, 8);
        CHECK(targets_of(other.first.targets()) != targets_of(train.targets()));
        CHECK_THROWS_AS(data::random_split(dataset, 101, 7), value_error);
    }

    TEST_CASE("loader batches in order without shuffle") {
        data::DataLoader loader(numbered(), {.batch_size = 4, .shuffle = false});
        CHECK(loader.size() == 3);
        const auto batches = epoch(loader);
        REQUIRE(batches.size() == 3);
        CHECK(batches[0] == std::vector<std::int64_t>{0, 1, 2, 3});
        CHECK(batches[2] == std::vector<std::int64_t>{8, 9});
    }

    TEST_CASE("loader drop_last") {
        data::DataLoader loader(numbered(), {.batch_size = 4, .shuffle = false, .drop_last = true});
        CHECK(loader.size() == 2);
        CHECK(epoch(loader).size() == 2);
    }

    TEST_CASE("loader shuffles every epoch, deterministically") {
        data::DataLoader first(numbered(), {.batch_size = 3, .seed = 5});
        data::DataLoader second(numbered(), {.batch_size = 3, .seed = 5});
        const auto epoch1 = epoch(first);
        const auto epoch2 = epoch(first);
        CHECK(epoch1 != epoch2);
        CHECK(epoch(second) == epoch1);
        CHECK(epoch(second) == epoch2);
        std::set<std::int64_t> seen;
        for (const auto& batch : epoch1) {
            seen.insert(batch.begin(), batch.end());
        }
        CHECK(seen.size() == 10);
    }

    TEST_CASE("loader resumes from a saved generator state") {
        data::DataLoader loader(numbered(), {.batch_size = 3, .seed = 9});
        epoch(loader);
        const Generator::State state = loader.generator().state();
        const auto expected = epoch(loader);
        data::DataLoader resumed(numbered(), {.batch_size = 3, .seed = 123});
        resumed.generator().set_state(state);
        CHECK(epoch(resumed) == expected);
    }

    TEST_CASE("shard order without a remainder") {
        const std::vector<std::int64_t> order{7, 3, 9, 1, 0, 5};
        CHECK(data::shard_order(order, 2, 0) == std::vector<std::int64_t>{7, 9, 0});
        CHECK(data::shard_order(order, 2, 1) == std::vector<std::int64_t>{3, 1, 5});
        CHECK(data::shard_order(order, 3, 2) == std::vector<std::int64_t>{9, 5});
        CHECK(data::shard_order(order, 1, 0) == order);
        CHECK(data::shard_order(order, 2, 1, true) == std::vector<std::int64_t>{3, 1, 5});
    }

    TEST_CASE("shard order pads or drops the remainder") {
        const std::vector<std::int64_t> order{4, 2, 0, 1, 3};
        SUBCASE("pad") {
            CHECK(data::shard_order(order, 2, 0) == std::vector<std::int64_t>{4, 0, 3});
            CHECK(data::shard_order(order, 2, 1) == std::vector<std::int64_t>{2, 1, 4});
            CHECK(data::shard_order(order, 4, 3) == std::vector<std::int64_t>{1, 0});
        }
        SUBCASE("pad repeats a short order") {
            const std::vector<std::int64_t> two{8, 6};
            CHECK(data::shard_order(two, 5, 2) == std::vector<std::int64_t>{8});
            CHECK(data::shard_order(two, 5, 3) == std::vector<std::int64_t>{6});
            CHECK(data::shard_order(two, 5, 4) == std::vector<std::int64_t>{8});
        }
        SUBCASE("drop") {
            CHECK(data::shard_order(order, 2, 0, true) == std::vector<std::int64_t>{4, 0});
            CHECK(data::shard_order(order, 2, 1, true) == std::vector<std::int64_t>{2, 1});
            CHECK(data::shard_order(order, 4, 2, true) == std::vector<std::int64_t>{0});
            CHECK(data::shard_order(order, 6, 5, true).empty());
        }
        SUBCASE("empty order") {
            CHECK(data::shard_order({}, 3, 1).empty());
        }
    }

    TEST_CASE("shard order rejects a bad shard") {
        CHECK_THROWS_WITH_AS(data::shard_order({1, 2}, 0, 0),
                             doctest::Contains("shard_order: shard_count must be positive"),
                             value_error);
        CHECK_THROWS_WITH_AS(data::shard_order({1, 2}, 2, 2),
                             doctest::Contains("got shard_index 2 with shard_count 2"), value_error);
        CHECK_THROWS_WITH_AS(data::DataLoader(numbered(), {.shard_count = 3, .shard_index = 3}),
                             doctest::Contains("DataLoader: shard_index must be below shard_count"),
                             value_error);
    }

    TEST_CASE("sharded loaders split an unsharded epoch") {
        // Three shards with batches of 2 against one loader with batches of
        // 6 and the same seed: batch j of the shards together contains the
        // examples of batch j of the unsharded loader.
        const data::TensorDataset dataset = numbered(24);
        data::DataLoader whole(dataset, {.batch_size = 6, .seed = 11});
        std::vector<data::DataLoader> shards;
        for (std::size_t index = 0; index < 3; ++index) {
            shards.emplace_back(dataset, data::DataLoaderOptions{
                                             .batch_size = 2, .seed = 11, .shard_count = 3,
                                             .shard_index = index});
        }
        for (int round = 0; round < 2; ++round) {
            const auto expected = epoch(whole);
            std::vector<std::vector<std::vector<std::int64_t>>> shard_epochs;
            for (data::DataLoader& shard : shards) {
                CHECK(shard.size() == 4);
                shard_epochs.push_back(epoch(shard));
            }
            REQUIRE(expected.size() == 4);
            for (std::size_t j = 0; j < expected.size(); ++j) {
                std::multiset<std::int64_t> together;
                for (const auto& shard_epoch : shard_epochs) {
                    REQUIRE(shard_epoch.size() == 4);
                    CHECK(shard_epoch[j].size() == 2);
                    together.insert(shard_epoch[j].begin(), shard_epoch[j].end());
                }
                CHECK(together ==
                      std::multiset<std::int64_t>(expected[j].begin(), expected[j].end()));
            }
        }
    }

    TEST_CASE("sharded loaders have equal batch counts") {
        // 11 examples on 2 shards with batches of 3: padding gives each shard
        // 6 examples (2 batches), dropping gives 5 (2 batches, the second
        // holding 2 examples, or 1 batch with drop_last).
        for (std::size_t index = 0; index < 2; ++index) {
            data::DataLoader padded(numbered(11), {.batch_size = 3, .shard_count = 2,
                                                   .shard_index = index});
            data::DataLoader dropped(numbered(11), {.batch_size = 3, .shard_count = 2,
                                                    .shard_index = index,
                                                    .shard_drop_remainder = true});
            data::DataLoader full_only(numbered(11), {.batch_size = 3, .drop_last = true,
                                                      .shard_count = 2, .shard_index = index,
                                                      .shard_drop_remainder = true});
            CHECK(padded.size() == 2);
            CHECK(epoch(padded)[1].size() == 3);
            CHECK(dropped.size() == 2);
            CHECK(epoch(dropped)[1].size() == 2);
            CHECK(full_only.size() == 1);
        }
    }

    TEST_CASE("unshuffled shards take every other example") {
        data::DataLoader loader(numbered(), {.batch_size = 2, .shuffle = false, .shard_count = 2,
                                             .shard_index = 1});
        const auto batches = epoch(loader);
        REQUIRE(batches.size() == 3);
        CHECK(batches[0] == std::vector<std::int64_t>{1, 3});
        CHECK(batches[2] == std::vector<std::int64_t>{9});
    }

    TEST_CASE("loader rejects batch size zero") {
        CHECK_THROWS_WITH_AS(data::DataLoader(numbered(), {.batch_size = 0}),
                             doctest::Contains("DataLoader: batch_size must be positive"), value_error);
    }
}

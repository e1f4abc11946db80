// Checkpoints of a data-parallel run: rank 0 writes them, and a run resumed
// on another number of ranks continues as if it had never stopped.

#include <filesystem>
#include <string>

#include "distributed_testing.hpp"

using namespace xgrad;
using xgrad::testing::max_parameter_difference;
using xgrad::testing::small_dataset;
using xgrad::testing::small_mlp;
using xgrad::testing::world_context;

namespace {

constexpr std::size_t kExamples = 48;
constexpr std::size_t kGlobalBatch = 8;  // 6 steps per epoch

// A data-parallel training run with Adam whose progress is a global step
// count, so that it can stop after any step, save, and resume on a context
// of another size. The per-rank batch is kGlobalBatch / context.size().
class Run {
public:
    explicit Run(const distributed::Context& context)
        : context_(context),
          model_(small_mlp(11)),
          optimizer_(model_->parameters(), {.lr = 0.01}),
          averager_(context, *model_),
          loader_(small_dataset(kExamples),
                  {.batch_size = kGlobalBatch / context.size(), .seed = 5,
                   .shard_count = context.size(), .shard_index = context.rank()}),
          epoch_start_(generator_state(loader_.generator())) {}

    // Trains until `last_step` global steps are done in total.
    void train_until(std::size_t last_step) {
        while (step_ < last_step) {
            // Replaying the epoch's generator state draws the epoch's order
            // again, so a run resumed in the middle of an epoch skips the
            // batches it has already trained on.
            set_generator_state(loader_.generator(), epoch_start_);
            std::size_t index = 0;
            for (const data::Batch& batch : loader_) {
                if (index++ < step_in_epoch_) {
                    continue;
                }
                if (step_ == last_step) {
                    return;
                }
                optimizer_.zero_grad();
                cross_entropy((*model_)(batch.inputs), batch.targets).backward();
                averager_.average();
                optimizer_.step();
                ++step_;
                ++step_in_epoch_;
            }
            step_in_epoch_ = 0;
            epoch_start_ = generator_state(loader_.generator());
        }
    }

    void save(const std::filesystem::path& path) const {
        distributed::save_checkpoint(
            context_, path, *model_, optimizer_,
            {{"loader_epoch_start", epoch_start_},
             {"step", scalar(static_cast<double>(step_), Dtype::int64)},
             {"step_in_epoch", scalar(static_cast<double>(step_in_epoch_), Dtype::int64)}});
    }

    void resume(const std::filesystem::path& path) {
        for (const auto& [name, tensor] : load_checkpoint(path, *model_, optimizer_)) {
            if (name == "loader_epoch_start") {
                epoch_start_ = tensor;
            } else if (name == "step") {
                step_ = static_cast<std::size_t>(tensor.item());
            } else if (name == "step_in_epoch") {
                step_in_epoch_ = static_cast<std::size_t>(tensor.item());
            }
        }
    }

    const nn::Module& model() const { return *model_; }

private:
    const distributed::Context& context_;
    std::shared_ptr<nn::Sequential> model_;
    optim::Adam optimizer_;
    distributed::GradientAverager averager_;
    data::DataLoader loader_;
    Tensor epoch_start_;
    std::size_t step_ = 0;
    std::size_t step_in_epoch_ = 0;
};

// A file name that the 1-rank and the 2-rank ctest runs, which may run at
// the same time in the same directory, do not share.
std::filesystem::path checkpoint_path(const std::string& name) {
    return std::filesystem::path("distributed_" + std::to_string(world_context().size()) +
                                 "_ranks_" + name + ".npz");
}

}  // namespace

TEST_SUITE("distributed checkpoints") {
    TEST_CASE("resume on another rank count continues the run") {
        const auto& world = world_context();
        const distributed::Context alone = world.split(world.rank());

        Run uninterrupted(alone);
        uninterrupted.train_until(10);

        // Two steps on every rank, saved by rank 0.
        const std::filesystem::path from_world = checkpoint_path("from_world");
        Run first(world);
        first.train_until(2);
        first.save(from_world);
        CHECK(std::filesystem::exists(from_world));

        SUBCASE("resume on all ranks") {
            Run resumed(world);
            resumed.resume(from_world);
            resumed.train_until(10);
            CHECK(max_parameter_difference(resumed.model(), uninterrupted.model()) < 1e-12);
            CHECK(max_parameter_difference(resumed.model(), first.model()) > 1e-3);
        }
        SUBCASE("resume on one rank") {
            Run resumed(alone);
            resumed.resume(from_world);
            resumed.train_until(10);
            CHECK(max_parameter_difference(resumed.model(), uninterrupted.model()) < 1e-12);
        }
        SUBCASE("resume on all ranks from one rank's checkpoint") {
            // Every rank trains alone and saves to its own file; all ranks
            // then resume together from rank 0's file.
            const std::filesystem::path from_alone =
                checkpoint_path("from_alone_" + std::to_string(world.rank()));
            Run single(alone);
            single.train_until(7);
            single.save(from_alone);
            world.barrier();
            Run resumed(world);
            resumed.resume(checkpoint_path("from_alone_0"));
            resumed.train_until(10);
            CHECK(max_parameter_difference(resumed.model(), uninterrupted.model()) < 1e-12);
            world.barrier();
            std::filesystem::remove(from_alone);
        }
        world.barrier();
        if (world.is_root()) {
            std::filesystem::remove(from_world);
        }
    }

    TEST_CASE("a failed save throws on every rank") {
        const auto& world = world_context();
        auto model = small_mlp(1);
        optim::SGD optimizer(model->parameters(), {.lr = 0.1});
        const std::filesystem::path path = "no_such_directory/checkpoint.npz";
        CHECK_THROWS_AS(distributed::save_checkpoint(world, path, *model, optimizer), io_error);
        CHECK_THROWS_AS(distributed::save_model(world, *model, path), io_error);
        if (!world.is_root()) {
            CHECK_THROWS_WITH_AS(distributed::save_model(world, *model, path),
                                 doctest::Contains("distributed::save_model: rank 0 failed to write "
                                                   "'no_such_directory/checkpoint.npz'"),
                                 io_error);
        } else {
            CHECK_THROWS(distributed::save_model(world, *model, path));
        }
    }
}

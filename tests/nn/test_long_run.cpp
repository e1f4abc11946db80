// A long training run does not accumulate tape records or tensors.

#include "testing.hpp"

using namespace xgrad;

TEST_SUITE("long run") {
    TEST_CASE("2000 training steps keep tape and tensors flat") {
        Generator generator(1);
        nn::Sequential model{std::make_shared<nn::Linear>(8, 16, generator), std::make_shared<nn::ReLU>(),
                             std::make_shared<nn::Dropout>(0.1, generator),
                             std::make_shared<nn::Linear>(16, 3, generator)};
        optim::Adam optimizer(model.parameters(), {.lr = 1e-2});
        xt::xarray<std::int64_t> labels(Shape{64});
        for (auto& label : labels) {
            label = static_cast<std::int64_t>(generator.below(3));
        }
        data::DataLoader loader(data::TensorDataset(uniform({64, 8}, -1, 1, generator), Tensor(labels)),
                                {.batch_size = 16, .seed = 2});
        nn::CrossEntropyLoss criterion;

        std::size_t step = 0;
        std::size_t tensors_after_warm_up = 0;
        std::size_t records_after_warm_up = 0;
        while (step < 2000) {
            for (const data::Batch& batch : loader) {
                const Tensor loss = criterion(model(batch.inputs), batch.targets);
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                if (++step == 100) {
                    tensors_after_warm_up = live_tensors();
                    records_after_warm_up = tape_size();
                }
            }
        }
        CHECK(live_tape_records() == 0);
        CHECK(tape_size() <= records_after_warm_up + 8);
        CHECK(live_tensors() <= tensors_after_warm_up + 8);
    }
}

// Completeness of integrated gradients on the network of the main job: a
// 784-256-128-10 ReLU MLP, trained here for 3 epochs on 1,000 Fashion-MNIST
// images, so the test does not depend on examples/fashion_mnist having run.
// docs/pictures.md measures the main job's fully trained model, which needs
// more steps for the same bound on some images.

#include <cmath>

#include "testing.hpp"
#include "xgrad/attribution.hpp"

using namespace xgrad;
namespace attr = xgrad::attribution;

namespace {

constexpr std::size_t kTrainImages = 1000;
constexpr std::size_t kExplainedImages = 16;

std::shared_ptr<nn::Sequential> train_mlp(const data::TensorDataset& train) {
    Generator generator(1);
    auto model =
        std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
            std::make_shared<nn::Linear>(784, 256, generator), std::make_shared<nn::ReLU>(),
            std::make_shared<nn::Linear>(256, 128, generator), std::make_shared<nn::ReLU>(),
            std::make_shared<nn::Linear>(128, 10, generator)});
    optim::Adam optimizer(model->parameters(), {.lr = 0.001});
    nn::CrossEntropyLoss criterion;
    data::DataLoader loader(train, {.batch_size = 32, .seed = 1});
    for (int epoch = 0; epoch < 3; ++epoch) {
        for (const data::Batch& batch : loader) {
            const Tensor loss = criterion((*model)(batch.inputs), batch.targets);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
        }
    }
    model->eval();
    return model;
}

}  // namespace

TEST_SUITE("attribution") {
    TEST_CASE("integrated gradients of the Fashion-MNIST MLP are complete") {
        const auto dir = data::fashion_mnist_dir();
        INFO("data directory: ", dir.string(), " (scripts/setup installs dataset-fashion-mnist)");
        const data::TensorDataset train =
            data::load_fashion_mnist(dir, data::Split::train, kTrainImages);
        const data::TensorDataset test =
            data::load_fashion_mnist(dir, data::Split::test, kExplainedImages);
        auto model = train_mlp(train);

        const Tensor images = test.inputs();
        const Tensor predicted = argmax((*model)(images));
        const attr::ScoreFunction logit = attr::class_score(*model, predicted);
        const attr::ScoreFunction log_probability =
            attr::class_score(*model, predicted, attr::ClassScore::log_probability);

        // From a black image (all zeros). With the default trapezoid rule
        // and with the midpoint rule, 64 steps suffice for the logit. The
        // log-probability is curved even where the logits are linear along
        // the path, and needs 128 steps for the same bound.
        struct Setting {
            const char* name;
            const attr::ScoreFunction* score;
            attr::IntegrationRule rule;
            std::size_t steps;
        };
        const Setting settings[] = {
            {"logit, trapezoid", &logit, attr::IntegrationRule::trapezoid, 64},
            {"logit, midpoint", &logit, attr::IntegrationRule::midpoint, 64},
            {"log-probability, trapezoid", &log_probability, attr::IntegrationRule::trapezoid, 128},
        };
        for (const Setting& setting : settings) {
            CAPTURE(setting.name);
            const attr::IntegratedGradients result = attr::integrated_gradients(
                *setting.score, images, {.steps = setting.steps, .rule = setting.rule});
            const xt::xarray<double> gap = result.completeness_gap().values<double>();
            const xt::xarray<double> change =
                result.scores.values<double>() - result.baseline_scores.values<double>();
            for (std::size_t i = 0; i < kExplainedImages; ++i) {
                CAPTURE(i);
                CAPTURE(gap(i));
                CAPTURE(change(i));
                CHECK(std::abs(gap(i)) <= 0.01 * std::abs(change(i)));
            }
        }
    }
}

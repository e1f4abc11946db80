// A user-defined model: the template for writing your own.
//
// What it teaches: deriving from nn::Module, registering layers in the
// constructor so that parameters(), printing and checkpoints find them,
// writing forward() by hand, and training with an optimizer.
//
// Run:    build/examples/custom_model
// Prints: the model, the loss and training accuracy every 200 steps, and
//         exits with 1 unless the model classifies every training point of
//         the two spirals correctly.

#include <cmath>
#include <cstdio>
#include <numbers>

#include <xgrad/optim.hpp>
#include <xgrad/xgrad.hpp>

namespace {

constexpr std::size_t kPointsPerSpiral = 100;
constexpr std::size_t kHidden = 64;
constexpr double kLearningRate = 0.01;
constexpr int kMaxSteps = 4000;
constexpr std::uint64_t kSeed = 7;

using xgrad::Tensor;

// Two interleaved spirals in the plane, one per class: a task no linear model
// can solve, small enough to fit perfectly in seconds.
std::pair<Tensor, Tensor> two_spirals(xgrad::Generator& generator) {
    xt::xarray<float> points(xgrad::Shape{2 * kPointsPerSpiral, 2});
    xt::xarray<std::int64_t> labels(xgrad::Shape{2 * kPointsPerSpiral});
    for (std::size_t i = 0; i < 2 * kPointsPerSpiral; ++i) {
        const std::size_t spiral = i % 2;
        const double t = static_cast<double>(i / 2) / kPointsPerSpiral;  // 0 .. 1 along the arm
        const double angle = 3.0 * std::numbers::pi * t + std::numbers::pi * static_cast<double>(spiral);
        const double radius = 0.1 + 0.9 * t;
        points(i, 0) = static_cast<float>(radius * std::cos(angle) + 0.02 * generator.normal());
        points(i, 1) = static_cast<float>(radius * std::sin(angle) + 0.02 * generator.normal());
        labels(i) = static_cast<std::int64_t>(spiral);
    }
    return {Tensor(points), Tensor(labels)};
}

// The model: two fully connected layers with a tanh between them.
class TwoLayerNet : public xgrad::nn::Module {
public:
    TwoLayerNet(std::size_t inputs, std::size_t hidden, std::size_t classes, xgrad::Generator& generator)
        : hidden_(register_module("hidden", std::make_shared<xgrad::nn::Linear>(inputs, hidden, generator))),
          output_(register_module("output", std::make_shared<xgrad::nn::Linear>(hidden, classes, generator))) {}

    // Maps points (n, 2) to class logits (n, 2).
    Tensor forward(const Tensor& x) override { return (*output_)(xgrad::tanh((*hidden_)(x))); }

private:
    std::shared_ptr<xgrad::nn::Linear> hidden_;
    std::shared_ptr<xgrad::nn::Linear> output_;
};

double accuracy(const Tensor& logits, const Tensor& labels) {
    const Tensor predicted_classes = xgrad::argmax(logits);
    const auto& predicted = predicted_classes.values<std::int64_t>();
    const auto& expected = labels.values<std::int64_t>();
    std::size_t correct = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        correct += predicted(i) == expected(i) ? 1 : 0;
    }
    return static_cast<double>(correct) / static_cast<double>(expected.size());
}

}  // namespace

int main() {
    xgrad::Generator generator(kSeed);
    const auto [points, labels] = two_spirals(generator);
    TwoLayerNet model(2, kHidden, 2, generator);
    xgrad::optim::Adam optimizer(model.parameters(), {.lr = kLearningRate});
    xgrad::nn::CrossEntropyLoss criterion;
    std::printf("%s\n%zu parameters\n", model.to_string().c_str(), model.parameter_count());

    double train_accuracy = 0.0;
    int step = 0;
    for (step = 1; step <= kMaxSteps && train_accuracy < 1.0; ++step) {
        // One full-batch step: forward, loss, backward, update.
        const Tensor logits = model(points);
        const Tensor loss = criterion(logits, labels);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();

        train_accuracy = accuracy(logits, labels);
        if (step % 200 == 0 || train_accuracy == 1.0) {
            std::printf("step %4d  loss %.4f  training accuracy %.3f\n", step, loss.item(), train_accuracy);
        }
    }

    if (train_accuracy < 1.0) {
        std::printf("FAILED: training accuracy %.3f after %d steps, expected 1.000\n", train_accuracy, kMaxSteps);
        return 1;
    }
    std::printf("Every training point classified correctly after %d steps\n", step - 1);
    return 0;
}

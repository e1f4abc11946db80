#pragma once

// The xgrad side of the training benchmarks: one SGD step of a 2-8-1 tanh
// MLP, one Adam step of the Fashion-MNIST MLP (784-256-128-10, ReLU,
// cross-entropy, batch 128, float32), and one epoch of the main job's
// training loop.

#include <chrono>
#include <memory>

#include "xgrad/xgrad.hpp"

namespace bench {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline std::shared_ptr<xgrad::nn::Sequential> make_xgrad_mlp(xgrad::Generator& generator) {
    namespace nn = xgrad::nn;
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Linear>(784, 256, generator), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(256, 128, generator), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(128, 10, generator)});
}

/// Repeated SGD steps of a 2-8-1 tanh MLP with MSE on one fixed batch of 4,
/// the size of the original write-up's network: a measure of per-op overhead.
class XgradSmallStep {
public:
    XgradSmallStep()
        : generator_(2),
          model_(std::make_shared<xgrad::nn::Sequential>(std::initializer_list<std::shared_ptr<xgrad::nn::Module>>{
              std::make_shared<xgrad::nn::Linear>(2, 8, generator_), std::make_shared<xgrad::nn::Tanh>(),
              std::make_shared<xgrad::nn::Linear>(8, 1, generator_)})),
          optimizer_(model_->parameters(), {.lr = 0.1}),
          inputs_(xgrad::uniform({4, 2}, -1.0, 1.0, generator_)),
          targets_(xgrad::uniform({4, 1}, 0.0, 1.0, generator_)) {}

    /// Runs `steps` steps and returns the seconds they took.
    double run(int steps) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < steps; ++i) {
            const xgrad::Tensor loss = xgrad::mse_loss((*model_)(inputs_), targets_);
            optimizer_.zero_grad();
            loss.backward();
            optimizer_.step();
        }
        return seconds_since(start);
    }

private:
    xgrad::Generator generator_;
    std::shared_ptr<xgrad::nn::Sequential> model_;
    xgrad::optim::SGD optimizer_;
    xgrad::Tensor inputs_;
    xgrad::Tensor targets_;
};

/// Repeated training steps on one fixed random batch.
class XgradMlpStep {
public:
    explicit XgradMlpStep(std::size_t batch = 128)
        : generator_(1),
          model_(make_xgrad_mlp(generator_)),
          optimizer_(model_->parameters(), {.lr = 1e-3}),
          inputs_(xgrad::uniform({batch, 784}, 0.0, 1.0, generator_)) {
        xt::xarray<std::int64_t> labels(xgrad::Shape{batch});
        for (std::size_t i = 0; i < batch; ++i) {
            labels(i) = static_cast<std::int64_t>(generator_.below(10));
        }
        labels_ = xgrad::Tensor(labels);
    }

    /// Runs `steps` steps and returns the seconds they took.
    double run(int steps) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < steps; ++i) {
            const xgrad::Tensor loss = xgrad::cross_entropy((*model_)(inputs_), labels_);
            optimizer_.zero_grad();
            loss.backward();
            optimizer_.step();
        }
        return seconds_since(start);
    }

private:
    xgrad::Generator generator_;
    std::shared_ptr<xgrad::nn::Sequential> model_;
    xgrad::optim::Adam optimizer_;
    xgrad::Tensor inputs_;
    xgrad::Tensor labels_;
};

/// One epoch of the main job's loop over `train` (shuffled batches of 128),
/// returning its seconds.
class XgradEpoch {
public:
    explicit XgradEpoch(const xgrad::data::TensorDataset& train)
        : generator_(1),
          model_(make_xgrad_mlp(generator_)),
          optimizer_(model_->parameters(), {.lr = 1e-3}),
          loader_(train, {.batch_size = 128, .seed = 1}) {}

    double run() {
        const auto start = std::chrono::steady_clock::now();
        for (const xgrad::data::Batch& batch : loader_) {
            const xgrad::Tensor loss = xgrad::cross_entropy((*model_)(batch.inputs), batch.targets);
            optimizer_.zero_grad();
            loss.backward();
            optimizer_.step();
        }
        return seconds_since(start);
    }

private:
    xgrad::Generator generator_;
    std::shared_ptr<xgrad::nn::Sequential> model_;
    xgrad::optim::Adam optimizer_;
    xgrad::data::DataLoader loader_;
};

}  // namespace bench

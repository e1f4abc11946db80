#pragma once

// Small synthetic problems and model factories shared by the select tests.

#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>

#include "testing.hpp"
#include "xgrad/select.hpp"

namespace xgrad::testing {

/// Three Gaussian blobs in the plane, `per_class` points each, with int64
/// labels 0, 1, 2 in interleaved order. The blobs are 4 standard deviations
/// apart, so a linear classifier separates them almost perfectly.
inline data::TensorDataset blobs(std::size_t per_class, std::uint64_t seed) {
    constexpr double kCenters[3][2] = {{-2.0, 0.0}, {2.0, 0.0}, {0.0, 2.5}};
    Generator generator(seed);
    xt::xarray<float> points(Shape{3 * per_class, 2});
    xt::xarray<std::int64_t> labels(Shape{3 * per_class});
    for (std::size_t i = 0; i < 3 * per_class; ++i) {
        const std::size_t label = i % 3;
        points(i, 0) = static_cast<float>(kCenters[label][0] + 0.5 * generator.normal());
        points(i, 1) = static_cast<float>(kCenters[label][1] + 0.5 * generator.normal());
        labels(i) = static_cast<std::int64_t>(label);
    }
    return data::TensorDataset(Tensor(points), Tensor(labels));
}

/// n points of y = 2 x + 1 + noise, x uniform in [-1, 1), noise normal with
/// standard deviation 0.05; inputs and targets float32 of shape (n, 1).
inline data::TensorDataset line(std::size_t n, std::uint64_t seed) {
    Generator generator(seed);
    xt::xarray<float> x(Shape{n, 1});
    xt::xarray<float> y(Shape{n, 1});
    for (std::size_t i = 0; i < n; ++i) {
        x(i, 0) = static_cast<float>(generator.uniform(-1.0, 1.0));
        y(i, 0) = static_cast<float>(2.0 * x(i, 0) + 1.0 + 0.05 * generator.normal());
    }
    return data::TensorDataset(Tensor(x), Tensor(y));
}

/// Returns a factory of linear models y = x Wᵀ + b trained by plain SGD. It
/// reads "lr", and "batch_size" and "epochs" when present (else 8 and 20).
inline select::ModelFactory linear_factory(std::size_t inputs, std::size_t outputs) {
    return [inputs, outputs](const select::Params& params, std::uint64_t seed) {
        Generator generator(seed);
        auto model = std::make_shared<nn::Linear>(inputs, outputs, generator);
        auto optimizer = std::make_unique<optim::SGD>(
            model->parameters(), optim::SGDOptions{.lr = params.get_double("lr")});
        const auto batch_size = params.contains("batch_size") ? params.get_int("batch_size") : 8;
        const auto epochs = params.contains("epochs") ? params.get_int("epochs") : 20;
        return select::TrainingSetup{.model = model,
                                     .optimizer = std::move(optimizer),
                                     .batch_size = static_cast<std::size_t>(batch_size),
                                     .epochs = static_cast<std::size_t>(epochs)};
    };
}

/// Returns a factory of models y = w x whose w follows a script: the factory
/// sets w to script[0] and after_epoch(e) sets it to script[e]. With a
/// learning rate of 0, training leaves w alone, so the validation loss of
/// epoch e is (script[e - 1])² on inputs of 1 and targets of 0.
inline select::ModelFactory scripted_factory(std::vector<float> script) {
    return [script](const select::Params&, std::uint64_t) {
        auto model = std::make_shared<nn::Linear>(
            nn::LinearOptions{.in_features = 1, .out_features = 1, .bias = false});
        const auto set_weight = [model](float value) {
            NoGradGuard no_grad;
            model->weight.mutable_values<float>().fill(value);
        };
        set_weight(script.at(0));
        auto optimizer =
            std::make_unique<optim::SGD>(model->parameters(), optim::SGDOptions{.lr = 0.0});
        return select::TrainingSetup{.model = model,
                                     .optimizer = std::move(optimizer),
                                     .batch_size = 2,
                                     .epochs = 10,
                                     .after_epoch = [script, set_weight](std::size_t epoch) {
                                         set_weight(script.at(epoch));
                                     }};
    };
}

/// Weights whose losses 9, 4, 1, 2.25, 4, 0.25 and 0.0625 (to the end) give
/// early stopping a minimum at epoch 3 and a lower one at epoch 7.
inline const std::vector<float> kScript = {3.0f,  2.0f,  1.0f,  1.5f,  2.0f, 0.5f,
                                           0.25f, 0.25f, 0.25f, 0.25f, 0.25f};

/// True when two doubles have the same bits (so NaN can equal NaN).
inline bool same_bits(double a, double b) {
    return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

}  // namespace xgrad::testing

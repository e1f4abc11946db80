#pragma once

#include <cstddef>
#include <string>

#include "xgrad/nn/module.hpp"
#include "xgrad/random.hpp"

namespace xgrad::nn {

/// Distribution of initial weights. The bounds are stated for Linear; Conv2d
/// uses in_channels kH kW in place of in_features and out_channels kH kW in
/// place of out_features.
enum class Init {
    /// Uniform in +-sqrt(6 / in_features): He et al. (2015), for ReLU networks.
    kaiming_uniform,
    /// Uniform in +-sqrt(6 / (in_features + out_features)): Glorot and Bengio
    /// (2010), for tanh and sigmoid networks.
    xavier_uniform,
};

struct LinearOptions {
    std::size_t in_features = 0;
    std::size_t out_features = 0;
    bool bias = true;
    Init init = Init::kaiming_uniform;
    Dtype dtype = Dtype::float32;
};

/// Fully connected layer y = x W^T + b, with weight W of shape
/// (out_features, in_features) and bias b of shape (out_features). The bias
/// starts uniform in +-1 / sqrt(in_features), as in PyTorch.
class Linear : public Module {
public:
    /// Draws the initial values from `generator`; without one, from this
    /// thread's default_generator().
    Linear(std::size_t in_features, std::size_t out_features, Generator& generator);
    Linear(std::size_t in_features, std::size_t out_features);
    Linear(const LinearOptions& options, Generator& generator);
    explicit Linear(const LinearOptions& options);

    /// x of shape (..., in_features) to (..., out_features).
    Tensor forward(const Tensor& x) override;

    std::string extra_repr() const override;

    const LinearOptions& options() const { return options_; }

    Tensor weight;
    Tensor bias;  ///< undefined when options().bias is false

private:
    LinearOptions options_;
};

}  // namespace xgrad::nn

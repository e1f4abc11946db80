#pragma once

// Convolution and pooling layers over NCHW tensors (batch, channels, height,
// width). Each applies the op of the same name (see docs/ops.md).

#include <cstddef>
#include <string>

#include "xgrad/nn/linear.hpp"  // Init
#include "xgrad/nn/module.hpp"
#include "xgrad/ops/conv.hpp"
#include "xgrad/ops/pool.hpp"
#include "xgrad/random.hpp"

namespace xgrad::nn {

struct Conv2dOptions {
    std::size_t in_channels = 0;
    std::size_t out_channels = 0;
    Size2d kernel{0, 0};    ///< (kH, kW); positive
    Size2d stride{1, 1};    ///< positive
    Size2d padding{0, 0};   ///< zeros on each side; non-negative
    Size2d dilation{1, 1};  ///< positive
    bool bias = true;
    Init init = Init::kaiming_uniform;
    Dtype dtype = Dtype::float32;
};

/// Two-dimensional convolution y = conv2d(x, W, b) with weight W of shape
/// (out_channels, in_channels, kH, kW) and bias b of shape (out_channels).
/// Initialised as Linear is, with fan_in = in_channels kH kW and fan_out =
/// out_channels kH kW: W uniform in +-sqrt(6 / fan_in) (Kaiming) or
/// +-sqrt(6 / (fan_in + fan_out)) (Xavier), b uniform in +-1 / sqrt(fan_in).
class Conv2d : public Module {
  public:
    /// Draws the initial values from `generator`; without one, from this
    /// thread's default_generator(). Throws value_error for a zero channel
    /// count, a non-positive kernel, stride or dilation, a negative padding,
    /// or an integer dtype.
    Conv2d(const Conv2dOptions& options, Generator& generator);
    explicit Conv2d(const Conv2dOptions& options);

    /// x of shape (N, in_channels, H, W) to (N, out_channels, H_out, W_out).
    Tensor forward(const Tensor& x) override;

    std::string extra_repr() const override;

    const Conv2dOptions& options() const { return options_; }

    Tensor weight;
    Tensor bias;  ///< undefined when options().bias is false

  private:
    Conv2dOptions options_;
};

/// max_pool2d as a module; has no parameters. The constructor checks the
/// hyperparameters and throws value_error as max_pool2d would.
class MaxPool2d : public Module {
  public:
    explicit MaxPool2d(const MaxPool2dParams& params);
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;

  private:
    MaxPool2dParams params_;
};

/// avg_pool2d as a module; has no parameters. The constructor checks the
/// hyperparameters and throws value_error as avg_pool2d would.
class AvgPool2d : public Module {
  public:
    explicit AvgPool2d(const AvgPool2dParams& params);
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;

  private:
    AvgPool2dParams params_;
};

/// global_avg_pool2d as a module: (N, C, H, W) -> (N, C).
class GlobalAvgPool2d : public Module {
  public:
    Tensor forward(const Tensor& x) override;
};

}  // namespace xgrad::nn

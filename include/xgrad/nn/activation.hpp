#pragma once

// Activation functions as modules, for Sequential. Each applies the op of
// the same name (see docs/ops.md) and has no parameters.

#include <cstdint>
#include <string>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

class ReLU : public Module {
public:
    Tensor forward(const Tensor& x) override;
};

class LeakyReLU : public Module {
public:
    explicit LeakyReLU(double negative_slope = 0.01) : negative_slope_(negative_slope) {}
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;

private:
    double negative_slope_;
};

class Tanh : public Module {
public:
    Tensor forward(const Tensor& x) override;
};

class Sigmoid : public Module {
public:
    Tensor forward(const Tensor& x) override;
};

class GELU : public Module {
public:
    explicit GELU(bool approximate = false) : approximate_(approximate) {}
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;

private:
    bool approximate_;
};

class Softmax : public Module {
public:
    explicit Softmax(std::int64_t axis = -1) : axis_(axis) {}
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;

private:
    std::int64_t axis_;
};

class LogSoftmax : public Module {
public:
    explicit LogSoftmax(std::int64_t axis = -1) : axis_(axis) {}
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;

private:
    std::int64_t axis_;
};

/// Merges the dimensions from start_axis on: (n, c, h, w) -> (n, c * h * w).
class Flatten : public Module {
public:
    explicit Flatten(std::int64_t start_axis = 1) : start_axis_(start_axis) {}
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;

private:
    std::int64_t start_axis_;
};

}  // namespace xgrad::nn

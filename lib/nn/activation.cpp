#include "xgrad/nn/activation.hpp"

#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }

Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope_); }
std::string LeakyReLU::extra_repr() const {
    return "negative_slope=" + std::to_string(negative_slope_);
}

Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate_); }
std::string GELU::extra_repr() const { return approximate_ ? "approximate=tanh" : ""; }

Tensor Softmax::forward(const Tensor& x) { return softmax(x, axis_); }
std::string Softmax::extra_repr() const { return "axis=" + std::to_string(axis_); }

Tensor LogSoftmax::forward(const Tensor& x) { return log_softmax(x, axis_); }
std::string LogSoftmax::extra_repr() const { return "axis=" + std::to_string(axis_); }

Tensor Flatten::forward(const Tensor& x) { return flatten(x, start_axis_); }
std::string Flatten::extra_repr() const { return "start_axis=" + std::to_string(start_axis_); }

}  // namespace xgrad::nn

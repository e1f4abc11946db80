#include "xgrad/nn/linear.hpp"

#include <cmath>

#include "xgrad/ops/linalg.hpp"

namespace xgrad::nn {

Linear::Linear(std::size_t in_features, std::size_t out_features, Generator& generator)
    : Linear(LinearOptions{.in_features = in_features, .out_features = out_features}, generator) {}

Linear::Linear(std::size_t in_features, std::size_t out_features)
    : Linear(in_features, out_features, default_generator()) {}

Linear::Linear(const LinearOptions& options) : Linear(options, default_generator()) {}

Linear::Linear(const LinearOptions& options, Generator& generator) : options_(options) {
    if (options.in_features == 0 || options.out_features == 0) {
        throw value_error("Linear: in_features and out_features must be positive, got in=" +
                          std::to_string(options.in_features) +
                          ", out=" + std::to_string(options.out_features));
    }
    if (!is_floating(options.dtype)) {
        throw value_error("Linear: dtype must be float32 or float64");
    }
    const auto fan_in = static_cast<double>(options.in_features);
    const auto fan_out = static_cast<double>(options.out_features);
    const double bound = options.init == Init::kaiming_uniform ? std::sqrt(6.0 / fan_in)
                                                               : std::sqrt(6.0 / (fan_in + fan_out));
    weight = register_parameter(
        "weight", uniform({options.out_features, options.in_features}, -bound, bound, generator,
                          options.dtype));
    if (options.bias) {
        const double bias_bound = 1.0 / std::sqrt(fan_in);
        bias = register_parameter(
            "bias", uniform({options.out_features}, -bias_bound, bias_bound, generator, options.dtype));
    }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

std::string Linear::extra_repr() const {
    return "in=" + std::to_string(options_.in_features) +
           ", out=" + std::to_string(options_.out_features) +
           ", bias=" + (options_.bias ? "true" : "false");
}

}  // namespace xgrad::nn

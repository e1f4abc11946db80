#pragma once

// Activation modules by name, for the examples' --activation flag.

#include <memory>
#include <string>
#include <vector>

#include "xgrad/nn.hpp"

namespace xgrad::examples {

/// The names make_activation() accepts, in the order --help lists them.
const std::vector<std::string>& activation_names();

/// Creates the activation module called `name` ("relu", "tanh", "gelu" or
/// "leaky_relu"). Throws value_error naming the flag value otherwise.
std::shared_ptr<nn::Module> make_activation(const std::string& name);

}  // namespace xgrad::examples

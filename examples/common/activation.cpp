#include "common/activation.hpp"

#include "xgrad/error.hpp"

namespace xgrad::examples {

const std::vector<std::string>& activation_names() {
    static const std::vector<std::string> names = {"relu", "tanh", "gelu", "leaky_relu"};
    return names;
}

std::shared_ptr<nn::Module> make_activation(const std::string& name) {
    if (name == "relu") {
        return std::make_shared<nn::ReLU>();
    }
    if (name == "tanh") {
        return std::make_shared<nn::Tanh>();
    }
    if (name == "gelu") {
        return std::make_shared<nn::GELU>();
    }
    if (name == "leaky_relu") {
        return std::make_shared<nn::LeakyReLU>();
    }
    throw value_error("unknown activation '" + name + "': expected relu, tanh, gelu or leaky_relu");
}

}  // namespace xgrad::examples

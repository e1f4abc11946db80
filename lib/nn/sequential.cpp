#include "xgrad/nn/sequential.hpp"

#include <string>

namespace xgrad::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
    for (const auto& module : modules) {
        push_back(module);
    }
}

void Sequential::push_back(std::shared_ptr<Module> module) {
    register_module(std::to_string(size()), std::move(module));
}

Module& Sequential::operator[](std::size_t index) const {
    if (index >= size()) {
        throw value_error("Sequential: index " + std::to_string(index) +
                          " is out of range for " + std::to_string(size()) + " modules");
    }
    return *named_children()[index].second;
}

Tensor Sequential::forward(const Tensor& x) {
    Tensor output = x;
    for (const auto& [name, module] : named_children()) {
        output = module->forward(output);
    }
    return output;
}

}  // namespace xgrad::nn

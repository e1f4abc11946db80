#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// Runs its children in order, each on the previous one's output. Children
/// are named "0", "1", ..., so parameters read "0.weight", or
/// "layers.0.weight" inside a model that registers the Sequential as "layers".
class Sequential : public Module {
public:
    Sequential() = default;
    Sequential(std::initializer_list<std::shared_ptr<Module>> modules);

    /// Appends a module as the next step.
    void push_back(std::shared_ptr<Module> module);

    std::size_t size() const { return named_children().size(); }
    Module& operator[](std::size_t index) const;

    Tensor forward(const Tensor& x) override;
};

}  // namespace xgrad::nn

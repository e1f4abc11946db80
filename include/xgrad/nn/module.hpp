#pragma once

// Module: the base class of layers and models. A module owns named
// parameters (tensors that require grad and that optimizers update), named
// buffers (state that is saved but not trained, such as running statistics),
// and named child modules. Names nest with dots, so a model holding a
// Sequential "layers" whose first child is a Linear has the parameter
// "layers.0.weight".
//
// A custom model derives from Module, registers its children in the
// constructor and writes its own forward; see docs/custom-models.md.

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::nn {

/// Tensors with their dotted names, in registration order.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
public:
    Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    virtual ~Module() = default;

    /// Maps one input tensor to one output. Layers and models that take a
    /// single tensor override it; the default throws not_implemented.
    virtual Tensor forward(const Tensor& input);
    Tensor operator()(const Tensor& input) { return forward(input); }

    /// Parameters of this module and, with `recurse`, of every descendant,
    /// under dotted names. A tensor registered twice (a child shared by two
    /// parents, tied weights) is listed once, under its first name.
    NamedTensors named_parameters(bool recurse = true) const;
    std::vector<Tensor> parameters(bool recurse = true) const;

    /// Buffers, named like parameters.
    NamedTensors named_buffers(bool recurse = true) const;

    /// Direct children with their names.
    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
        return children_;
    }

    /// Total number of parameter elements (the usual "parameter count").
    std::size_t parameter_count() const;

    /// Sets training mode on this module and every descendant. Dropout and
    /// batch normalisation behave differently in the two modes.
    void train(bool training = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    /// Drops the gradient of every parameter.
    void zero_grad();

    /// Parameters and buffers under their dotted names, sharing values with
    /// the module. This is what a checkpoint stores.
    NamedTensors state_dict() const;

    /// Copies values into the parameters and buffers of the same names. Every
    /// name of the module must be present with the same shape and dtype, and
    /// the state must contain no other names. Otherwise value_error lists
    /// every mismatch, and nothing is changed.
    void load_state_dict(const NamedTensors& state);

    /// The mismatches load_state_dict() would report, one line each; empty
    /// when `state` fits this module.
    std::vector<std::string> check_state_dict(const NamedTensors& state) const;

    /// The class name, without namespaces: "Linear", or the user's model name.
    virtual std::string type_name() const;

    /// The arguments shown in the one-line description, such as
    /// "in=784, out=128, bias=true". Empty by default.
    virtual std::string extra_repr() const { return {}; }

    /// One line: "Linear(in=784, out=128, bias=true)".
    std::string describe() const { return type_name() + "(" + extra_repr() + ")"; }

    /// The module tree, one child per line, as PyTorch prints modules.
    std::string to_string() const;

protected:
    /// Registers a parameter and marks it as requiring grad. Returns the
    /// handle, which shares values with the registered tensor.
    Tensor register_parameter(const std::string& name, Tensor value);

    /// Registers a buffer (saved in checkpoints, never trained).
    Tensor register_buffer(const std::string& name, Tensor value);

    /// Registers a child module and returns it.
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        check_new_name(name);
        if (!module) {
            throw value_error("register_module: module '" + name + "' is null");
        }
        children_.emplace_back(name, module);
        return module;
    }

private:
    void check_new_name(const std::string& name) const;
    void collect(const std::string& prefix, bool parameters, bool recurse, NamedTensors& out) const;
    void print(std::string& out, int indent) const;

    NamedTensors parameters_;
    NamedTensors buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

}  // namespace xgrad::nn

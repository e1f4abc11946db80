#include "xgrad/nn/module.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <map>
#include <set>
#include <memory>
#include <typeinfo>

#include "xgrad/autograd.hpp"

namespace xgrad::nn {

Tensor Module::forward(const Tensor& /*input*/) {
    throw not_implemented(type_name() +
                          ": forward(const Tensor&) is not implemented; this module takes other "
                          "arguments, or its class must override forward");
}

void Module::check_new_name(const std::string& name) const {
    if (name.empty() || name.find('.') != std::string::npos) {
        throw value_error(type_name() + ": invalid name '" + name +
                          "'; names must be non-empty and contain no '.'");
    }
    auto taken = [&](const auto& entries) {
        for (const auto& entry : entries) {
            if (entry.first == name) {
                return true;
            }
        }
        return false;
    };
    if (taken(parameters_) || taken(buffers_) || taken(children_)) {
        throw value_error(type_name() + ": the name '" + name + "' is already registered");
    }
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
    check_new_name(name);
    if (!value.defined() || !value.is_leaf()) {
        throw value_error(type_name() + ": parameter '" + name +
                          "' must be a defined leaf tensor (detach() a computed one)");
    }
    value.requires_grad_(true);
    parameters_.emplace_back(name, value);
    return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
    check_new_name(name);
    if (!value.defined()) {
        throw value_error(type_name() + ": buffer '" + name + "' is an undefined tensor");
    }
    buffers_.emplace_back(name, value);
    return value;
}

void Module::collect(const std::string& prefix, bool parameters, bool recurse,
                     NamedTensors& out) const {
    for (const auto& [name, tensor] : parameters ? parameters_ : buffers_) {
        out.emplace_back(prefix + name, tensor);
    }
    if (recurse) {
        for (const auto& [name, child] : children_) {
            child->collect(prefix + name + ".", parameters, recurse, out);
        }
    }
}

namespace {

// Keeps the first name of a tensor registered twice (a shared child or tied
// weights), as PyTorch does, so that optimizers see each tensor once.
NamedTensors without_duplicates(NamedTensors tensors) {
    std::set<const void*> seen;
    NamedTensors unique;
    for (auto& entry : tensors) {
        if (seen.insert(entry.second.id()).second) {
            unique.push_back(std::move(entry));
        }
    }
    return unique;
}

}  // namespace

NamedTensors Module::named_parameters(bool recurse) const {
    NamedTensors out;
    collect("", true, recurse, out);
    return without_duplicates(std::move(out));
}

std::vector<Tensor> Module::parameters(bool recurse) const {
    std::vector<Tensor> out;
    for (auto& [name, tensor] : named_parameters(recurse)) {
        out.push_back(tensor);
    }
    return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
    NamedTensors out;
    collect("", false, recurse, out);
    return without_duplicates(std::move(out));
}

std::size_t Module::parameter_count() const {
    std::size_t count = 0;
    for (const Tensor& parameter : parameters()) {
        count += parameter.numel();
    }
    return count;
}

void Module::train(bool training) {
    training_ = training;
    for (auto& [name, child] : children_) {
        child->train(training);
    }
}

void Module::zero_grad() {
    for (Tensor& parameter : parameters()) {
        parameter.zero_grad();
    }
}

NamedTensors Module::state_dict() const {
    NamedTensors state = named_parameters();
    for (auto& entry : named_buffers()) {
        state.push_back(std::move(entry));
    }
    return state;
}

std::vector<std::string> Module::check_state_dict(const NamedTensors& state) const {
    std::map<std::string, const Tensor*> given;
    std::vector<std::string> problems;
    for (const auto& [name, tensor] : state) {
        if (!given.emplace(name, &tensor).second) {
            problems.push_back("'" + name + "' appears twice");
        }
    }
    for (const auto& [name, tensor] : state_dict()) {
        auto found = given.find(name);
        if (found == given.end()) {
            problems.push_back("missing '" + name + "'");
            continue;
        }
        const Tensor& source = *found->second;
        if (!source.defined()) {
            problems.push_back("'" + name + "' is undefined");
        } else if (source.shape() != tensor.shape() || source.dtype() != tensor.dtype()) {
            problems.push_back("'" + name + "' is " + dtype_name(source.dtype()) + " " +
                               shape_string(source.shape()) + " in the state but " +
                               dtype_name(tensor.dtype()) + " " + shape_string(tensor.shape()) +
                               " in the module");
        }
        given.erase(found);
    }
    for (const auto& [name, tensor] : given) {
        problems.push_back("unexpected '" + name + "'");
    }
    return problems;
}

void Module::load_state_dict(const NamedTensors& state) {
    const std::vector<std::string> problems = check_state_dict(state);
    if (!problems.empty()) {
        std::string message = "load_state_dict: the state does not match " + type_name() + ":";
        for (const std::string& problem : problems) {
            message += "\n  " + problem;
        }
        throw value_error(message);
    }

    // Every check passed, so the copy below cannot fail half-way.
    std::map<std::string, const Tensor*> sources;
    for (const auto& [name, tensor] : state) {
        sources.emplace(name, &tensor);
    }
    NoGradGuard no_grad;
    for (auto& [name, tensor] : state_dict()) {
        Tensor target = tensor;
        const Tensor& source = *sources.at(name);
        detail::visit_dtype(target.dtype(), [&](auto zero) {
            using T = decltype(zero);
            target.mutable_values<T>() = source.values<T>();
        });
    }
}

std::string Module::type_name() const {
    const char* mangled = typeid(*this).name();
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> demangled(
        abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
    std::string name = status == 0 ? demangled.get() : mangled;
    // Keep the class name only: "xgrad::nn::Linear" -> "Linear".
    const std::size_t template_start = name.find('<');
    const std::size_t last_colon = name.rfind("::", template_start);
    return last_colon == std::string::npos ? name : name.substr(last_colon + 2);
}

void Module::print(std::string& out, int indent) const {
    out += describe();
    if (children_.empty()) {
        return;
    }
    // Replace the closing parenthesis by the children, one per line.
    out.pop_back();
    out += "\n";
    const std::string pad(static_cast<std::size_t>(indent + 2), ' ');
    for (const auto& [name, child] : children_) {
        out += pad + "(" + name + "): ";
        child->print(out, indent + 2);
        out += "\n";
    }
    out += std::string(static_cast<std::size_t>(indent), ' ') + ")";
}

std::string Module::to_string() const {
    std::string out;
    print(out, 0);
    return out;
}

}  // namespace xgrad::nn

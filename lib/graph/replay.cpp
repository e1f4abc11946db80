// Graph replay: forward() and backward() over buffers that persist between
// calls. After the first call of each, neither allocates: op outputs,
// gradients and gradient slots keep their arrays, and ops write into them in
// place.

#include <algorithm>

#include <xtensor/xnoalias.hpp>

#include "autograd/anomaly.hpp"
#include "graph/replay.hpp"
#include "xgrad/autograd.hpp"

namespace xgrad {

namespace {

// Makes `target` an array of the given dtype and shape, reusing its memory
// when it already is one.
void ensure_array(detail::Array& target, Dtype dtype, const Shape& shape) {
    if (target.empty() || target.dtype() != dtype || target.shape() != shape) {
        target = detail::Array::uninitialized(dtype, shape);
    }
}

void copy_into(detail::Array& target, const detail::Array& source) {
    detail::visit_dtype(source.dtype(), [&](auto zero) {
        using T = decltype(zero);
        xt::noalias(target.get<T>()) = source.get<T>();
    });
}

void add_into(detail::Array& target, const detail::Array& source) {
    detail::visit_dtype(source.dtype(), [&](auto zero) {
        using T = decltype(zero);
        xt::noalias(target.get<T>()) += source.get<T>();
    });
}

void check_leaf(const Value& value, std::size_t id) {
    const Tensor& tensor = value.tensor;
    if (tensor.shape() != value.shape || tensor.dtype() != value.dtype) {
        throw shape_error("Graph::forward: the " + std::string(value_kind_name(value.kind)) + " '" +
                          value.name + "' (value " + std::to_string(id) + ") is now " +
                          dtype_name(tensor.dtype()) + " " + shape_string(tensor.shape()) +
                          " but was captured as " + dtype_name(value.dtype) + " " +
                          shape_string(value.shape));
    }
}

}  // namespace

const std::vector<Tensor>& Graph::forward(const std::vector<Tensor>& inputs) {
    if (inputs.size() != inputs_.size()) {
        throw value_error("Graph::forward: expected " + std::to_string(inputs_.size()) +
                          " inputs, got " + std::to_string(inputs.size()));
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const Value& expected = value(inputs_[i]);
        if (!inputs[i].defined() || inputs[i].shape() != expected.shape ||
            inputs[i].dtype() != expected.dtype) {
            throw shape_error(
                "Graph::forward: input " + std::to_string(i) + " is " +
                (inputs[i].defined() ? std::string(dtype_name(inputs[i].dtype())) + " " +
                                           shape_string(inputs[i].shape())
                                     : std::string("undefined")) +
                " but the graph was captured with " + dtype_name(expected.dtype) + " " +
                shape_string(expected.shape) + "; capture again for other shapes");
        }
    }

    if (!replay_) {
        check_structure();
        replay_ = std::make_unique<Replay>();
        Replay& r = *replay_;
        r.buffers.resize(values_.size());
        r.values.resize(values_.size(), nullptr);
        r.node_inputs.resize(nodes_.size());
        for (std::size_t n = 0; n < nodes_.size(); ++n) {
            r.node_inputs[n].resize(nodes_[n].inputs.size());
            const Value& output = value(nodes_[n].output);
            r.buffers[nodes_[n].output] = std::make_shared<detail::Storage>();
            r.buffers[nodes_[n].output]->values =
                detail::Array::uninitialized(output.dtype, output.shape);
        }
        for (std::size_t id : outputs_) {
            if (value(id).kind == ValueKind::op) {
                r.outputs.emplace_back(std::make_shared<detail::TensorImpl>(r.buffers[id]));
            } else {
                r.outputs.emplace_back();  // filled below at every forward()
            }
        }
    }
    Replay& r = *replay_;

    for (std::size_t id = 0; id < values_.size(); ++id) {
        const Value& v = values_[id];
        if (v.kind == ValueKind::op) {
            r.values[id] = &r.buffers[id]->values;
        } else if (v.kind != ValueKind::input) {
            check_leaf(v, id);
            r.values[id] = &v.tensor.storage().values;
        }
    }
    r.held_inputs = inputs;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        r.values[inputs_[i]] = &inputs[i].storage().values;
    }

    for (std::size_t n = 0; n < nodes_.size(); ++n) {
        const Node& node = nodes_[n];
        std::vector<const detail::Array*>& pointers = r.node_inputs[n];
        for (std::size_t i = 0; i < node.inputs.size(); ++i) {
            pointers[i] = r.values[node.inputs[i]];
        }
        detail::Storage& out = *r.buffers[node.output];
        node.op->forward(OpArgs(node.op->info.name, pointers, node.attrs), out.values);
        ++out.version;
        if (detail::anomaly_enabled() && detail::has_non_finite(out.values)) {
            throw anomaly_error("Graph::forward: node " + std::to_string(n) + " (%" +
                                std::to_string(node.output) + " = " + node.op->info.name +
                                ") produced NaN or infinity; input shapes " +
                                detail::shapes_string(pointers) +
                                detail::non_finite_input_note(pointers));
        }
    }

    for (std::size_t i = 0; i < outputs_.size(); ++i) {
        const Value& v = value(outputs_[i]);
        if (v.kind == ValueKind::input) {
            r.outputs[i] = inputs[static_cast<std::size_t>(
                std::find(inputs_.begin(), inputs_.end(), outputs_[i]) - inputs_.begin())];
        } else if (v.kind != ValueKind::op) {
            r.outputs[i] = v.tensor;
        }
    }
    r.has_forward = true;
    return r.outputs;
}

Tensor Graph::value_tensor(std::size_t id) const {
    const Value& v = value(id);
    if (!replay_ || !replay_->has_forward) {
        throw autograd_error("Graph::value_tensor: run forward() first");
    }
    switch (v.kind) {
        case ValueKind::op:
            return Tensor(std::make_shared<detail::TensorImpl>(replay_->buffers[id]));
        case ValueKind::input: {
            const auto position = std::find(inputs_.begin(), inputs_.end(), id) - inputs_.begin();
            return replay_->held_inputs[static_cast<std::size_t>(position)];
        }
        default:
            return v.tensor;
    }
}

void Graph::backward() {
    if (outputs_.empty()) {
        throw value_error("Graph::backward: the graph has no outputs");
    }
    const Value& output = value(outputs_[0]);
    if (shape_size(output.shape) != 1) {
        throw shape_error("Graph::backward: without a gradient argument the first output must "
                          "have one element, but it has shape " + shape_string(output.shape));
    }
    if (!replay_ || !replay_->has_forward) {
        throw autograd_error("Graph::backward: run forward() first");
    }
    Replay& r = *replay_;
    if (r.grads.empty() || r.grads[outputs_[0]].empty()) {
        r.grads.resize(values_.size());
        r.grads[outputs_[0]] = detail::Array::full(output.dtype, output.shape, 1.0);
    } else {
        detail::visit_dtype(output.dtype, [&](auto zero) {
            using T = decltype(zero);
            r.grads[outputs_[0]].get<T>().fill(T(1));
        });
    }
    backward(Tensor());
}

void Graph::backward(const Tensor& grad_output) {
    if (!replay_ || !replay_->has_forward) {
        throw autograd_error("Graph::backward: run forward() first");
    }
    Replay& r = *replay_;
    const std::size_t root = outputs_.at(0);

    if (r.needs_grad.empty()) {
        // Which values lead to a parameter that requires grad, and how many
        // places read each value (a value read once gets its gradient written
        // directly by the VJP; a shared one sums the contributions).
        r.needs_grad.assign(values_.size(), 0);
        r.uses.assign(values_.size(), 0);
        for (std::size_t id = 0; id < values_.size(); ++id) {
            const Value& v = values_[id];
            if (v.kind == ValueKind::parameter && v.tensor.requires_grad()) {
                r.needs_grad[id] = 1;
            }
        }
        for (const Node& node : nodes_) {
            for (std::size_t input : node.inputs) {
                ++r.uses[input];
                if (r.needs_grad[input] && node.op->vjp != nullptr) {
                    r.needs_grad[node.output] = 1;
                }
            }
        }
        for (std::size_t id : outputs_) {
            ++r.uses[id];
        }
        r.grads.resize(values_.size());
        r.grad_set.assign(values_.size(), 0);
        r.slots.resize(nodes_.size());
        r.slot_pointers.resize(nodes_.size());
        for (std::size_t n = 0; n < nodes_.size(); ++n) {
            r.slots[n].resize(nodes_[n].inputs.size());
            r.slot_pointers[n].assign(nodes_[n].inputs.size(), nullptr);
        }
        r.parameter_grads.resize(values_.size());
    }

    std::fill(r.grad_set.begin(), r.grad_set.end(), 0);
    const Value& root_value = value(root);
    if (grad_output.defined()) {
        if (grad_output.shape() != root_value.shape || grad_output.dtype() != root_value.dtype) {
            throw shape_error("Graph::backward: the gradient is " +
                              std::string(dtype_name(grad_output.dtype())) + " " +
                              shape_string(grad_output.shape()) + " but the output is " +
                              dtype_name(root_value.dtype) + " " + shape_string(root_value.shape));
        }
        ensure_array(r.grads[root], root_value.dtype, root_value.shape);
        copy_into(r.grads[root], grad_output.storage().values);
    }
    r.grad_set[root] = 1;

    NoGradGuard no_grad;
    for (std::size_t n = nodes_.size(); n-- > 0;) {
        const Node& node = nodes_[n];
        if (!r.grad_set[node.output] || node.op->vjp == nullptr) {
            continue;
        }
        bool any = false;
        for (std::size_t i = 0; i < node.inputs.size(); ++i) {
            const std::size_t input = node.inputs[i];
            detail::Array* slot = nullptr;
            if (r.needs_grad[input]) {
                slot = r.uses[input] == 1 ? &r.grads[input] : &r.slots[n][i];
                any = true;
            }
            r.slot_pointers[n][i] = slot;
        }
        if (!any) {
            continue;
        }
        VjpArgs args(node.op->info.name, r.node_inputs[n], node.attrs,
                     &r.buffers[node.output]->values, r.grads[node.output], r.slot_pointers[n]);
        node.op->vjp(args);

        for (std::size_t i = 0; i < node.inputs.size(); ++i) {
            detail::Array* slot = r.slot_pointers[n][i];
            if (slot == nullptr) {
                continue;
            }
            const std::size_t input = node.inputs[i];
            const Value& v = value(input);
            if (detail::anomaly_enabled() && detail::has_non_finite(*slot)) {
                throw anomaly_error("Graph::backward: the VJP of node " + std::to_string(n) + " (%" +
                                    std::to_string(node.output) + " = " + node.op->info.name +
                                    ") returned NaN or infinity for input " + std::to_string(i));
            }
            if (slot->empty() || slot->shape() != v.shape || slot->dtype() != v.dtype) {
                throw shape_error(std::string(node.op->info.name) +
                                  ": the VJP returned a gradient that does not match input " +
                                  std::to_string(i) + " (" + dtype_name(v.dtype) + " " +
                                  shape_string(v.shape) + ")");
            }
            if (slot == &r.grads[input]) {
                r.grad_set[input] = 1;
            } else if (!r.grad_set[input]) {
                ensure_array(r.grads[input], v.dtype, v.shape);
                copy_into(r.grads[input], *slot);
                r.grad_set[input] = 1;
            } else {
                add_into(r.grads[input], *slot);
            }
        }
    }

    // Hand the gradients to the parameters as eager backward() does: add to
    // an existing grad(), or install the graph's own gradient tensor.
    for (std::size_t id = 0; id < values_.size(); ++id) {
        if (values_[id].kind != ValueKind::parameter || !r.grad_set[id]) {
            continue;
        }
        Tensor parameter = values_[id].tensor;
        const Tensor existing = parameter.grad();
        if (existing.defined()) {
            detail::Storage& target = existing.storage();
            add_into(target.values, r.grads[id]);
            ++target.version;
            continue;
        }
        Tensor& installed = r.parameter_grads[id];
        if (!installed.defined()) {
            installed = Tensor(detail::Array::uninitialized(values_[id].dtype, values_[id].shape));
        }
        copy_into(installed.storage().values, r.grads[id]);
        ++installed.storage().version;
        parameter.set_grad(installed);
    }
}

}  // namespace xgrad

#include "xgrad/graph/capture.hpp"

#include <unordered_map>

#include "autograd/tape.hpp"

namespace xgrad {

namespace {

struct NamedLeaf {
    ValueKind kind;
    std::string name;
};

}  // namespace

Graph capture(const CapturedFunction& function, const std::vector<Tensor>& example_inputs,
              const nn::Module* module) {
    std::vector<Tensor> outputs;
    {
        detail::CaptureGuard capturing;
        outputs = function(example_inputs);
    }
    if (outputs.empty()) {
        throw value_error("capture: the function returned no tensors");
    }

    Graph graph;
    // Leaves by identity: the inputs first, then the module's tensors.
    std::unordered_map<const detail::TensorImpl*, std::size_t> leaf_values;
    std::vector<std::size_t> input_ids;
    for (std::size_t i = 0; i < example_inputs.size(); ++i) {
        const Tensor& input = example_inputs[i];
        if (!input.defined()) {
            throw value_error("capture: example input " + std::to_string(i) + " is undefined");
        }
        Value value;
        value.kind = ValueKind::input;
        value.name = "x" + std::to_string(i);
        value.shape = input.shape();
        value.dtype = input.dtype();
        const std::size_t id = graph.add_value(std::move(value));
        input_ids.push_back(id);
        leaf_values.emplace(input.impl().get(), id);
    }
    graph.set_inputs(input_ids);

    std::unordered_map<const detail::TensorImpl*, NamedLeaf> module_leaves;
    if (module != nullptr) {
        for (const auto& [name, tensor] : module->named_parameters()) {
            module_leaves.emplace(tensor.impl().get(), NamedLeaf{ValueKind::parameter, name});
        }
        for (const auto& [name, tensor] : module->named_buffers()) {
            module_leaves.emplace(tensor.impl().get(), NamedLeaf{ValueKind::buffer, name});
        }
    }

    // Mark the records a backward from the outputs would visit, stopping at
    // the inputs, as recorded_history() does.
    detail::Tape& tape = detail::current_tape();
    std::vector<bool> reached(tape.size(), false);
    auto on_tape = [&](const detail::TensorImpl& impl) {
        return impl.tape == &tape && leaf_values.count(&impl) == 0;
    };
    for (const Tensor& output : outputs) {
        if (on_tape(*output.impl())) {
            reached[output.impl()->record] = true;
        }
    }
    for (std::size_t i = reached.size(); i-- > 0;) {
        if (!reached[i]) {
            continue;
        }
        for (const auto& input : tape.record(i).inputs) {
            if (on_tape(*input)) {
                reached[input->record] = true;
            }
        }
    }

    auto value_of = [&](const std::shared_ptr<detail::TensorImpl>& impl) -> std::size_t {
        auto found = leaf_values.find(impl.get());
        if (found != leaf_values.end()) {
            return found->second;
        }
        Value value;
        value.tensor = Tensor(impl);
        auto named = module_leaves.find(impl.get());
        if (named != module_leaves.end()) {
            value.kind = named->second.kind;
            value.name = named->second.name;
        } else if (impl->requires_grad) {
            value.kind = ValueKind::parameter;
            value.name = "p" + std::to_string(graph.values().size());
        } else {
            value.kind = ValueKind::constant;
        }
        const std::size_t id = graph.add_value(std::move(value));
        leaf_values.emplace(impl.get(), id);
        return id;
    };

    std::unordered_map<std::size_t, std::size_t> record_values;  // record index -> value id
    for (std::size_t i = 0; i < reached.size(); ++i) {
        if (!reached[i]) {
            continue;
        }
        const detail::Record& record = tape.record(i);
        std::vector<std::size_t> inputs;
        for (const auto& input : record.inputs) {
            inputs.push_back(on_tape(*input) ? record_values.at(input->record) : value_of(input));
        }
        record_values.emplace(i, graph.add_node(*record.op, std::move(inputs), record.attrs));
    }

    std::vector<std::size_t> output_ids;
    for (const Tensor& output : outputs) {
        output_ids.push_back(on_tape(*output.impl()) ? record_values.at(output.impl()->record)
                                                      : value_of(output.impl()));
    }
    graph.set_outputs(output_ids);
    return graph;
}

Graph capture(nn::Module& module, const Tensor& example_input) {
    return capture([&](const std::vector<Tensor>& inputs) { return std::vector<Tensor>{module(inputs[0])}; },
                   {example_input}, &module);
}

}  // namespace xgrad

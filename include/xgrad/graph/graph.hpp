#pragma once

// Graph: a captured computation as a small program of op nodes over values.
//
// capture() (capture.hpp) runs a function once on example inputs and turns
// what the tape recorded into a Graph. A graph can then be
//   - replayed: forward() and backward() on new inputs of the same shapes give
//     the values and gradients that eager mode gives, reusing the graph's
//     buffers so that a replayed training step allocates nothing;
//   - inspected: to_string() lists it, to_dot() draws it with Graphviz;
//   - rewritten by passes (passes.hpp): pruning, quantization, folding.
//
// Values are numbered in creation order. A value is one of
//   input      a tensor passed to forward() at each replay;
//   parameter  a trained tensor (a module's parameter), read at each replay,
//              so optimizer updates take effect; backward() accumulates its
//              gradient into the tensor's grad();
//   buffer     a module's buffer, read at each replay, never trained;
//   constant   any other tensor the function read (a scalar operand, a mask);
//   op         the output of a node.
// Nodes are in execution order: every node's inputs are values created
// before its output.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/op.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad {

enum class ValueKind { input, parameter, buffer, constant, op };

/// Returns "input", "parameter", "buffer", "constant" or "op".
const char* value_kind_name(ValueKind kind);

struct Value {
    ValueKind kind = ValueKind::op;
    std::string name;  ///< parameter and buffer names as in the module, "x0" for inputs
    Shape shape;
    Dtype dtype = Dtype::float32;
    /// The tensor of a parameter, buffer or constant; undefined for inputs
    /// and op values.
    Tensor tensor;
    /// The node that computes an op value.
    std::size_t node = 0;
};

struct Node {
    const OpDef* op = nullptr;
    OpAttrs attrs;
    std::vector<std::size_t> inputs;  ///< value ids
    std::size_t output = 0;           ///< value id
};

class Graph {
public:
    Graph();
    ~Graph();
    Graph(const Graph& other);
    Graph& operator=(const Graph& other);
    Graph(Graph&&) noexcept;
    Graph& operator=(Graph&&) noexcept;

    // --- structure ----------------------------------------------------------

    const std::vector<Value>& values() const { return values_; }
    const std::vector<Node>& nodes() const { return nodes_; }
    const std::vector<std::size_t>& inputs() const { return inputs_; }
    const std::vector<std::size_t>& outputs() const { return outputs_; }
    const Value& value(std::size_t id) const { return values_.at(id); }
    Value& value(std::size_t id) { return values_.at(id); }

    /// Adds a leaf value (input, parameter, buffer or constant) and returns its id.
    std::size_t add_value(Value value);

    /// Appends a node computing `op` on existing values. Runs the op's shape
    /// rule to fix the output's shape and dtype (throwing its errors), and
    /// returns the new output's value id. To place a node before other nodes,
    /// build a new graph in the desired order, as passes do.
    std::size_t add_node(const OpDef& op, std::vector<std::size_t> inputs, OpAttrs attrs = {});

    void set_outputs(std::vector<std::size_t> outputs);
    void set_inputs(std::vector<std::size_t> inputs);

    /// Makes every node input and graph output that reads `from` read `to`
    /// instead, except in the node that computes `to` itself.
    void replace_uses(std::size_t from, std::size_t to);

    /// The value ids of parameters, in value order.
    std::vector<std::size_t> parameter_values() const;

    /// Value id of the parameter or buffer with this name; throws value_error
    /// listing the names when there is none.
    std::size_t find_value(const std::string& name) const;

    // --- replay -------------------------------------------------------------

    /// Runs the graph on `inputs`, which must match the captured inputs in
    /// number, shape and dtype (value_error or shape_error otherwise). Returns
    /// the outputs as tensors that the graph owns and overwrites on the next
    /// forward(); clone() one to keep it. Records nothing on the tape.
    const std::vector<Tensor>& forward(const std::vector<Tensor>& inputs);

    /// The value `id` held in the last forward(), as a tensor sharing the
    /// graph's buffer (the next forward() overwrites it). For observing
    /// intermediate values, as quantization calibration does. Throws
    /// autograd_error when forward() has not run.
    Tensor value_tensor(std::size_t id) const;

    /// Computes gradients of the first output, which must have one element,
    /// through the last forward(), and accumulates them into the grad() of
    /// every parameter that requires grad, exactly as eager backward() does.
    /// Throws autograd_error when forward() has not run.
    void backward();

    /// Same, seeding the first output's gradient with `grad_output`.
    void backward(const Tensor& grad_output);

    // --- inspection ---------------------------------------------------------

    /// A readable listing: one line per value and node, with shapes.
    std::string to_string() const;

    /// The graph in Graphviz DOT: a box per node with its op, attributes and
    /// output shape, an oval per leaf value, parameters filled.
    std::string to_dot(const std::string& title = "xgrad") const;

private:
    struct Replay;

    void check_structure() const;

    std::vector<Value> values_;
    std::vector<Node> nodes_;
    std::vector<std::size_t> inputs_;
    std::vector<std::size_t> outputs_;
    std::unique_ptr<Replay> replay_;  ///< buffers of forward() and backward(), built lazily
};

}  // namespace xgrad

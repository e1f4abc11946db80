#pragma once

// Buffers of a graph's replay, kept between forward() and backward() calls.

#include <memory>
#include <vector>

#include "xgrad/graph/graph.hpp"

namespace xgrad {

struct Graph::Replay {
    /// Per value: its storage during replay. Op values own theirs; the
    /// entries of leaves stay null and `values` points at their tensors.
    std::vector<std::shared_ptr<detail::Storage>> buffers;
    /// Per value: the array forward() reads, refreshed at each forward().
    std::vector<const detail::Array*> values;
    /// Per node: pointers to its input arrays, filled at each forward().
    std::vector<std::vector<const detail::Array*>> node_inputs;
    /// Tensors that share the output buffers, returned by forward().
    std::vector<Tensor> outputs;
    /// The inputs of the last forward(), kept alive for backward().
    std::vector<Tensor> held_inputs;
    bool has_forward = false;

    // Backward state.
    std::vector<char> needs_grad;  ///< per value
    std::vector<std::size_t> uses; ///< per value: node inputs and graph outputs reading it
    std::vector<detail::Array> grads;  ///< per value
    std::vector<char> grad_set;        ///< per value: written during this backward()
    std::vector<std::vector<detail::Array>> slots;  ///< per node input, for shared values
    std::vector<std::vector<detail::Array*>> slot_pointers;
    /// Per parameter value: the tensor installed as its grad() when it had none.
    std::vector<Tensor> parameter_grads;
};

}  // namespace xgrad

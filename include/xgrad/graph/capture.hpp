#pragma once

// capture(): running a computation once and keeping it as a Graph.

#include <functional>
#include <vector>

#include "xgrad/graph/graph.hpp"
#include "xgrad/nn/module.hpp"

namespace xgrad {

using CapturedFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

/// Runs `function` on `example_inputs` with every op recorded, and returns
/// the computation from the inputs to the returned tensors as a Graph. The
/// graph's inputs are the example inputs, in order, named "x0", "x1", ...
/// Tensors the function reads besides its inputs become parameters when they
/// are parameters of `module` (named as in module.named_parameters()) or
/// otherwise require grad (named "p<id>"), buffers when they are buffers of
/// `module`, and constants otherwise.
///
/// NOTE: the graph holds what the function computed on this call, so control
/// flow that depends on values, and random draws made outside ops (such as
/// Dropout's mask), are frozen into the graph as they were during capture.
Graph capture(const CapturedFunction& function, const std::vector<Tensor>& example_inputs,
              const nn::Module* module = nullptr);

/// Captures module.forward(example_input): one input, one output.
Graph capture(nn::Module& module, const Tensor& example_input);

}  // namespace xgrad

#pragma once

// Graph capture, replay and transforms.

#include "xgrad/graph/capture.hpp"
#include "xgrad/graph/graph.hpp"
#include "xgrad/graph/passes.hpp"
#include "xgrad/graph/sparsify.hpp"

#pragma once

// Graph transforms: namespace xgrad::transforms.

#include "xgrad/transforms/prune.hpp"
#include "xgrad/transforms/quantize.hpp"

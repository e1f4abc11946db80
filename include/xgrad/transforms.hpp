#pragma once

// Graph transforms: namespace xgrad::transforms.

#include "xgrad/transforms/channels.hpp"
#include "xgrad/transforms/fold.hpp"
#include "xgrad/transforms/prune.hpp"
#include "xgrad/transforms/quantize.hpp"

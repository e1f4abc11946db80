#pragma once

// Data-parallel training over MPI: namespace xgrad::distributed, in the
// library target xgrad::distributed. See docs/distributed.md.

#include "xgrad/distributed/checkpoint.hpp"
#include "xgrad/distributed/context.hpp"
#include "xgrad/distributed/federated_averaging.hpp"
#include "xgrad/distributed/gradient_averager.hpp"
#include "xgrad/distributed/parameters.hpp"

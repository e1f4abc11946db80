#pragma once

// Data loading: namespace xgrad::data.

#include "xgrad/data/augment.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/data/fashion_mnist.hpp"
#include "xgrad/data/idx.hpp"

#pragma once

// Quantization: parameters, observers and fake quantization.

#include "xgrad/ops/fake_quant.hpp"
#include "xgrad/quant/observer.hpp"
#include "xgrad/quant/qparams.hpp"

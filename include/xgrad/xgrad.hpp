#pragma once

// The whole public API of xgrad in one include.

#include "xgrad/autograd.hpp"
#include "xgrad/checkpoint.hpp"
#include "xgrad/data.hpp"
#include "xgrad/dtype.hpp"
#include "xgrad/error.hpp"
#include "xgrad/gradcheck.hpp"
#include "xgrad/io.hpp"
#include "xgrad/nn.hpp"
#include "xgrad/op.hpp"
#include "xgrad/optim.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/binary.hpp"
#include "xgrad/ops/index.hpp"
#include "xgrad/ops/linalg.hpp"
#include "xgrad/ops/loss.hpp"
#include "xgrad/ops/reduce.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/ops/unary.hpp"
#include "xgrad/random.hpp"
#include "xgrad/tensor.hpp"

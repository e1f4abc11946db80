#pragma once

// The optimizers, gradient clipping and learning-rate schedulers of
// xgrad::optim in one include.

#include "xgrad/optim/adagrad.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/clip.hpp"
#include "xgrad/optim/optimizer.hpp"
#include "xgrad/optim/rmsprop.hpp"
#include "xgrad/optim/scheduler.hpp"
#include "xgrad/optim/sgd.hpp"

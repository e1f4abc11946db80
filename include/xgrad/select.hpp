#pragma once

// Model selection: namespace xgrad::select. Splitters (k-fold, stratified
// k-fold, holdout), cross-validation of a model factory, and grid and random
// search over hyperparameters with a ranked table and a refit of the best
// configuration. docs/model-selection.md shows them at work.

#include "xgrad/select/cross_validate.hpp"
#include "xgrad/select/params.hpp"
#include "xgrad/select/search.hpp"
#include "xgrad/select/split.hpp"

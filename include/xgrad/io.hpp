#pragma once

// Saving and loading tensors: NumPy .npy and .npz files, written atomically.

#include "xgrad/io/file.hpp"
#include "xgrad/io/npy.hpp"
#include "xgrad/io/npz.hpp"

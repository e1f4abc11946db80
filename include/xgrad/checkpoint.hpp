#pragma once

// Saving and loading models and training state as NumPy .npz archives, which
// numpy.load reads. Every save writes a temporary file and renames it over
// the target, so an interrupted save leaves the previous file intact.

#include <filesystem>

#include "xgrad/io/npz.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/optim/optimizer.hpp"
#include "xgrad/random.hpp"

namespace xgrad {

/// Saves a model's parameters and buffers under their state_dict() names,
/// such as "layers.0.weight".
void save_model(const nn::Module& model, const std::filesystem::path& path);

/// Loads values saved by save_model() into `model`. A mismatch throws
/// value_error naming the file and listing every missing, unexpected or
/// mismatched entry, and an unreadable file throws io_error. In both cases
/// the model is left exactly as it was.
void load_model(nn::Module& model, const std::filesystem::path& path);

/// Saves a training checkpoint: the model's state under "model.<name>", the
/// optimizer's under "optimizer.<name>", and any `extra` tensors (epoch
/// counters, generator states) under "extra.<name>".
void save_checkpoint(const std::filesystem::path& path, const nn::Module& model,
                     const optim::Optimizer& optimizer, const io::NamedTensors& extra = {});

/// Restores a checkpoint written by save_checkpoint() and returns its extra
/// tensors, with the "extra." prefix removed. Model and optimizer change
/// together or not at all: on any mismatch it throws value_error listing the
/// problems and leaves both untouched.
io::NamedTensors load_checkpoint(const std::filesystem::path& path, nn::Module& model,
                                 optim::Optimizer& optimizer);

/// A generator's state as an int64 tensor of four words, for `extra`.
Tensor generator_state(const Generator& generator);

/// Restores a state saved by generator_state(). Throws value_error for a
/// tensor of another shape or dtype.
void set_generator_state(Generator& generator, const Tensor& state);

}  // namespace xgrad

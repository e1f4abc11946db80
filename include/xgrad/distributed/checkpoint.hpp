#pragma once

// Checkpoints in a data-parallel run. The ranks hold equal parameters and
// optimizer states (GradientAverager keeps them equal), so rank 0 alone
// writes the file, in the format of xgrad/checkpoint.hpp. The file contains
// nothing that depends on the number of ranks, so a run can resume from it
// on any number of ranks. docs/distributed.md shows what a resumed loop
// restores.
//
// To resume, every rank calls xgrad::load_checkpoint() on the same file,
// which every rank must be able to read (a shared file system, or a copy on
// each machine).

#include <filesystem>

#include "xgrad/checkpoint.hpp"
#include "xgrad/distributed/context.hpp"

namespace xgrad::distributed {

/// Writes xgrad::save_checkpoint(path, model, optimizer, extra) on rank 0
/// only. Every rank must call it, and every rank returns once the file is
/// complete. When rank 0 fails, rank 0 rethrows its exception and every
/// other rank throws io_error with rank 0's message.
void save_checkpoint(const Context& context, const std::filesystem::path& path,
                     const nn::Module& model, const optim::Optimizer& optimizer,
                     const io::NamedTensors& extra = {});

/// Writes xgrad::save_model(model, path) on rank 0 only, with the same
/// waiting and errors as save_checkpoint().
void save_model(const Context& context, const nn::Module& model,
                const std::filesystem::path& path);

}  // namespace xgrad::distributed

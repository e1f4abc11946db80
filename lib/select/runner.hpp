#pragma once

// Runs independent training runs on worker threads for cross_validate() and
// the searches.

#include <cstddef>
#include <functional>
#include <vector>

#include "xgrad/select/cross_validate.hpp"

namespace xgrad::select::detail {

/// Runs task(i) for every i in [0, count) on min(threads, count) new
/// threads, which take the indices in ascending order. Calls on_done(i) on
/// the calling thread after task i returns, one call at a time, in the order
/// the tasks finish. When a task or on_done throws, no further task starts.
/// Once every thread has stopped, the exception of the lowest failed task
/// index propagates, or else the one from on_done. OpenBLAS runs
/// single-threaded until then. The workers take the caller's anomaly mode.
void run_tasks(std::size_t count, std::size_t threads, const std::function<void(std::size_t)>& task,
               const std::function<void(std::size_t)>& on_done);

/// `threads`, with 0 replaced by std::thread::hardware_concurrency() (1 when
/// that is unknown).
std::size_t resolve_thread_count(std::size_t threads);

/// A dataset whose tensors share values with `dataset` but carry no
/// history, so worker threads can read them.
data::TensorDataset detached(const data::TensorDataset& dataset);

/// Counts runs and examples across the phases of one call, for FitProgress.
struct ProgressCounter {
    std::size_t total = 0;
    std::size_t completed = 0;
    std::size_t examples = 0;
};

/// Cross-validates every candidate on the same folds: one task per
/// (candidate, fold), candidate-major. Fold f of every candidate calls the
/// factory with derive_seed(options.seed, f) on a thread whose default
/// generator was reseeded with that seed. `dataset` must be detached.
/// Reports each finished run through options.on_progress with `counter`.
std::vector<CrossValidationResult> cross_validate_candidates(const ModelFactory& factory,
                                                             const std::vector<Params>& candidates,
                                                             const data::TensorDataset& dataset,
                                                             const std::vector<Fold>& folds,
                                                             const CrossValidateOptions& options,
                                                             ProgressCounter& counter);

}  // namespace xgrad::select::detail

#pragma once

// Context: the MPI environment of a data-parallel run. It is part of the
// separate library xgrad::distributed, which links Open MPI (or another MPI);
// the core xgrad library does not need MPI. These headers do not include
// <mpi.h>, so a program that uses them needs MPI only at link time.
//
// A program creates one Context at the start of main() and passes it by
// reference to the rest of xgrad::distributed:
//
//     int main() {
//         xgrad::distributed::Context context;
//         ...
//     }
//
// Started by `mpirun -np N program`, each of the N processes (ranks) gets a
// context with rank() 0 .. N - 1 and size() N. Started without mpirun, the
// program runs as a single rank of size 1 (MPI's singleton mode), so the same
// program serves both cases.

#include <cstddef>
#include <memory>

namespace xgrad::distributed {

class Context {
public:
    /// Initialises MPI (MPI_Init_thread with MPI_THREAD_FUNNELED: only the
    /// thread that created the context calls MPI) unless the program has
    /// done so already, and duplicates MPI_COMM_WORLD, so the library's
    /// messages never match the program's own MPI calls. Throws
    /// distributed_error when MPI was already finalized, because MPI cannot
    /// be initialised twice in one process.
    Context();

    /// Frees the communicator, and finalizes MPI if this context
    /// initialised it. Other contexts (from split()) must be destroyed first.
    ~Context();

    Context(Context&& other) noexcept;
    Context& operator=(Context&&) = delete;
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    /// This process's index among the ranks, 0 .. size() - 1.
    std::size_t rank() const;

    /// Number of ranks.
    std::size_t size() const;

    /// True on rank 0, the rank that writes checkpoints and prints progress.
    bool is_root() const { return rank() == 0; }

    /// Returns once every rank has called it.
    void barrier() const;

    /// A context over the ranks of this one that pass the same `color`,
    /// numbered in the order of their ranks here (MPI_Comm_split). Every
    /// rank must call it. Passing the rank as the color gives each rank a
    /// context of size 1.
    Context split(std::size_t color) const;

    /// The MPI state, for the library's sources (lib/distributed/mpi.hpp).
    struct Impl;
    const Impl& impl() const { return *impl_; }

private:
    explicit Context(std::unique_ptr<Impl> impl);

    std::unique_ptr<Impl> impl_;
};

/// Sums `value` over every rank and returns the sum on every rank, for
/// metrics such as a loss total or a count of correct predictions.
double all_reduce_sum(const Context& context, double value);

}  // namespace xgrad::distributed

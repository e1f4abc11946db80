#pragma once

// The MPI state behind distributed::Context, for the sources of
// xgrad::distributed only: the public headers do not include <mpi.h>.

#include <mpi.h>

#include "xgrad/distributed/context.hpp"

namespace xgrad::distributed {

struct Context::Impl {
    MPI_Comm communicator = MPI_COMM_NULL;
    int rank = 0;
    int size = 1;
    /// True for the context that called MPI_Init_thread, which finalizes MPI.
    bool finalizes = false;
};

namespace detail {

inline MPI_Comm communicator(const Context& context) { return context.impl().communicator; }

}  // namespace detail

}  // namespace xgrad::distributed

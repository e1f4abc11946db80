// Test runner of the xgrad::distributed suite. Every rank runs every test
// case: ctest starts it once without mpirun (one rank) and once under
// `mpirun -np 2`. MPI is initialised before the first test case and
// finalized after the last, because MPI cannot be initialised twice.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "distributed_testing.hpp"

namespace {

xgrad::distributed::Context* world = nullptr;

}  // namespace

namespace xgrad::testing {

const distributed::Context& world_context() { return *world; }

}  // namespace xgrad::testing

int main(int argc, char** argv) {
    xgrad::distributed::Context context;
    world = &context;

    doctest::Context runner;
    runner.applyCommandLine(argc, argv);
    const int result = runner.run();
    if (runner.shouldExit()) {
        return result;
    }
    // A failure on any rank fails every rank, so the exit status does not
    // depend on which rank mpirun reports.
    const double failed_ranks = xgrad::distributed::all_reduce_sum(context, result != 0 ? 1.0 : 0.0);
    return failed_ranks > 0.0 ? 1 : 0;
}

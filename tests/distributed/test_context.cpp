#include <cstdlib>
#include <string>

#include "distributed_testing.hpp"

using namespace xgrad;
using xgrad::testing::world_context;

TEST_SUITE("distributed context") {
    TEST_CASE("size matches the launch") {
        // ctest sets XGRAD_TEST_RANKS to the number of processes it starts,
        // so a launch that silently gives every process its own world of
        // size 1 fails here instead of passing every other test trivially.
        const char* expected = std::getenv("XGRAD_TEST_RANKS");
        if (expected != nullptr) {
            CHECK(world_context().size() == std::stoul(expected));
        }
        CHECK(world_context().rank() < world_context().size());
        CHECK(world_context().is_root() == (world_context().rank() == 0));
    }

    TEST_CASE("all_reduce_sum adds every rank's value") {
        const auto& context = world_context();
        const double n = static_cast<double>(context.size());
        const double sum =
            distributed::all_reduce_sum(context, static_cast<double>(context.rank()) + 1.0);
        CHECK(sum == n * (n + 1.0) / 2.0);
        context.barrier();
    }

    TEST_CASE("split by rank gives contexts of size 1") {
        const auto& context = world_context();
        const distributed::Context alone = context.split(context.rank());
        CHECK(alone.size() == 1);
        CHECK(alone.rank() == 0);
        CHECK(distributed::all_reduce_sum(alone, 2.5) == 2.5);
    }

    TEST_CASE("split with one color keeps the ranks") {
        const auto& context = world_context();
        const distributed::Context same = context.split(7);
        CHECK(same.size() == context.size());
        CHECK(same.rank() == context.rank());
    }

    TEST_CASE("a second context shares the running MPI") {
        const distributed::Context second;
        CHECK(second.size() == world_context().size());
        CHECK(distributed::all_reduce_sum(second, 1.0) ==
              static_cast<double>(world_context().size()));
    }
}

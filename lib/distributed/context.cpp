#include "xgrad/distributed/context.hpp"

#include <limits>
#include <string>

#include "mpi.hpp"
#include "xgrad/error.hpp"

namespace xgrad::distributed {

Context::Context() : impl_(std::make_unique<Impl>()) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) {
        throw distributed_error("distributed::Context: MPI was already finalized in this process, "
                                "and MPI cannot be initialised twice; create one Context at the "
                                "start of main() and keep it until the end");
    }
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized == 0) {
        int provided = 0;
        if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            throw distributed_error("distributed::Context: MPI_Init_thread failed");
        }
        impl_->finalizes = true;
    }
    // MPI's default error handler aborts every rank on a communication
    // error, which is better than leaving the other ranks waiting forever.
    MPI_Comm_dup(MPI_COMM_WORLD, &impl_->communicator);
    MPI_Comm_rank(impl_->communicator, &impl_->rank);
    MPI_Comm_size(impl_->communicator, &impl_->size);
}

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Context::Context(Context&& other) noexcept = default;

Context::~Context() {
    if (!impl_) {
        return;
    }
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) {
        return;
    }
    if (impl_->communicator != MPI_COMM_NULL) {
        MPI_Comm_free(&impl_->communicator);
    }
    if (impl_->finalizes) {
        MPI_Finalize();
    }
}

std::size_t Context::rank() const { return static_cast<std::size_t>(impl_->rank); }

std::size_t Context::size() const { return static_cast<std::size_t>(impl_->size); }

void Context::barrier() const { MPI_Barrier(impl_->communicator); }

Context Context::split(std::size_t color) const {
    if (color > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw value_error("distributed::Context::split: color must fit in an int, got " +
                          std::to_string(color));
    }
    auto impl = std::make_unique<Impl>();
    MPI_Comm_split(impl_->communicator, static_cast<int>(color), impl_->rank, &impl->communicator);
    MPI_Comm_rank(impl->communicator, &impl->rank);
    MPI_Comm_size(impl->communicator, &impl->size);
    return Context(std::move(impl));
}

double all_reduce_sum(const Context& context, double value) {
    double sum = value;
    MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, detail::communicator(context));
    return sum;
}

}  // namespace xgrad::distributed

#include "xgrad/distributed/checkpoint.hpp"

#include <exception>
#include <functional>
#include <string>

#include "mpi.hpp"
#include "xgrad/error.hpp"

namespace xgrad::distributed {

namespace {

// Runs `save` on rank 0 and sends its outcome to every rank: rank 0 rethrows
// its own exception, the others throw io_error with its message. A plain
// barrier would leave the other ranks waiting forever if rank 0 threw.
void save_on_root(const Context& context, const char* caller,
                  const std::filesystem::path& path, const std::function<void()>& save) {
    std::exception_ptr failure;
    std::string message;
    if (context.is_root()) {
        try {
            save();
        } catch (const std::exception& error) {
            failure = std::current_exception();
            message = error.what();
            if (message.empty()) {
                message = "unknown error";
            }
        }
    }
    const MPI_Comm comm = detail::communicator(context);
    int length = static_cast<int>(message.size());
    MPI_Bcast(&length, 1, MPI_INT, 0, comm);
    if (length == 0) {
        return;
    }
    message.resize(static_cast<std::size_t>(length));
    MPI_Bcast(message.data(), length, MPI_CHAR, 0, comm);
    if (failure) {
        std::rethrow_exception(failure);
    }
    throw io_error(std::string(caller) + ": rank 0 failed to write '" + path.string() +
                   "': " + message);
}

}  // namespace

void save_checkpoint(const Context& context, const std::filesystem::path& path,
                     const nn::Module& model, const optim::Optimizer& optimizer,
                     const io::NamedTensors& extra) {
    save_on_root(context, "distributed::save_checkpoint", path,
                 [&path, &model, &optimizer, &extra] { xgrad::save_checkpoint(path, model, optimizer, extra); });
}

void save_model(const Context& context, const nn::Module& model,
                const std::filesystem::path& path) {
    save_on_root(context, "distributed::save_model", path,
                 [&model, &path] { xgrad::save_model(model, path); });
}

}  // namespace xgrad::distributed

#include "select/runner.hpp"

#include <dlfcn.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "xgrad/autograd.hpp"

namespace xgrad::select::detail {

namespace {

// Limits OpenBLAS to one thread while the scope lasts, for two reasons.
// OpenBLAS threads on top of the worker threads oversubscribe the cores: on
// a 2-core machine, examples/tune_hyperparameters (4,000 images, 2 folds, 2
// workers) trained 12,000 examples per second with OpenBLAS's default thread
// count and 78,000 with one. And OpenBLAS's results for some shapes change
// with its thread count, which would make the results depend on the number
// of workers.
// The setting is process-wide. It is looked up by name, so nothing changes
// when xgrad uses another BLAS, and it is restored afterwards.
// NOTE: other threads of the program that call BLAS during a search also run
// single-threaded until it returns.
class SingleThreadedBlas {
  public:
    SingleThreadedBlas() {
        if (functions().set != nullptr) {
            saved_ = functions().get();
            functions().set(1);
        }
    }
    ~SingleThreadedBlas() {
        if (functions().set != nullptr) {
            functions().set(saved_);
        }
    }
    SingleThreadedBlas(const SingleThreadedBlas&) = delete;
    SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

  private:
    struct Functions {
        int (*get)() = nullptr;
        void (*set)(int) = nullptr;
    };

    static const Functions& functions() {
        static const Functions found = [] {
            Functions result;
            auto* get =
                reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
            auto* set =
                reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
            if (get != nullptr && set != nullptr) {
                result = {get, set};
            }
            return result;
        }();
        return found;
    }

    int saved_ = 1;
};

}  // namespace

std::size_t resolve_thread_count(std::size_t threads) {
    if (threads != 0) {
        return threads;
    }
    const unsigned hardware = std::thread::hardware_concurrency();
    return hardware == 0 ? 1 : hardware;
}

data::TensorDataset detached(const data::TensorDataset& dataset) {
    if (!dataset.inputs().defined()) {  // the empty TensorDataset{}
        return dataset;
    }
    return data::TensorDataset(dataset.inputs().detach(), dataset.targets().detach());
}

void run_tasks(std::size_t count, std::size_t threads, const std::function<void(std::size_t)>& task,
               const std::function<void(std::size_t)>& on_done) {
    const std::size_t worker_count = std::min(resolve_thread_count(threads), count);
    if (worker_count == 0) {
        return;
    }

    // Everything below is guarded by `mutex`.
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t next = 0;
    std::size_t running = worker_count;
    bool stop = false;
    std::deque<std::size_t> finished;
    std::exception_ptr task_error;
    std::size_t task_error_index = 0;

    // Workers train with the caller's anomaly mode, which is per thread.
    const bool anomaly_detection = is_anomaly_detection_enabled();
    const auto work = [&] {
        set_anomaly_detection(anomaly_detection);
        while (true) {
            std::size_t index = 0;
            {
                std::lock_guard lock(mutex);
                if (stop || next == count) {
                    break;
                }
                index = next++;
            }
            std::exception_ptr error;
            try {
                task(index);
            } catch (...) {
                error = std::current_exception();
            }
            {
                std::lock_guard lock(mutex);
                if (!error) {
                    finished.push_back(index);
                } else {
                    stop = true;
                    if (!task_error || index < task_error_index) {
                        task_error = error;
                        task_error_index = index;
                    }
                }
            }
            changed.notify_all();
        }
        {
            std::lock_guard lock(mutex);
            --running;
        }
        changed.notify_all();
    };

    const SingleThreadedBlas single_threaded_blas;
    std::vector<std::thread> workers;
    std::exception_ptr caller_error;
    try {
        for (std::size_t i = 0; i < worker_count; ++i) {
            workers.emplace_back(work);
        }
    } catch (...) {
        // The threads already started must finish before the locals go.
        caller_error = std::current_exception();
        std::lock_guard lock(mutex);
        stop = true;
        running -= worker_count - workers.size();
    }

    std::unique_lock lock(mutex);
    while (true) {
        changed.wait(lock, [&] { return !finished.empty() || running == 0; });
        if (finished.empty()) {
            break;
        }
        const std::size_t index = finished.front();
        finished.pop_front();
        if (caller_error) {
            continue;
        }
        lock.unlock();
        try {
            on_done(index);
        } catch (...) {
            caller_error = std::current_exception();
        }
        lock.lock();
        stop = stop || caller_error != nullptr;
    }
    lock.unlock();

    for (std::thread& worker : workers) {
        worker.join();
    }
    if (task_error) {
        std::rethrow_exception(task_error);
    }
    if (caller_error) {
        std::rethrow_exception(caller_error);
    }
}

}  // namespace xgrad::select::detail

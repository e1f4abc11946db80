#pragma once

// What the oneDNN kernels of the int8 ops share: one CPU engine and a scope
// that runs oneDNN on the calling thread alone.

#include <dlfcn.h>

#include <oneapi/dnnl/dnnl.hpp>

namespace xgrad::detail {

// Makes oneDNN run on the calling thread alone while the scope lasts, and
// restores the thread's OpenMP setting afterwards. oneDNN 2.6 on the OpenMP
// runtime sizes its thread team with omp_get_max_threads(); its API has no
// call to change that. The OpenMP runtime that oneDNN loaded is looked up by
// name, so that xgrad need not link OpenMP itself. On other runtimes the
// scope does nothing.
class OneThreadScope {
  public:
    OneThreadScope() {
        if (functions().set_num_threads != nullptr) {
            saved_ = functions().get_max_threads();
            functions().set_num_threads(1);
        }
    }
    ~OneThreadScope() {
        if (functions().set_num_threads != nullptr) {
            functions().set_num_threads(saved_);
        }
    }
    OneThreadScope(const OneThreadScope&) = delete;
    OneThreadScope& operator=(const OneThreadScope&) = delete;

  private:
    struct OpenMpFunctions {
        int (*get_max_threads)() = nullptr;
        void (*set_num_threads)(int) = nullptr;
    };

    static const OpenMpFunctions& functions() {
        static const OpenMpFunctions found = [] {
            OpenMpFunctions result;
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
            auto* get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
            auto* set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
            if (get != nullptr && set != nullptr) {
                result = {get, set};
            }
#endif
            return result;
        }();
        return found;
    }

    int saved_ = 1;
};

// The CPU engine that every oneDNN primitive in xgrad runs on.
inline const dnnl::engine& cpu_engine() {
    static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

}  // namespace xgrad::detail

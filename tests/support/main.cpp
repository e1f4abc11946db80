// Test runner shared by xgrad's doctest executables.
//
// With --require-gradcheck-coverage (set for the ops suite in ctest), a full
// run also fails when a differentiable op in registered_ops() was never seen
// by gradcheck, so a new op cannot land without a gradient test.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstring>
#include <iostream>
#include <vector>

#include "xgrad/gradcheck.hpp"
#include "xgrad/op.hpp"

namespace {

int check_gradcheck_coverage() {
    const auto checked = xgrad::gradchecked_ops();
    int missing = 0;
    for (const xgrad::OpDef* op : xgrad::registered_ops()) {
        if (op->info.differentiable && checked.count(op->info.name) == 0) {
            std::cerr << "op '" << op->info.name << "' has no gradcheck test\n";
            ++missing;
        }
    }
    return missing;
}

}  // namespace

int main(int argc, char** argv) {
    bool require_coverage = false;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "--require-gradcheck-coverage") == 0) {
            require_coverage = true;
        } else {
            args.push_back(argv[i]);
        }
    }

    doctest::Context context;
    context.applyCommandLine(static_cast<int>(args.size()), args.data());
    const int result = context.run();
    if (context.shouldExit() || result != 0) {
        return result;
    }
    if (require_coverage && check_gradcheck_coverage() != 0) {
        return 1;
    }
    return 0;
}

#pragma once

// gradcheck: compares the gradients the tape computes with float64 central
// differences, the test every op in xgrad passes.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad {

struct GradcheckOptions {
    double eps = 1e-6;       ///< finite-difference step
    double atol = 1e-5;      ///< absolute tolerance
    double rtol = 1e-3;      ///< tolerance relative to the numeric gradient
    std::uint64_t seed = 0;  ///< seed of the output weights
};

struct GradcheckResult {
    bool passed = false;
    /// One line: what failed, or the worst element when all passed.
    std::string message;
    /// The worst element: which input, its flat index, both gradients and
    /// |analytic - numeric|.
    std::size_t input = 0;
    std::size_t index = 0;
    double analytic = 0.0;
    double numeric = 0.0;
    double error = 0.0;
};

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

/// Checks the tape's gradient of `function` at `inputs` against central
/// differences (f(x + eps) - f(x - eps)) / (2 eps), element by element.
///
/// The scalar differentiated is sum(w * f(inputs)) with fixed random weights
/// w in [-1, 1]: a plain sum would hide errors in ops whose outputs sum to a
/// constant, such as softmax. Inputs that require grad must be float64;
/// gradcheck differentiates copies of them, so their own gradients stay
/// untouched. An element passes when
/// |analytic - numeric| <= atol + rtol * |numeric|. A check where both
/// gradients are zero everywhere fails, because it proves nothing.
GradcheckResult gradcheck(const TensorFunction& function, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

/// Names of the ops that gradcheck has seen recorded so far in this process.
std::set<std::string> gradchecked_ops();

}  // namespace xgrad

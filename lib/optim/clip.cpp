#include "xgrad/optim/clip.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

namespace {

void check_params(const char* context, const std::vector<Tensor>& params) {
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (!params[i].defined()) {
            throw value_error(std::string(context) + ": parameter " + std::to_string(i) +
                              " is an undefined tensor");
        }
    }
}

// Adds the contribution of one gradient to the running total: Σ |g|^p for a
// finite order, max |g| for the infinity norm. A nan element makes the
// maximum nan, as in PyTorch, which std::max alone would not.
template <class T>
double accumulate_norm(const T* g, std::size_t n, double p, double total) {
    if (p == kInfinityNorm) {
        for (std::size_t i = 0; i < n; ++i) {
            const double magnitude = std::abs(static_cast<double>(g[i]));
            total = std::isnan(magnitude) ? magnitude : std::max(total, magnitude);
        }
    } else if (p == 2.0) {
        for (std::size_t i = 0; i < n; ++i) {
            const double value = static_cast<double>(g[i]);
            total += value * value;
        }
    } else if (p == 1.0) {
        for (std::size_t i = 0; i < n; ++i) {
            total += std::abs(static_cast<double>(g[i]));
        }
    } else {
        for (std::size_t i = 0; i < n; ++i) {
            total += std::pow(std::abs(static_cast<double>(g[i])), p);
        }
    }
    return total;
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
    const std::string context = "clip_grad_norm_";
    detail::check_argument(context, "max_norm", max_norm, max_norm >= 0.0, ">= 0");
    detail::check_argument(context, "norm_type", norm_type, norm_type > 0.0,
                           "> 0 (kInfinityNorm for the maximum norm)");
    check_params(context.c_str(), params);

    double accumulated = 0.0;
    for (const Tensor& param : params) {
        const Tensor grad = param.grad();
        if (!grad.defined()) {
            continue;
        }
        accumulated =
            xgrad::detail::visit_floating(grad.dtype(), "clip_grad_norm_", [&](auto zero) {
                using T = decltype(zero);
                return accumulate_norm(grad.values<T>().data(), grad.numel(), norm_type,
                                       accumulated);
            });
    }
    double total = accumulated;
    if (norm_type == 2.0) {
        total = std::sqrt(accumulated);
    } else if (norm_type != 1.0 && norm_type != kInfinityNorm) {
        total = std::pow(accumulated, 1.0 / norm_type);
    }

    if (error_if_nonfinite && !std::isfinite(total)) {
        throw value_error(context + ": the total gradient norm of order " +
                          detail::format_number(norm_type) + " is " + detail::format_number(total) +
                          ", so a gradient contains inf or nan; the gradients were not changed "
                          "(pass error_if_nonfinite = false to scale them anyway)");
    }

    const double clip_coefficient = max_norm / (total + 1e-6);
    // Written so that a nan coefficient also scales, as PyTorch's clamp does.
    if (!(clip_coefficient >= 1.0)) {
        for (const Tensor& param : params) {
            Tensor grad = param.grad();
            if (!grad.defined()) {
                continue;
            }
            xgrad::detail::visit_floating(grad.dtype(), "clip_grad_norm_", [&](auto zero) {
                using T = decltype(zero);
                const T c = static_cast<T>(clip_coefficient);
                T* g = grad.mutable_values<T>().data();
                const std::size_t n = grad.numel();
                for (std::size_t i = 0; i < n; ++i) {
                    g[i] *= c;
                }
            });
        }
    }
    return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
    detail::check_argument("clip_grad_value_", "clip_value", clip_value, clip_value >= 0.0, ">= 0");
    check_params("clip_grad_value_", params);

    for (const Tensor& param : params) {
        Tensor grad = param.grad();
        if (!grad.defined()) {
            continue;
        }
        xgrad::detail::visit_floating(grad.dtype(), "clip_grad_value_", [&](auto zero) {
            using T = decltype(zero);
            const T high = static_cast<T>(clip_value);
            const T low = -high;
            T* g = grad.mutable_values<T>().data();
            const std::size_t n = grad.numel();
            for (std::size_t i = 0; i < n; ++i) {
                g[i] = std::clamp(g[i], low, high);
            }
        });
    }
}

}  // namespace xgrad::optim

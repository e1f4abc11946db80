#include "xgrad/optim/rmsprop.hpp"

#include <cmath>
#include <ostream>

namespace xgrad::optim {

namespace {

const RMSpropOptions& validate(const RMSpropOptions& options) {
    const auto finite_non_negative = [](double value) {
        return std::isfinite(value) && value >= 0.0;
    };
    detail::check_argument("RMSprop", "lr", options.lr, finite_non_negative(options.lr),
                           "finite and >= 0");
    detail::check_argument("RMSprop", "alpha", options.alpha,
                           options.alpha >= 0.0 && options.alpha <= 1.0, "in [0, 1]");
    detail::check_argument("RMSprop", "eps", options.eps, finite_non_negative(options.eps),
                           "finite and >= 0");
    detail::check_argument("RMSprop", "weight_decay", options.weight_decay,
                           finite_non_negative(options.weight_decay), "finite and >= 0");
    detail::check_argument("RMSprop", "momentum", options.momentum,
                           finite_non_negative(options.momentum), "finite and >= 0");
    return options;
}

struct RMSpropCoefficients {
    double gamma;
    double lambda;
    double alpha;
    double mu;
    double eps;
};

// One pass over the elements. b is null without momentum, g_bar is null
// unless centered.
template <class T>
void rmsprop_update(T* __restrict theta, const T* __restrict g, T* __restrict v, T* __restrict b,
                    T* __restrict g_bar, std::size_t n, const RMSpropCoefficients& c) {
    const T gamma = static_cast<T>(c.gamma);
    const T lambda = static_cast<T>(c.lambda);
    const T alpha = static_cast<T>(c.alpha);
    const T one_minus_alpha = static_cast<T>(1.0 - c.alpha);
    const T mu = static_cast<T>(c.mu);
    const T eps = static_cast<T>(c.eps);
    const bool decay = c.lambda != 0.0;

    for (std::size_t i = 0; i < n; ++i) {
        const T g_i = decay ? g[i] + lambda * theta[i] : g[i];
        v[i] = alpha * v[i] + one_minus_alpha * g_i * g_i;
        T v_tilde = v[i];
        if (g_bar != nullptr) {
            g_bar[i] = alpha * g_bar[i] + one_minus_alpha * g_i;
            v_tilde -= g_bar[i] * g_bar[i];
        }
        const T denominator = std::sqrt(v_tilde) + eps;
        if (b != nullptr) {
            b[i] = mu * b[i] + g_i / denominator;
            theta[i] -= gamma * b[i];
        } else {
            theta[i] -= gamma * g_i / denominator;
        }
    }
}

}  // namespace

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : RMSprop(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, RMSpropOptions options)
    : Optimizer("RMSprop", std::move(groups), validate(options).lr, options.weight_decay),
      options_(options) {}

std::vector<std::string> RMSprop::buffer_names() const {
    std::vector<std::string> names{"square_avg"};
    if (options_.momentum > 0.0) {
        names.emplace_back("momentum_buffer");
    }
    if (options_.centered) {
        names.emplace_back("grad_avg");
    }
    return names;
}

void RMSprop::update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) {
    const RMSpropCoefficients coefficients{
        .gamma = group.lr,
        .lambda = group.weight_decay,
        .alpha = options_.alpha,
        .mu = options_.momentum,
        .eps = options_.eps,
    };
    // The buffers are in buffer_names() order: square_avg, then the optional ones.
    std::size_t next = 1;
    Tensor& v = state.buffers[0];
    Tensor* b = options_.momentum > 0.0 ? &state.buffers[next++] : nullptr;
    Tensor* g_bar = options_.centered ? &state.buffers[next++] : nullptr;

    xgrad::detail::visit_floating(param.dtype(), "RMSprop::step", [&](auto zero) {
        using T = decltype(zero);
        T* b_data = b == nullptr ? nullptr : b->mutable_values<T>().data();
        T* g_bar_data = g_bar == nullptr ? nullptr : g_bar->mutable_values<T>().data();
        rmsprop_update(param.mutable_values<T>().data(), grad.values<T>().data(),
                       v.mutable_values<T>().data(), b_data, g_bar_data, param.numel(),
                       coefficients);
    });
}

void RMSprop::print_options(std::ostream& out) const {
    out << "lr=" << detail::format_number(options_.lr)
        << ", alpha=" << detail::format_number(options_.alpha)
        << ", eps=" << detail::format_number(options_.eps)
        << ", weight_decay=" << detail::format_number(options_.weight_decay)
        << ", momentum=" << detail::format_number(options_.momentum)
        << ", centered=" << (options_.centered ? "true" : "false");
}

}  // namespace xgrad::optim

#include "xgrad/optim/adam.hpp"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <type_traits>

namespace xgrad::optim {

namespace {

const AdamOptions& validate(const std::string& name, const AdamOptions& options) {
    const auto finite_non_negative = [](double value) {
        return std::isfinite(value) && value >= 0.0;
    };
    const auto valid_beta = [](double beta) { return beta >= 0.0 && beta < 1.0; };
    detail::check_argument(name, "lr", options.lr, finite_non_negative(options.lr),
                           "finite and >= 0");
    detail::check_argument(name, "betas.first", options.betas.first,
                           valid_beta(options.betas.first), "in [0, 1)");
    detail::check_argument(name, "betas.second", options.betas.second,
                           valid_beta(options.betas.second), "in [0, 1)");
    detail::check_argument(name, "eps", options.eps, finite_non_negative(options.eps),
                           "finite and >= 0");
    detail::check_argument(name, "weight_decay", options.weight_decay,
                           finite_non_negative(options.weight_decay), "finite and >= 0");
    return options;
}

struct AdamCoefficients {
    double beta1;
    double beta2;
    double eps;
    double l2_penalty;             // λ added to the gradient (Adam), or 0
    double weight_factor;          // 1 − α λ applied to θ first (AdamW), or 1
    double step_size;              // α / (1 − β₁ᵗ)
    double sqrt_bias_correction2;  // √(1 − β₂ᵗ)
};

// One pass over the elements. The options are template parameters so that
// each combination gets its own branch-free loop: at -O2 g++ does not split
// a loop on a loop-invariant condition, and the if-converted loop it builds
// instead runs several times slower.
template <bool kL2, bool kDecoupled, bool kAmsgrad, class T>
void adam_loop(T* __restrict theta, const T* __restrict g, T* __restrict m, T* __restrict v,
               T* __restrict v_hat, std::size_t n, const AdamCoefficients& c) {
    const T beta1 = static_cast<T>(c.beta1);
    const T beta2 = static_cast<T>(c.beta2);
    const T one_minus_beta1 = static_cast<T>(1.0 - c.beta1);
    const T one_minus_beta2 = static_cast<T>(1.0 - c.beta2);
    const T eps = static_cast<T>(c.eps);
    const T lambda = static_cast<T>(c.l2_penalty);
    const T weight_factor = static_cast<T>(c.weight_factor);
    const T step_size = static_cast<T>(c.step_size);
    const T sqrt_bias_correction2 = static_cast<T>(c.sqrt_bias_correction2);

    for (std::size_t i = 0; i < n; ++i) {
        T theta_i = theta[i];
        if constexpr (kDecoupled) {
            theta_i *= weight_factor;
        }
        T g_i = g[i];
        if constexpr (kL2) {
            g_i += lambda * theta_i;
        }
        m[i] = beta1 * m[i] + one_minus_beta1 * g_i;
        v[i] = beta2 * v[i] + one_minus_beta2 * g_i * g_i;
        T u = v[i];
        if constexpr (kAmsgrad) {
            v_hat[i] = std::max(v_hat[i], v[i]);
            u = v_hat[i];
        }
        theta[i] = theta_i - step_size * m[i] / (std::sqrt(u) / sqrt_bias_correction2 + eps);
    }
}

// v_hat is null without AMSGrad.
template <class T>
void adam_update(T* theta, const T* g, T* m, T* v, T* v_hat, std::size_t n,
                 const AdamCoefficients& c) {
    const bool l2 = c.l2_penalty != 0.0;
    const bool decoupled = c.weight_factor != 1.0;
    const bool amsgrad = v_hat != nullptr;
    // Dispatches on the eight combinations of the three options.
    auto run = [&](auto l2_tag, auto decoupled_tag, auto amsgrad_tag) {
        adam_loop<decltype(l2_tag)::value, decltype(decoupled_tag)::value,
                  decltype(amsgrad_tag)::value>(theta, g, m, v, v_hat, n, c);
    };
    auto with_amsgrad = [&](auto l2_tag, auto decoupled_tag) {
        amsgrad ? run(l2_tag, decoupled_tag, std::true_type{})
                : run(l2_tag, decoupled_tag, std::false_type{});
    };
    auto with_decoupled = [&](auto l2_tag) {
        decoupled ? with_amsgrad(l2_tag, std::true_type{}) : with_amsgrad(l2_tag, std::false_type{});
    };
    l2 ? with_decoupled(std::true_type{}) : with_decoupled(std::false_type{});
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam("Adam", std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options)
    : Adam("Adam", std::move(groups), options, false) {}

Adam::Adam(std::string name, std::vector<ParamGroup> groups, AdamOptions options,
           bool decoupled_weight_decay)
    : Optimizer(name, std::move(groups), validate(name, options).lr, options.weight_decay),
      options_(options),
      decoupled_weight_decay_(decoupled_weight_decay) {}

std::vector<std::string> Adam::buffer_names() const {
    if (options_.amsgrad) {
        return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    }
    return {"exp_avg", "exp_avg_sq"};
}

void Adam::update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) {
    const double alpha = group.lr;
    const double lambda = group.weight_decay;
    const auto [beta1, beta2] = options_.betas;
    const double t = static_cast<double>(state.step);
    const AdamCoefficients coefficients{
        .beta1 = beta1,
        .beta2 = beta2,
        .eps = options_.eps,
        .l2_penalty = decoupled_weight_decay_ ? 0.0 : lambda,
        .weight_factor = decoupled_weight_decay_ ? 1.0 - alpha * lambda : 1.0,
        .step_size = alpha / (1.0 - std::pow(beta1, t)),
        .sqrt_bias_correction2 = std::sqrt(1.0 - std::pow(beta2, t)),
    };
    Tensor& m = state.buffers[0];
    Tensor& v = state.buffers[1];
    Tensor* v_hat = options_.amsgrad ? &state.buffers[2] : nullptr;

    xgrad::detail::visit_floating(param.dtype(), "Adam::step", [&](auto zero) {
        using T = decltype(zero);
        T* v_hat_data = v_hat == nullptr ? nullptr : v_hat->mutable_values<T>().data();
        adam_update(param.mutable_values<T>().data(), grad.values<T>().data(),
                    m.mutable_values<T>().data(), v.mutable_values<T>().data(), v_hat_data,
                    param.numel(), coefficients);
    });
}

void Adam::print_options(std::ostream& out) const {
    out << "lr=" << detail::format_number(options_.lr) << ", betas=("
        << detail::format_number(options_.betas.first) << ", "
        << detail::format_number(options_.betas.second) << ")"
        << ", eps=" << detail::format_number(options_.eps)
        << ", weight_decay=" << detail::format_number(options_.weight_decay)
        << ", amsgrad=" << (options_.amsgrad ? "true" : "false");
}

}  // namespace xgrad::optim

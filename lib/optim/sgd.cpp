#include "xgrad/optim/sgd.hpp"

#include <cmath>
#include <ostream>

namespace xgrad::optim {

namespace {

const SGDOptions& validate(const SGDOptions& options) {
    const auto finite_non_negative = [](double value) {
        return std::isfinite(value) && value >= 0.0;
    };
    detail::check_argument("SGD", "lr", options.lr, finite_non_negative(options.lr),
                           "finite and >= 0");
    detail::check_argument("SGD", "momentum", options.momentum,
                           finite_non_negative(options.momentum), "finite and >= 0");
    detail::check_argument("SGD", "dampening", options.dampening, std::isfinite(options.dampening),
                           "finite");
    detail::check_argument("SGD", "weight_decay", options.weight_decay,
                           finite_non_negative(options.weight_decay), "finite and >= 0");
    if (options.nesterov && (options.momentum <= 0.0 || options.dampening != 0.0)) {
        throw value_error("SGD: nesterov requires momentum > 0 and dampening == 0, got momentum " +
                          detail::format_number(options.momentum) + " and dampening " +
                          detail::format_number(options.dampening));
    }
    return options;
}

struct SGDCoefficients {
    double gamma;
    double lambda;
    double mu;
    double tau;
    bool nesterov;
    bool first_step;
};

template <class T>
void sgd_update(T* __restrict theta, const T* __restrict g, T* __restrict b, std::size_t n,
                const SGDCoefficients& c) {
    const T gamma = static_cast<T>(c.gamma);
    const T lambda = static_cast<T>(c.lambda);
    const T mu = static_cast<T>(c.mu);
    const T one_minus_tau = static_cast<T>(1.0 - c.tau);
    const bool decay = c.lambda != 0.0;

    if (b == nullptr) {
        for (std::size_t i = 0; i < n; ++i) {
            const T d = decay ? g[i] + lambda * theta[i] : g[i];
            theta[i] -= gamma * d;
        }
        return;
    }
    for (std::size_t i = 0; i < n; ++i) {
        T d = decay ? g[i] + lambda * theta[i] : g[i];
        b[i] = c.first_step ? d : mu * b[i] + one_minus_tau * d;
        d = c.nesterov ? d + mu * b[i] : b[i];
        theta[i] -= gamma * d;
    }
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : SGD(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer("SGD", std::move(groups), validate(options).lr, options.weight_decay),
      options_(options) {}

std::vector<std::string> SGD::buffer_names() const {
    if (options_.momentum == 0.0) {
        return {};
    }
    return {"momentum_buffer"};
}

void SGD::update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) {
    const SGDCoefficients coefficients{
        .gamma = group.lr,
        .lambda = group.weight_decay,
        .mu = options_.momentum,
        .tau = options_.dampening,
        .nesterov = options_.nesterov,
        .first_step = state.step == 1,
    };
    Tensor* momentum_buffer = state.buffers.empty() ? nullptr : &state.buffers[0];

    xgrad::detail::visit_floating(param.dtype(), "SGD::step", [&](auto zero) {
        using T = decltype(zero);
        T* b = momentum_buffer == nullptr ? nullptr : momentum_buffer->mutable_values<T>().data();
        sgd_update(param.mutable_values<T>().data(), grad.values<T>().data(), b, param.numel(),
                   coefficients);
    });
}

void SGD::print_options(std::ostream& out) const {
    out << "lr=" << detail::format_number(options_.lr)
        << ", momentum=" << detail::format_number(options_.momentum)
        << ", dampening=" << detail::format_number(options_.dampening)
        << ", weight_decay=" << detail::format_number(options_.weight_decay)
        << ", nesterov=" << (options_.nesterov ? "true" : "false");
}

}  // namespace xgrad::optim

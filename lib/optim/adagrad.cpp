#include "xgrad/optim/adagrad.hpp"

#include <cmath>
#include <ostream>

namespace xgrad::optim {

namespace {

const AdagradOptions& validate(const AdagradOptions& options) {
    const auto check = [](const char* name, double value) {
        detail::check_argument("Adagrad", name, value, std::isfinite(value) && value >= 0.0,
                               "finite and >= 0");
    };
    check("lr", options.lr);
    check("lr_decay", options.lr_decay);
    check("weight_decay", options.weight_decay);
    check("initial_accumulator_value", options.initial_accumulator_value);
    check("eps", options.eps);
    return options;
}

struct AdagradCoefficients {
    double gamma_t;  // γ / (1 + (t − 1) η)
    double lambda;
    double eps;
};

template <class T>
void adagrad_update(T* __restrict theta, const T* __restrict g, T* __restrict s, std::size_t n,
                    const AdagradCoefficients& c) {
    const T gamma_t = static_cast<T>(c.gamma_t);
    const T lambda = static_cast<T>(c.lambda);
    const T eps = static_cast<T>(c.eps);
    const bool decay = c.lambda != 0.0;

    for (std::size_t i = 0; i < n; ++i) {
        const T g_i = decay ? g[i] + lambda * theta[i] : g[i];
        s[i] += g_i * g_i;
        theta[i] -= gamma_t * g_i / (std::sqrt(s[i]) + eps);
    }
}

}  // namespace

Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions options)
    : Adagrad(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options) {}

Adagrad::Adagrad(std::vector<ParamGroup> groups, AdagradOptions options)
    : Optimizer("Adagrad", std::move(groups), validate(options).lr, options.weight_decay),
      options_(options) {}

std::vector<std::string> Adagrad::buffer_names() const {
    return {"sum"};
}

double Adagrad::initial_buffer_value(std::size_t /*buffer*/) const {
    return options_.initial_accumulator_value;
}

void Adagrad::update(const Group& group, Tensor& param, const Tensor& grad, ParamState& state) {
    const double t = static_cast<double>(state.step);
    const AdagradCoefficients coefficients{
        .gamma_t = group.lr / (1.0 + (t - 1.0) * options_.lr_decay),
        .lambda = group.weight_decay,
        .eps = options_.eps,
    };
    Tensor& s = state.buffers[0];

    xgrad::detail::visit_floating(param.dtype(), "Adagrad::step", [&](auto zero) {
        using T = decltype(zero);
        adagrad_update(param.mutable_values<T>().data(), grad.values<T>().data(),
                       s.mutable_values<T>().data(), param.numel(), coefficients);
    });
}

void Adagrad::print_options(std::ostream& out) const {
    out << "lr=" << detail::format_number(options_.lr)
        << ", lr_decay=" << detail::format_number(options_.lr_decay)
        << ", weight_decay=" << detail::format_number(options_.weight_decay)
        << ", initial_accumulator_value="
        << detail::format_number(options_.initial_accumulator_value)
        << ", eps=" << detail::format_number(options_.eps);
}

}  // namespace xgrad::optim

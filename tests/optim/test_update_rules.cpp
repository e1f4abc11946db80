// Each optimizer's update rule against a reference written out in this file
// with plain doubles, one element at a time, following the formulas in the
// optimizer's header. Every case runs three steps with fixed gradients on two
// parameters of different shapes in one optimizer, in float32 and float64.
// Parameter b gets no gradient at step 2, so it is skipped there and its step
// count falls behind w's: the expected values hold only if each parameter
// keeps its own state.

#include <algorithm>
#include <cmath>
#include <vector>

#include <xtensor/xio.hpp>

#include "testing.hpp"
#include "xgrad/optim.hpp"

using namespace xgrad;
using namespace xgrad::optim;

namespace {

// Initial values and gradients are exact in float32, so both dtypes start
// from the same numbers as the double reference.
const xt::xarray<double> kInitialW = {{0.5, -1.0, 1.5}, {-0.25, 2.0, 0.75}};
const xt::xarray<double> kInitialB = {0.125, -0.5, 1.0};

// Gradients of steps 1 to 3. They change sign and size between steps so that
// every state buffer matters. b has no gradient at step 2.
const xt::xarray<double> kGradW[3] = {
    {{0.25, -0.5, 1.0}, {2.0, -0.125, 0.0}},
    {{-0.75, 0.5, 0.25}, {1.5, 0.375, -1.0}},
    {{0.5, 1.25, -0.25}, {-2.0, 0.0625, 0.5}},
};
const xt::xarray<double> kGradB[3] = {
    {1.0, -2.0, 0.5},
    {0.0, 0.0, 0.0},
    {-0.5, 1.5, 0.25},
};

Tensor with_dtype(const xt::xarray<double>& values, Dtype dtype) {
    if (dtype == Dtype::float32) {
        return Tensor(xt::xarray<float>(xt::cast<float>(values)));
    }
    return Tensor(values);
}

Tensor parameter(const xt::xarray<double>& values, Dtype dtype) {
    Tensor x = with_dtype(values, dtype);
    x.requires_grad_(true);
    return x;
}

// Applies `reference` (a copy per element) alongside `optimizer` for three
// steps and compares the parameters after each step.
template <class Reference>
void check_three_steps(Optimizer& optimizer, Tensor& w, Tensor& b, const Reference& fresh,
                       double tolerance) {
    std::vector<Reference> w_reference(w.numel(), fresh);
    std::vector<Reference> b_reference(b.numel(), fresh);
    xt::xarray<double> expected_w = kInitialW;
    xt::xarray<double> expected_b = kInitialB;

    for (int t = 1; t <= 3; ++t) {
        const xt::xarray<double>& grad_w = kGradW[t - 1];
        const xt::xarray<double>& grad_b = kGradB[t - 1];
        w.set_grad(with_dtype(grad_w, w.dtype()));
        for (std::size_t i = 0; i < expected_w.size(); ++i) {
            expected_w.flat(i) = w_reference[i].step(expected_w.flat(i), grad_w.flat(i));
        }
        if (t == 2) {
            b.zero_grad();
        } else {
            b.set_grad(with_dtype(grad_b, b.dtype()));
            for (std::size_t i = 0; i < expected_b.size(); ++i) {
                expected_b.flat(i) = b_reference[i].step(expected_b.flat(i), grad_b.flat(i));
            }
        }

        optimizer.step();

        const xt::xarray<double> actual_w = w.to_xarray<double>();
        const xt::xarray<double> actual_b = b.to_xarray<double>();
        INFO("step ", t, "\nw = ", actual_w, "\nexpected ", expected_w, "\nb = ", actual_b,
             "\nexpected ", expected_b);
        CHECK(testing::all_close(actual_w, expected_w, tolerance));
        CHECK(testing::all_close(actual_b, expected_b, tolerance));
    }
}

template <class OptimizerType, class Options, class Reference>
void check_update_rule(const Options& options, const Reference& reference) {
    for (const Dtype dtype : {Dtype::float32, Dtype::float64}) {
        INFO("dtype ", dtype_name(dtype));
        Tensor w = parameter(kInitialW, dtype);
        Tensor b = parameter(kInitialB, dtype);
        OptimizerType optimizer(std::vector<Tensor>{w, b}, options);
        check_three_steps(optimizer, w, b, reference, dtype == Dtype::float32 ? 1e-5 : 1e-12);
    }
}

// --- references, one element at a time ------------------------------------

struct SGDReference {
    double gamma, mu, tau, lambda;
    bool nesterov;
    double b = 0.0;
    int t = 0;

    explicit SGDReference(const SGDOptions& o)
        : gamma(o.lr),
          mu(o.momentum),
          tau(o.dampening),
          lambda(o.weight_decay),
          nesterov(o.nesterov) {}

    double step(double theta, double g) {
        ++t;
        g += lambda * theta;
        if (mu != 0.0) {
            b = t == 1 ? g : mu * b + (1.0 - tau) * g;
            g = nesterov ? g + mu * b : b;
        }
        return theta - gamma * g;
    }
};

// Adam in the form of Kingma and Ba (2015), with the bias-corrected
// estimates m̂ and v̂.
struct AdamReference {
    double alpha, beta1, beta2, epsilon, lambda;
    bool amsgrad, decoupled;
    double m = 0.0, v = 0.0, v_max = 0.0;
    int t = 0;

    AdamReference(const AdamOptions& o, bool decoupled_weight_decay)
        : alpha(o.lr),
          beta1(o.betas.first),
          beta2(o.betas.second),
          epsilon(o.eps),
          lambda(o.weight_decay),
          amsgrad(o.amsgrad),
          decoupled(decoupled_weight_decay) {}

    double step(double theta, double g) {
        ++t;
        if (decoupled) {
            theta *= 1.0 - alpha * lambda;
        } else {
            g += lambda * theta;
        }
        m = beta1 * m + (1.0 - beta1) * g;
        v = beta2 * v + (1.0 - beta2) * g * g;
        v_max = std::max(v_max, v);
        const double m_hat = m / (1.0 - std::pow(beta1, t));
        const double v_hat = (amsgrad ? v_max : v) / (1.0 - std::pow(beta2, t));
        return theta - alpha * m_hat / (std::sqrt(v_hat) + epsilon);
    }
};

AdamOptions as_adam(const AdamWOptions& o) {
    return {.lr = o.lr,
            .betas = o.betas,
            .eps = o.eps,
            .weight_decay = o.weight_decay,
            .amsgrad = o.amsgrad};
}

struct RMSpropReference {
    double gamma, alpha, epsilon, lambda, mu;
    bool centered;
    double v = 0.0, g_avg = 0.0, b = 0.0;

    explicit RMSpropReference(const RMSpropOptions& o)
        : gamma(o.lr),
          alpha(o.alpha),
          epsilon(o.eps),
          lambda(o.weight_decay),
          mu(o.momentum),
          centered(o.centered) {}

    double step(double theta, double g) {
        g += lambda * theta;
        v = alpha * v + (1.0 - alpha) * g * g;
        double v_tilde = v;
        if (centered) {
            g_avg = alpha * g_avg + (1.0 - alpha) * g;
            v_tilde -= g_avg * g_avg;
        }
        if (mu > 0.0) {
            b = mu * b + g / (std::sqrt(v_tilde) + epsilon);
            return theta - gamma * b;
        }
        return theta - gamma * g / (std::sqrt(v_tilde) + epsilon);
    }
};

struct AdagradReference {
    double gamma, eta, lambda, epsilon;
    double sum;
    int t = 0;

    explicit AdagradReference(const AdagradOptions& o)
        : gamma(o.lr),
          eta(o.lr_decay),
          lambda(o.weight_decay),
          epsilon(o.eps),
          sum(o.initial_accumulator_value) {}

    double step(double theta, double g) {
        ++t;
        g += lambda * theta;
        sum += g * g;
        const double gamma_t = gamma / (1.0 + (t - 1) * eta);
        return theta - gamma_t * g / (std::sqrt(sum) + epsilon);
    }
};

}  // namespace

TEST_SUITE("update rules") {
    TEST_CASE("SGD plain") {
        const SGDOptions options{.lr = 0.1};
        check_update_rule<SGD>(options, SGDReference(options));
    }

    TEST_CASE("SGD momentum") {
        const SGDOptions options{.lr = 0.1, .momentum = 0.9};
        check_update_rule<SGD>(options, SGDReference(options));
    }

    TEST_CASE("SGD momentum with dampening") {
        const SGDOptions options{.lr = 0.1, .momentum = 0.9, .dampening = 0.25};
        check_update_rule<SGD>(options, SGDReference(options));
    }

    TEST_CASE("SGD Nesterov") {
        const SGDOptions options{.lr = 0.1, .momentum = 0.9, .nesterov = true};
        check_update_rule<SGD>(options, SGDReference(options));
    }

    TEST_CASE("SGD weight decay") {
        SUBCASE("without momentum") {
            const SGDOptions options{.lr = 0.1, .weight_decay = 0.5};
            check_update_rule<SGD>(options, SGDReference(options));
        }
        SUBCASE("with Nesterov momentum") {
            const SGDOptions options{
                .lr = 0.1, .momentum = 0.5, .weight_decay = 0.5, .nesterov = true};
            check_update_rule<SGD>(options, SGDReference(options));
        }
    }

    TEST_CASE("Adam defaults with a larger step") {
        const AdamOptions options{.lr = 0.1};
        check_update_rule<Adam>(options, AdamReference(options, false));
    }

    TEST_CASE("Adam betas and eps") {
        const AdamOptions options{.lr = 0.05, .betas = {0.5, 0.75}, .eps = 0.01};
        check_update_rule<Adam>(options, AdamReference(options, false));
    }

    TEST_CASE("Adam L2 weight decay") {
        const AdamOptions options{.lr = 0.1, .weight_decay = 0.5};
        check_update_rule<Adam>(options, AdamReference(options, false));
    }

    TEST_CASE("Adam AMSGrad") {
        // With beta2 = 0.5, v falls for elements whose gradient shrinks (w[0, 2]:
        // 1, 0.25, -0.25), so the maximum differs from v.
        const AdamOptions options{.lr = 0.1, .betas = {0.8, 0.5}, .amsgrad = true};
        check_update_rule<Adam>(options, AdamReference(options, false));

        AdamReference amsgrad(options, false);
        AdamReference plain({.lr = 0.1, .betas = {0.8, 0.5}}, false);
        double theta_amsgrad = 1.5;
        double theta_plain = 1.5;
        for (const double g : {1.0, 0.25, -0.25}) {
            theta_amsgrad = amsgrad.step(theta_amsgrad, g);
            theta_plain = plain.step(theta_plain, g);
        }
        CHECK(std::abs(theta_amsgrad - theta_plain) > 1e-3);
    }

    TEST_CASE("AdamW decoupled weight decay") {
        SUBCASE("default weight decay") {
            const AdamWOptions options{.lr = 0.1};
            CHECK(options.weight_decay == 0.01);
            check_update_rule<AdamW>(options, AdamReference(as_adam(options), true));
        }
        SUBCASE("large weight decay") {
            const AdamWOptions options{.lr = 0.1, .weight_decay = 0.5};
            check_update_rule<AdamW>(options, AdamReference(as_adam(options), true));
        }
        SUBCASE("AMSGrad") {
            const AdamWOptions options{
                .lr = 0.1, .betas = {0.8, 0.5}, .weight_decay = 0.5, .amsgrad = true};
            check_update_rule<AdamW>(options, AdamReference(as_adam(options), true));
        }
    }

    TEST_CASE("AdamW differs from Adam with L2") {
        Tensor w_adam = parameter(kInitialW, Dtype::float64);
        Tensor w_adamw = parameter(kInitialW, Dtype::float64);
        Adam adam(std::vector<Tensor>{w_adam}, {.lr = 0.1, .weight_decay = 0.5});
        AdamW adamw(std::vector<Tensor>{w_adamw}, {.lr = 0.1, .weight_decay = 0.5});
        w_adam.set_grad(Tensor(kGradW[0]));
        w_adamw.set_grad(Tensor(kGradW[0]));
        adam.step();
        adamw.step();
        CHECK_FALSE(testing::all_close(w_adam.values<double>(), w_adamw.values<double>(), 1e-3));
    }

    TEST_CASE("RMSprop plain") {
        const RMSpropOptions options{.lr = 0.01, .alpha = 0.9};
        check_update_rule<RMSprop>(options, RMSpropReference(options));
    }

    TEST_CASE("RMSprop defaults") {
        const RMSpropOptions options{};
        check_update_rule<RMSprop>(options, RMSpropReference(options));
    }

    TEST_CASE("RMSprop momentum") {
        const RMSpropOptions options{.lr = 0.01, .alpha = 0.9, .momentum = 0.5};
        check_update_rule<RMSprop>(options, RMSpropReference(options));
    }

    TEST_CASE("RMSprop centered") {
        SUBCASE("without momentum") {
            const RMSpropOptions options{.lr = 0.01, .alpha = 0.9, .centered = true};
            check_update_rule<RMSprop>(options, RMSpropReference(options));
        }
        SUBCASE("with momentum") {
            const RMSpropOptions options{
                .lr = 0.01, .alpha = 0.9, .momentum = 0.5, .centered = true};
            check_update_rule<RMSprop>(options, RMSpropReference(options));
        }
    }

    TEST_CASE("RMSprop weight decay and eps") {
        const RMSpropOptions options{.lr = 0.01, .alpha = 0.9, .eps = 0.1, .weight_decay = 0.5};
        check_update_rule<RMSprop>(options, RMSpropReference(options));
    }

    TEST_CASE("Adagrad plain") {
        const AdagradOptions options{.lr = 0.1};
        check_update_rule<Adagrad>(options, AdagradReference(options));
    }

    TEST_CASE("Adagrad lr decay") {
        const AdagradOptions options{.lr = 0.1, .lr_decay = 0.5};
        check_update_rule<Adagrad>(options, AdagradReference(options));
    }

    TEST_CASE("Adagrad weight decay") {
        const AdagradOptions options{.lr = 0.1, .weight_decay = 0.5};
        check_update_rule<Adagrad>(options, AdagradReference(options));
    }

    TEST_CASE("Adagrad initial accumulator and eps") {
        const AdagradOptions options{.lr = 0.1, .initial_accumulator_value = 0.5, .eps = 0.1};
        check_update_rule<Adagrad>(options, AdagradReference(options));
    }
}

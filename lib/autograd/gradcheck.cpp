#include "xgrad/gradcheck.hpp"

#include <cmath>
#include <mutex>

#include <xtensor/xoperation.hpp>
#include <xtensor/xreducer.hpp>

#include "autograd/tape.hpp"
#include "xgrad/autograd.hpp"
#include "xgrad/random.hpp"

namespace xgrad {

namespace {

std::mutex checked_mutex;
std::set<std::string>& checked_ops() {
    static std::set<std::string> names;
    return names;
}

Tensor evaluate(const TensorFunction& function, const std::vector<Tensor>& inputs) {
    Tensor output = function(inputs);
    if (!output.defined() || output.dtype() != Dtype::float64) {
        throw value_error("gradcheck: the function must return a float64 tensor");
    }
    return output;
}

double weighted_sum(const Tensor& output, const xt::xarray<double>& weights) {
    return xt::sum(output.values<double>() * weights)();
}

std::string index_string(std::size_t flat, const Shape& shape) {
    Shape index(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    return shape_string(index);
}

}  // namespace

std::set<std::string> gradchecked_ops() {
    std::lock_guard lock(checked_mutex);
    return checked_ops();
}

GradcheckResult gradcheck(const TensorFunction& function, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
    if (!(options.eps > 0.0) || !(options.atol >= 0.0) || !(options.rtol >= 0.0)) {
        throw value_error("gradcheck: eps must be positive and atol and rtol non-negative, got eps " +
                          std::to_string(options.eps) + ", atol " + std::to_string(options.atol) +
                          ", rtol " + std::to_string(options.rtol));
    }

    // Differentiate copies, so the caller's tensors keep their gradients.
    std::vector<Tensor> leaves;
    bool any_checked = false;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        Tensor copy = inputs[i].clone();
        if (inputs[i].requires_grad()) {
            if (inputs[i].dtype() != Dtype::float64) {
                throw value_error("gradcheck: input " + std::to_string(i) + " is " +
                                  dtype_name(inputs[i].dtype()) +
                                  "; finite differences need float64 inputs");
            }
            copy.requires_grad_(true);
            any_checked = true;
        }
        leaves.push_back(std::move(copy));
    }
    if (!any_checked) {
        throw value_error("gradcheck: no input requires grad, so there is nothing to check");
    }

    Tensor output = evaluate(function, leaves);
    Generator generator(options.seed);
    const xt::xarray<double> weights =
        uniform(output.shape(), -1.0, 1.0, generator, Dtype::float64).values<double>();
    {
        std::lock_guard lock(checked_mutex);
        for (const OpDef* op : detail::recorded_history(output)) {
            checked_ops().insert(op->info.name);
        }
    }
    if (output.requires_grad()) {
        output.backward(Tensor(weights));
    }

    GradcheckResult result;
    double worst_ratio = -1.0;
    double largest = 0.0;
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < leaves.size(); ++i) {
        if (!leaves[i].requires_grad()) {
            continue;
        }
        Tensor analytic_grad = leaves[i].grad();
        xt::xarray<double>& x = leaves[i].mutable_values<double>();
        for (std::size_t k = 0; k < x.size(); ++k) {
            const double saved = x.flat(k);
            x.flat(k) = saved + options.eps;
            const double plus = weighted_sum(evaluate(function, leaves), weights);
            x.flat(k) = saved - options.eps;
            const double minus = weighted_sum(evaluate(function, leaves), weights);
            x.flat(k) = saved;

            const double numeric = (plus - minus) / (2.0 * options.eps);
            const double analytic =
                analytic_grad.defined() ? analytic_grad.values<double>().flat(k) : 0.0;
            const double error = std::abs(analytic - numeric);
            const double tolerance = options.atol + options.rtol * std::abs(numeric);
            // NaN on either side gives an infinite ratio, so it is reported.
            const double ratio = std::isnan(error) ? INFINITY : error / tolerance;
            largest = std::max({largest, std::abs(analytic), std::abs(numeric)});
            if (ratio > worst_ratio) {
                worst_ratio = ratio;
                result.input = i;
                result.index = k;
                result.analytic = analytic;
                result.numeric = numeric;
                result.error = error;
            }
        }
    }

    const Shape& worst_shape = leaves[result.input].shape();
    const std::string worst = "input " + std::to_string(result.input) + " at index " +
                              index_string(result.index, worst_shape) + ": analytic " +
                              std::to_string(result.analytic) + ", numeric " +
                              std::to_string(result.numeric) + ", error " +
                              std::to_string(result.error);
    if (largest == 0.0) {
        result.message = "gradcheck failed: both gradients are zero everywhere, which proves "
                         "nothing; choose inputs where the function is not flat";
    } else if (worst_ratio > 1.0) {
        result.message = "gradcheck failed: " + worst + " exceeds the tolerance";
    } else {
        result.passed = true;
        result.message = "gradcheck passed; worst element " + worst;
    }
    return result;
}

}  // namespace xgrad

#include "xgrad/attribution.hpp"

#include <cmath>
#include <string>

#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>

#include "xgrad/autograd.hpp"
#include "xgrad/error.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/binary.hpp"
#include "xgrad/ops/index.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/ops/unary.hpp"

namespace xgrad::attribution {

namespace {

// Grad mode on and the score function's parameters frozen for the length of
// one attribution. The destructor restores both, so an exception thrown by
// the score function leaves the model as it was.
class AttributionScope {
public:
    AttributionScope(const std::string& function, const std::vector<Tensor>& parameters)
        : grad_mode_(is_grad_enabled()) {
        // Every check runs before the first flag changes.
        for (std::size_t i = 0; i < parameters.size(); ++i) {
            const Tensor& parameter = parameters[i];
            if (!parameter.defined()) {
                throw value_error(function + ": parameter " + std::to_string(i) +
                                  " of the score function is an undefined tensor");
            }
            if (parameter.requires_grad() && !parameter.is_leaf()) {
                throw value_error(function + ": parameter " + std::to_string(i) +
                                  " of the score function was produced by a recorded op; list "
                                  "only leaf tensors, such as a model's parameters()");
            }
        }
        for (const Tensor& parameter : parameters) {
            if (parameter.requires_grad()) {
                Tensor handle = parameter;  // shares the flag with the caller's tensor
                handle.requires_grad_(false);
                frozen_.push_back(handle);
            }
        }
        set_grad_enabled(true);
    }

    ~AttributionScope() {
        for (Tensor& parameter : frozen_) {
            parameter.requires_grad_(true);
        }
        set_grad_enabled(grad_mode_);
    }

    AttributionScope(const AttributionScope&) = delete;
    AttributionScope& operator=(const AttributionScope&) = delete;

private:
    bool grad_mode_;
    std::vector<Tensor> frozen_;
};

void check_inputs(const std::string& function, const ScoreFunction& score, const Tensor& inputs) {
    if (!score) {
        throw value_error(function + ": the score function is empty");
    }
    if (!inputs.defined()) {
        throw value_error(function + ": inputs is an undefined tensor");
    }
    if (!is_floating(inputs.dtype())) {
        throw value_error(function + ": inputs must be float32 or float64, got " +
                          dtype_name(inputs.dtype()) + "; convert them with to_dtype()");
    }
}

void check_scores(const std::string& function, const Tensor& scores, const Tensor& inputs) {
    const bool scalar = scores.dim() == 0;
    const bool per_example =
        scores.dim() == 1 && inputs.dim() >= 1 && scores.shape()[0] == inputs.shape()[0];
    if (scalar || per_example) {
        return;
    }
    const std::string batch = inputs.dim() >= 1 ? std::to_string(inputs.shape()[0]) : "n";
    throw shape_error(function + ": the score function returned shape " +
                      shape_string(scores.shape()) + " for inputs of shape " +
                      shape_string(inputs.shape()) + "; expected (" + batch +
                      "), one score per example, or () (class_score() selects one class of a "
                      "classifier's outputs)");
}

[[noreturn]] void throw_independent(const std::string& function) {
    throw value_error(function +
                      ": the score does not depend on its argument through recorded ops; the "
                      "score function must not detach its argument or run under NoGradGuard");
}

// The scores at `points` and the gradient of their sum with respect to the
// points, from one forward and one backward pass.
struct Evaluation {
    Tensor scores;
    Tensor gradient;
};

Evaluation evaluate(const std::string& function, const ScoreFunction& score, const Tensor& points) {
    Tensor leaf = points.detach();
    leaf.requires_grad_(true);

    const Tensor scores = score(leaf);
    if (!scores.defined()) {
        throw value_error(function + ": the score function returned an undefined tensor");
    }
    check_scores(function, scores, points);
    if (!scores.requires_grad()) {
        throw_independent(function);
    }

    scores.backward(ones_like(scores));
    Tensor gradient = leaf.grad();
    if (!gradient.defined()) {
        // The scores required grad through some other tensor only.
        throw_independent(function);
    }
    return {scores.detach(), gradient};
}

Tensor from_float64(xt::xarray<double> values, Dtype dtype) {
    if (dtype == Dtype::float64) {
        return Tensor(std::move(values));
    }
    return Tensor(xt::xarray<float>(xt::cast<float>(values)));
}

// Nodes α_k of an integration rule over [0, 1] with their weights.
struct Node {
    double alpha;
    double weight;
};

std::vector<Node> integration_nodes(IntegrationRule rule, std::size_t steps) {
    const auto n = static_cast<double>(steps);
    std::vector<Node> nodes;
    switch (rule) {
        case IntegrationRule::left:
            for (std::size_t k = 0; k < steps; ++k) {
                nodes.push_back({static_cast<double>(k) / n, 1.0 / n});
            }
            break;
        case IntegrationRule::right:
            for (std::size_t k = 1; k <= steps; ++k) {
                nodes.push_back({static_cast<double>(k) / n, 1.0 / n});
            }
            break;
        case IntegrationRule::midpoint:
            for (std::size_t k = 0; k < steps; ++k) {
                nodes.push_back({(static_cast<double>(k) + 0.5) / n, 1.0 / n});
            }
            break;
        case IntegrationRule::trapezoid:
            for (std::size_t k = 0; k <= steps; ++k) {
                const bool end = k == 0 || k == steps;
                nodes.push_back({static_cast<double>(k) / n, (end ? 0.5 : 1.0) / n});
            }
            break;
    }
    return nodes;
}

// The baseline broadcast to the inputs' shape and converted to their dtype.
Tensor full_baseline(const Tensor& baseline, const Tensor& inputs) {
    if (!baseline.defined()) {
        return zeros_like(inputs);
    }
    const Shape& shape = inputs.shape();
    const bool fits = baseline.dim() <= inputs.dim() && [&] {
        for (std::size_t i = 1; i <= baseline.dim(); ++i) {
            const std::size_t extent = baseline.shape()[baseline.dim() - i];
            if (extent != 1 && extent != shape[shape.size() - i]) {
                return false;
            }
        }
        return true;
    }();
    if (!fits) {
        throw shape_error("integrated_gradients: a baseline of shape " +
                          shape_string(baseline.shape()) +
                          " does not broadcast to the inputs' shape " + shape_string(shape) +
                          "; pass one example's shape, the inputs' shape or a scalar");
    }
    Tensor converted = baseline.detach();
    if (converted.dtype() != inputs.dtype()) {
        converted = to_dtype(converted, inputs.dtype());
    }
    return converted + zeros_like(inputs);
}

Tensor scores_without_grad(const ScoreFunction& score, const Tensor& points) {
    NoGradGuard no_grad;
    const Tensor scores = score(points);
    check_scores("integrated_gradients", scores, points);
    return Tensor(scores.to_xarray<double>());
}

// An int64 column (n, 1) of class indices, the index gather() takes.
Tensor class_column(const xt::xarray<std::int64_t>& classes) {
    xt::xarray<std::int64_t> column = classes;
    column.reshape({classes.size(), std::size_t{1}});
    return Tensor(std::move(column));
}

// Column `index` (n, 1) of the logits or of their log-softmax, as shape (n).
Tensor select_classes(const Tensor& logits, const Tensor& index, ClassScore score) {
    if (logits.dim() != 2) {
        throw shape_error("class_score: the model returned shape " + shape_string(logits.shape()) +
                          "; expected logits of shape (batch, classes)");
    }
    const std::size_t batch = logits.shape()[0];
    const std::size_t class_count = logits.shape()[1];
    if (index.shape()[0] != batch) {
        throw shape_error("class_score: " + std::to_string(index.shape()[0]) +
                          " classes were given for a batch of " + std::to_string(batch) +
                          " examples; pass one class per example");
    }
    for (std::int64_t c : index.values<std::int64_t>()) {
        if (c < 0 || static_cast<std::size_t>(c) >= class_count) {
            throw value_error("class_score: class " + std::to_string(c) +
                              " is out of range for a model with " + std::to_string(class_count) +
                              " outputs");
        }
    }

    const Tensor values = score == ClassScore::log_probability ? log_softmax(logits, 1) : logits;
    return reshape(gather(values, 1, index), {-1});
}

}  // namespace

// --- score functions ----------------------------------------------------------

Tensor ScoreFunction::operator()(const Tensor& inputs) const {
    if (!function_) {
        throw value_error("ScoreFunction: called an empty score function");
    }
    return function_(inputs);
}

ScoreFunction class_score(nn::Module& model, const Tensor& classes, ClassScore score) {
    if (!classes.defined() || classes.dtype() != Dtype::int64 || classes.dim() != 1) {
        throw value_error("class_score: classes must be an int64 tensor of shape (n), got " +
                          (classes.defined() ? std::string(dtype_name(classes.dtype())) + " " +
                                                   shape_string(classes.shape())
                                             : std::string("an undefined tensor")));
    }
    const Tensor index = class_column(classes.values<std::int64_t>());
    return ScoreFunction(
        [&model, index, score](const Tensor& inputs) {
            return select_classes(model(inputs), index, score);
        },
        model.parameters());
}

ScoreFunction class_score(nn::Module& model, std::int64_t class_index, ClassScore score) {
    return ScoreFunction(
        [&model, class_index, score](const Tensor& inputs) {
            const Tensor logits = model(inputs);
            const std::size_t batch = logits.dim() == 2 ? logits.shape()[0] : 0;
            const Tensor index = class_column(xt::xarray<std::int64_t>(Shape{batch}, class_index));
            return select_classes(logits, index, score);
        },
        model.parameters());
}

// --- gradients at the inputs -------------------------------------------------

Tensor gradient(const ScoreFunction& score, const Tensor& inputs) {
    check_inputs("gradient", score, inputs);
    AttributionScope scope("gradient", score.parameters());
    return evaluate("gradient", score, inputs).gradient;
}

Tensor saliency(const ScoreFunction& score, const Tensor& inputs) {
    check_inputs("saliency", score, inputs);
    AttributionScope scope("saliency", score.parameters());
    return abs(evaluate("saliency", score, inputs).gradient);
}

Tensor input_x_gradient(const ScoreFunction& score, const Tensor& inputs) {
    check_inputs("input_x_gradient", score, inputs);
    AttributionScope scope("input_x_gradient", score.parameters());
    // detach(): a product with caller's inputs that require grad would be recorded.
    return inputs.detach() * evaluate("input_x_gradient", score, inputs).gradient;
}

// --- SmoothGrad ----------------------------------------------------------------

Tensor smooth_grad(const ScoreFunction& score, const Tensor& inputs,
                   const SmoothGradOptions& options, Generator& generator) {
    check_inputs("smooth_grad", score, inputs);
    if (options.samples == 0) {
        throw value_error("smooth_grad: samples must be at least 1, got 0");
    }
    if (!(options.noise_stddev >= 0.0) || !std::isfinite(options.noise_stddev)) {
        throw value_error("smooth_grad: noise_stddev must be finite and at least 0, got " +
                          format_number(options.noise_stddev));
    }
    AttributionScope scope("smooth_grad", score.parameters());

    const Tensor clean = inputs.detach();
    xt::xarray<double> total = xt::zeros<double>(inputs.shape());
    for (std::size_t s = 0; s < options.samples; ++s) {
        const Tensor noise =
            normal(inputs.shape(), 0.0, options.noise_stddev, generator, inputs.dtype());
        const Tensor g = evaluate("smooth_grad", score, clean + noise).gradient;
        if (options.absolute) {
            total += xt::abs(g.to_xarray<double>());
        } else {
            total += g.to_xarray<double>();
        }
    }
    total /= static_cast<double>(options.samples);
    return from_float64(std::move(total), inputs.dtype());
}

// --- integrated gradients ----------------------------------------------------

IntegratedGradients integrated_gradients(const ScoreFunction& score, const Tensor& inputs,
                                         const IntegratedGradientsOptions& options) {
    check_inputs("integrated_gradients", score, inputs);
    if (options.steps == 0) {
        throw value_error("integrated_gradients: steps must be at least 1, got 0");
    }
    AttributionScope scope("integrated_gradients", score.parameters());

    const Tensor x = inputs.detach();
    const Tensor baseline = full_baseline(options.baseline, x);
    const Tensor difference = x - baseline;

    // The rule's weighted sum of gradients along the path, in float64.
    xt::xarray<double> mean_gradient = xt::zeros<double>(x.shape());
    for (const Node& node : integration_nodes(options.rule, options.steps)) {
        const Tensor point = baseline + difference * node.alpha;
        const Tensor g = evaluate("integrated_gradients", score, point).gradient;
        mean_gradient += node.weight * g.to_xarray<double>();
    }

    IntegratedGradients result;
    result.attributions =
        from_float64(difference.to_xarray<double>() * mean_gradient, inputs.dtype());
    result.scores = scores_without_grad(score, x);
    result.baseline_scores = scores_without_grad(score, baseline);
    return result;
}

Tensor IntegratedGradients::completeness_gap() const {
    if (!attributions.defined() || !scores.defined() || !baseline_scores.defined()) {
        throw value_error(
            "IntegratedGradients::completeness_gap: the result is empty; "
            "integrated_gradients() fills it");
    }
    const xt::xarray<double> values = attributions.to_xarray<double>();
    const xt::xarray<double>& f_x = scores.values<double>();
    const xt::xarray<double>& f_baseline = baseline_scores.values<double>();

    // Example i owns the i-th contiguous block of the row-major attributions;
    // a scalar score owns them all.
    const std::size_t examples = f_x.size();
    const std::size_t block = examples == 0 ? 0 : values.size() / examples;
    xt::xarray<double> gap = xt::zeros<double>(scores.shape());
    for (std::size_t i = 0; i < examples; ++i) {
        double sum = 0.0;
        for (std::size_t j = i * block; j < (i + 1) * block; ++j) {
            sum += values.flat(j);
        }
        gap.flat(i) = sum - (f_x.flat(i) - f_baseline.flat(i));
    }
    return Tensor(std::move(gap));
}

}  // namespace xgrad::attribution

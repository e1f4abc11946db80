#pragma once

// Attribution: how much each input element contributes to a model's output,
// computed from gradients on the tape. Every method explains a score
// function f, typically the logit or log-probability of one class, and
// returns one attribution per input element, in the input's shape:
//
//   gradient(f, x)              ∂f/∂x, signed
//   saliency(f, x)              |∂f/∂x| (Simonyan, Vedaldi and Zisserman,
//                               "Deep Inside Convolutional Networks", 2014)
//   input_x_gradient(f, x)      x ⊙ ∂f/∂x
//   smooth_grad(f, x, ...)      the mean of ∂f/∂x over copies of x with
//                               Gaussian noise (Smilkov et al., "SmoothGrad:
//                               removing noise by adding noise", 2017)
//   integrated_gradients(f, x)  (x − x') ⊙ ∫₀¹ ∂f/∂x (x' + α (x − x')) dα from
//                               a baseline x' (Sundararajan, Taly and Yan,
//                               "Axiomatic Attribution for Deep Networks", 2017)
//
// Batches: inputs have shape (n, ...), one example per row, and f maps them
// to shape (n), one score per example. Each gradient is one backward pass of
// sum(f(x)), which gives row i the gradient of score i alone as long as
// score i depends on example i only. That holds for a model in eval mode
// built from Linear layers and elementwise activations. It fails for an op
// that mixes examples, such as a statistic over the batch. A function that
// returns a scalar (shape ()) is explained as one function of the whole
// input tensor instead.
//
// Every method turns grad mode on while it runs, also inside a NoGradGuard,
// and leaves the caller's inputs and their gradients untouched.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "xgrad/nn/module.hpp"
#include "xgrad/random.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::attribution {

/// The function an attribution explains: a batch of inputs (n, ...) to one
/// score per example, shape (n), or to a scalar. It must compute the scores
/// with recorded ops from its argument, so it must not detach the argument
/// or run under NoGradGuard.
///
/// `parameters` are tensors that the function reads and that require grad,
/// usually a model's parameters. While an attribution runs, their
/// requires-grad flag is off, so backward neither computes nor accumulates
/// their gradients, and the flag is restored afterwards, also when an
/// exception is thrown. Without them the attribution still returns the same
/// values, but every parameter's grad() accumulates a gradient per backward
/// pass. Each must be a leaf, as parameters are.
///
/// NOTE: the flags are shared with every thread, so another thread that
/// trains the same model during an attribution records no gradients for it.
class ScoreFunction {
public:
    ScoreFunction() = default;

    /// Wraps any callable from Tensor to Tensor, such as a lambda. Implicit,
    /// so that a lambda can be passed where a ScoreFunction is expected.
    template <class F>
        requires std::is_invocable_r_v<Tensor, F&, const Tensor&> &&
                 (!std::is_same_v<std::remove_cvref_t<F>, ScoreFunction>)
    ScoreFunction(F function,  // NOLINT(google-explicit-constructor)
                  std::vector<Tensor> parameters = {})
        : function_(std::move(function)), parameters_(std::move(parameters)) {}

    /// Calls the wrapped function. Throws value_error when there is none.
    Tensor operator()(const Tensor& inputs) const;

    const std::vector<Tensor>& parameters() const { return parameters_; }

    explicit operator bool() const { return static_cast<bool>(function_); }

private:
    std::function<Tensor(const Tensor&)> function_;
    std::vector<Tensor> parameters_;
};

/// The output of a classifier that class_score() selects.
enum class ClassScore {
    /// The raw output z_c of the model for class c.
    logit,
    /// log softmax(z)_c = z_c − log Σ_k exp(z_k). Unlike the logit, it also
    /// falls when another class's logit rises.
    log_probability,
};

/// The score of one class per example for a classifier that maps (n, ...)
/// to logits of shape (n, classes). `classes` is an int64 tensor of shape
/// (n) with the class to explain for each example, such as the predicted or
/// the true labels. Calling the function on a batch of another size throws
/// shape_error, and a class outside [0, classes) throws value_error. The
/// function reads `model` by reference, so the model must outlive it, and it
/// lists model.parameters() as its parameters. Put the model in eval mode
/// first: Dropout in training mode would draw a new mask at every call.
ScoreFunction class_score(nn::Module& model, const Tensor& classes,
                          ClassScore score = ClassScore::logit);

/// The score of class `class_index` for every example, for batches of any
/// size. A class outside [0, classes) throws value_error when called.
ScoreFunction class_score(nn::Module& model, std::int64_t class_index,
                          ClassScore score = ClassScore::logit);

/// The signed gradient ∂f/∂x, in the shape and dtype of `inputs`.
///
/// Throws value_error for an empty score function, inputs that are not
/// float32 or float64, and a score that is undefined or does not depend on
/// its argument through recorded ops. Throws shape_error when the score's
/// shape is neither (n) nor ().
Tensor gradient(const ScoreFunction& score, const Tensor& inputs);

/// The saliency map |∂f/∂x|: how strongly each element moves the score,
/// whatever the direction. Throws as gradient() does.
Tensor saliency(const ScoreFunction& score, const Tensor& inputs);

/// x ⊙ ∂f/∂x. For f(x) = w·x + b it is w ⊙ x, the contribution of each term
/// of the sum. Throws as gradient() does.
Tensor input_x_gradient(const ScoreFunction& score, const Tensor& inputs);

struct SmoothGradOptions {
    /// Number of noisy copies N, at least 1. Smilkov et al. suggest about 50.
    std::size_t samples = 50;
    /// Standard deviation σ of the Gaussian noise, in the units of the
    /// inputs, at least 0. Smilkov et al. suggest 10% to 20% of the range of
    /// the input values (max − min), so the default 0.15 suits pixels in
    /// [0, 1]. Scale it for standardised inputs.
    double noise_stddev = 0.15;
    /// Averages |∂f/∂x| instead of ∂f/∂x: the smoothed saliency map.
    bool absolute = false;
};

/// The mean gradient over N noisy copies of the inputs,
/// (1/N) Σ_s ∂f/∂x (x + ε_s), or the mean of |∂f/∂x| with `absolute`.
/// Copy s adds ε_s = normal(inputs.shape(), 0, σ, generator), drawn in the
/// order s = 1 .. N, so the same generator state gives the same result. One
/// backward pass per copy; the sum runs in float64 and the result has the
/// dtype of `inputs`. Throws value_error for zero samples or a negative or
/// non-finite σ, and otherwise as gradient() does.
Tensor smooth_grad(const ScoreFunction& score, const Tensor& inputs,
                   const SmoothGradOptions& options, Generator& generator);

/// The quadrature rule with which integrated_gradients() approximates
/// ∫₀¹ g(α) dα in N steps of width 1/N, where g(α) is the gradient at
/// x' + α (x − x').
enum class IntegrationRule {
    /// Σ g(k/N) / N for k = 0 .. N−1.
    left,
    /// Σ g(k/N) / N for k = 1 .. N, the sum of Sundararajan et al.
    right,
    /// Σ g((k + 1/2)/N) / N for k = 0 .. N−1. Exact when g is affine in α.
    midpoint,
    /// (g(0)/2 + Σ g(k/N) + g(1)/2) / N for k = 1 .. N−1, one gradient more
    /// than the other rules. Exact when g is affine in α, which is the case
    /// for a quadratic f.
    trapezoid,
};

struct IntegratedGradientsOptions {
    /// Number of steps N, at least 1. For a smooth f the error of the
    /// midpoint and trapezoid rules falls as 1/N². For a ReLU network g
    /// jumps wherever a unit switches on or off along the path, so the error
    /// of every rule falls only about as 1/N (docs/pictures.md has
    /// measurements on the Fashion-MNIST MLP).
    std::size_t steps = 64;
    IntegrationRule rule = IntegrationRule::trapezoid;
    /// The baseline x': undefined for all zeros, or a tensor that
    /// broadcasts to the inputs' shape without changing it. One example's
    /// shape, such as (784), gives every example the same baseline, the
    /// inputs' shape gives each its own, and a scalar gives a uniform image.
    /// Other dtypes are converted to the inputs' dtype.
    Tensor baseline = {};
};

/// Attributions of integrated gradients, with the scores that check them.
struct IntegratedGradients {
    /// (x − x') ⊙ the rule's mean gradient, in the shape and dtype of the inputs.
    Tensor attributions;
    /// f(x) and f(x') in float64, of the score's shape: (n) or ().
    Tensor scores;
    Tensor baseline_scores;

    /// The completeness gap: for each example, the sum of its attributions
    /// minus (f(x) − f(x')), in float64 and of the score's shape. The exact
    /// integral makes it zero, so it measures the error of the rule.
    Tensor completeness_gap() const;
};

/// Integrated gradients from the baseline in `options` along the straight
/// path x' + α (x − x'), with one backward pass per node of the rule and two
/// forward passes for the scores. For f(x) = w·x + b every rule gives
/// exactly (x − x') ⊙ w. Throws value_error for zero steps, shape_error for
/// a baseline that does not broadcast to the inputs, and otherwise as
/// gradient() does.
IntegratedGradients integrated_gradients(const ScoreFunction& score, const Tensor& inputs,
                                         const IntegratedGradientsOptions& options = {});

}  // namespace xgrad::attribution

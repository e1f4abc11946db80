#include "xgrad/ops/norm.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "nn/batch_norm_statistics.hpp"
#include "xgrad/op.hpp"

namespace xgrad {

namespace {

// Both ops keep eps in attrs.scalars[0] and record in attrs.ints =
// {has_weight, has_bias} which optional inputs follow the required ones. The
// inputs are x and then, for batch_norm_inference, running_mean and
// running_var. The weight and the bias come last, each only when present.

constexpr std::size_t kAbsent = std::numeric_limits<std::size_t>::max();

// x of shape (N, C, ...) seen as (N, C, S), where S is the product of the
// axes after the channel axis. Channel c of example n is then the S
// contiguous values starting at (n * C + c) * S.
struct ChannelLayout {
    std::size_t batch = 0;
    std::size_t channels = 0;
    std::size_t inner = 1;

    std::size_t per_channel() const { return batch * inner; }
    std::size_t offset(std::size_t n, std::size_t c) const { return (n * channels + c) * inner; }
};

ChannelLayout layout_of(const Shape& shape) {
    ChannelLayout layout{.batch = shape[0], .channels = shape[1]};
    for (std::size_t d = 2; d < shape.size(); ++d) {
        layout.inner *= shape[d];
    }
    return layout;
}

void check_input_shape(const char* op, const Shape& shape) {
    if (shape.size() < 2) {
        throw shape_error(std::string(op) +
                          ": expected an input of shape (N, C, ...) with at least "
                          "2 dimensions, got shape " +
                          shape_string(shape));
    }
}

void check_has_values(const char* op, const Shape& shape) {
    if (layout_of(shape).per_channel() == 0 && shape[1] != 0) {
        throw value_error(std::string(op) + ": the input of shape " + shape_string(shape) +
                          " has no values per channel; batch statistics need at least one");
    }
}

// Positions of the weight and bias among the inputs, or kAbsent.
struct AffineInputs {
    std::size_t weight = kAbsent;
    std::size_t bias = kAbsent;
};

AffineInputs affine_inputs(const OpAttrs& attrs, std::size_t first) {
    AffineInputs positions;
    std::size_t next = first;
    if (attrs.ints[0] != 0) {
        positions.weight = next++;
    }
    if (attrs.ints[1] != 0) {
        positions.bias = next;
    }
    return positions;
}

// Checks everything both ops share and returns the output's spec. `required`
// is the number of inputs before the optional weight and bias, and `names`
// names every input in order for the messages.
OutputSpec check_args(const OpArgs& args, std::size_t required, const char* const* names) {
    const OpAttrs& attrs = args.attrs();
    if (attrs.ints.size() != 2 || (attrs.ints[0] != 0 && attrs.ints[0] != 1) ||
        (attrs.ints[1] != 0 && attrs.ints[1] != 1)) {
        throw value_error(std::string(args.op()) +
                          ": invalid attributes; expected {has_weight, "
                          "has_bias} flags of 0 or 1");
    }
    const std::size_t expected = required + static_cast<std::size_t>(attrs.ints[0] + attrs.ints[1]);
    if (args.size() != expected) {
        throw value_error(std::string(args.op()) + ": expected " + std::to_string(expected) +
                          " input tensors, got " + std::to_string(args.size()));
    }
    const double eps = attrs.scalars[0];
    if (!(eps >= 0.0) || !std::isfinite(eps)) {
        throw value_error(std::string(args.op()) +
                          ": eps must be a finite non-negative number, got " + format_number(eps));
    }

    check_same_dtype(args);
    if (!is_floating(args.dtype(0))) {
        detail::throw_not_floating(args.op(), args.dtype(0));
    }
    const Shape& shape = args.shape(0);
    check_input_shape(args.op(), shape);

    const Shape expected_shape{shape[1]};
    const AffineInputs affine = affine_inputs(attrs, required);
    for (std::size_t i = 1; i < args.size(); ++i) {
        const char* name = i == affine.weight ? "weight" : (i == affine.bias ? "bias" : names[i]);
        if (args.shape(i) != expected_shape) {
            throw shape_error(std::string(args.op()) + ": " + name + " has shape " +
                              shape_string(args.shape(i)) + " but the input of shape " +
                              shape_string(shape) + " has " + std::to_string(shape[1]) +
                              " channels along axis 1; expected " + name + " of shape " +
                              shape_string(expected_shape));
        }
    }
    return {shape, args.dtype(0)};
}

// The per-plane sums below run in kLanes independent double accumulators,
// so that the additions do not wait on each other and the compiler can keep
// them in vector registers. The lanes are added in a fixed order, so the
// result does not depend on the build or the machine.
constexpr std::size_t kLanes = 8;

template <class Term>
double sum_lanes(std::size_t n, Term term) {
    double partial[kLanes] = {};
    std::size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        for (std::size_t lane = 0; lane < kLanes; ++lane) {
            partial[lane] += term(i + lane);
        }
    }
    double total = 0.0;
    for (double value : partial) {
        total += value;
    }
    for (; i < n; ++i) {
        total += term(i);
    }
    return total;
}

// Mean and sum of squared deviations (M2) of a group of values.
struct Moments {
    double count = 0.0;
    double mean = 0.0;
    double m2 = 0.0;

    // Adds another group: with delta = other.mean - mean and n = count +
    // other.count, M2 becomes m2 + other.m2 + delta^2 count other.count / n.
    // Each group's M2 is taken around its own mean, so no large sums cancel.
    void merge(const Moments& other) {
        const double total = count + other.count;
        const double delta = other.mean - mean;
        mean += delta * (other.count / total);
        m2 += other.m2 + delta * delta * (count * other.count / total);
        count = total;
    }
};

// Moments of n contiguous values. Both passes read a plane that is small
// enough to stay in cache, so the input is read from memory once.
template <class T>
Moments plane_moments(const T* values, std::size_t n) {
    Moments plane{.count = static_cast<double>(n)};
    plane.mean = sum_lanes(n, [values](std::size_t i) { return static_cast<double>(values[i]); }) /
                 plane.count;
    const double center = plane.mean;
    plane.m2 = sum_lanes(n, [values, center](std::size_t i) {
        const double centered = static_cast<double>(values[i]) - center;
        return centered * centered;
    });
    return plane;
}

// Per-channel mean and biased variance in one pass over memory: each (n, c)
// plane gets its own two-pass moments, and the planes of a channel are
// merged.
template <class T>
void channel_moments(const xt::xarray<T>& x, const ChannelLayout& layout, std::vector<double>& mean,
                     std::vector<double>& var) {
    std::vector<Moments> channels(layout.channels);
    for (std::size_t n = 0; n < layout.batch; ++n) {
        for (std::size_t c = 0; c < layout.channels; ++c) {
            const Moments plane = plane_moments(x.data() + layout.offset(n, c), layout.inner);
            if (n == 0) {
                channels[c] = plane;
            } else {
                channels[c].merge(plane);
            }
        }
    }
    mean.resize(layout.channels);
    var.resize(layout.channels);
    for (std::size_t c = 0; c < layout.channels; ++c) {
        mean[c] = channels[c].mean;
        var[c] = channels[c].m2 / channels[c].count;
    }
}

// Converts per-channel statistics to BatchStatistics tensors of dtype T.
template <class T>
BatchStatistics make_statistics(const std::vector<double>& mean, const std::vector<double>& var,
                                std::size_t count) {
    xt::xarray<T> mean_values(Shape{mean.size()});
    xt::xarray<T> var_values(Shape{var.size()});
    std::copy(mean.begin(), mean.end(), mean_values.begin());
    std::copy(var.begin(), var.end(), var_values.begin());
    return {Tensor(std::move(mean_values)), Tensor(std::move(var_values)), count};
}

// The destination of the statistics of the next batch_norm forward on this
// thread, or nullptr. Set only inside batch_norm_with_statistics, around one
// call.
thread_local BatchStatistics* statistics_sink = nullptr;

std::vector<double> inverse_std(const std::vector<double>& var, double eps) {
    std::vector<double> result(var.size());
    for (std::size_t c = 0; c < var.size(); ++c) {
        result[c] = 1.0 / std::sqrt(var[c] + eps);
    }
    return result;
}

// The weight or bias values, or nullptr when the input is absent.
template <class T>
const T* optional_values(const OpArgs& args, std::size_t input) {
    return input == kAbsent ? nullptr : args.values<T>(input).data();
}

// y = (x - mean_c) * inv_std_c * gamma_c + beta_c, with gamma = 1 and
// beta = 0 where absent.
template <class T>
void normalize(const OpArgs& args, std::size_t first_affine, const std::vector<double>& mean,
               const std::vector<double>& inv_std, xt::xarray<T>& y) {
    const xt::xarray<T>& x = args.values<T>(0);
    const ChannelLayout layout = layout_of(x.shape());
    const AffineInputs affine = affine_inputs(args.attrs(), first_affine);
    const T* gamma = optional_values<T>(args, affine.weight);
    const T* beta = optional_values<T>(args, affine.bias);
    for (std::size_t n = 0; n < layout.batch; ++n) {
        for (std::size_t c = 0; c < layout.channels; ++c) {
            const auto center = static_cast<T>(mean[c]);
            const auto scale = static_cast<T>(gamma ? inv_std[c] * gamma[c] : inv_std[c]);
            const T shift = beta ? beta[c] : T(0);
            const T* in = x.data() + layout.offset(n, c);
            T* out = y.data() + layout.offset(n, c);
            for (std::size_t s = 0; s < layout.inner; ++s) {
                out[s] = (in[s] - center) * scale + shift;
            }
        }
    }
}

// Per-channel sum(dy) and sum(dy * x_hat), with x_hat = (x - mean) * inv_std:
// the gradients of beta and gamma, and the two reductions in the gradient of x.
template <class T>
void gradient_sums(const xt::xarray<T>& x, const xt::xarray<T>& grad_out,
                   const std::vector<double>& mean, const std::vector<double>& inv_std,
                   std::vector<double>& sum_dy, std::vector<double>& sum_dy_xhat) {
    const ChannelLayout layout = layout_of(x.shape());
    sum_dy.assign(layout.channels, 0.0);
    sum_dy_xhat.assign(layout.channels, 0.0);
    for (std::size_t n = 0; n < layout.batch; ++n) {
        for (std::size_t c = 0; c < layout.channels; ++c) {
            const T* in = x.data() + layout.offset(n, c);
            const T* dy = grad_out.data() + layout.offset(n, c);
            const double center = mean[c];
            sum_dy[c] += sum_lanes(layout.inner, [dy](std::size_t s) { return double(dy[s]); });
            sum_dy_xhat[c] += sum_lanes(layout.inner, [in, dy, center](std::size_t s) {
                return double(dy[s]) * (double(in[s]) - center);
            });
        }
    }
    for (std::size_t c = 0; c < layout.channels; ++c) {
        sum_dy_xhat[c] *= inv_std[c];
    }
}

// Writes the gradients of the weight and the bias, when requested.
template <class T>
void assign_affine_grads(const VjpArgs& args, std::size_t first_affine,
                         const std::vector<double>& sum_dy,
                         const std::vector<double>& sum_dy_xhat) {
    const AffineInputs affine = affine_inputs(args.attrs(), first_affine);
    const Shape channels{sum_dy.size()};
    if (affine.weight != kAbsent) {
        if (auto* grad_weight = args.grad<T>(affine.weight)) {
            grad_weight->resize(channels);
            std::copy(sum_dy_xhat.begin(), sum_dy_xhat.end(), grad_weight->begin());
        }
    }
    if (affine.bias != kAbsent) {
        if (auto* grad_bias = args.grad<T>(affine.bias)) {
            grad_bias->resize(channels);
            std::copy(sum_dy.begin(), sum_dy.end(), grad_bias->begin());
        }
    }
}

std::string describe_batch_norm(const OpAttrs& attrs) {
    std::string text = "eps=" + format_number(attrs.scalars[0]);
    if (attrs.ints[0] == 0) {
        text += ", weight=none";
    }
    if (attrs.ints[1] == 0) {
        text += ", bias=none";
    }
    return text;
}

// Inputs: x, then the optional weight and bias.
struct BatchNorm {
    static constexpr OpInfo kInfo{
        .name = "batch_norm", .arity = kVariadic, .saved_inputs = kSaveAllInputs};

    static constexpr const char* kInputNames[] = {"x", "weight", "bias"};

    static OutputSpec infer(const OpArgs& args) {
        const OutputSpec spec = check_args(args, 1, kInputNames);
        check_has_values(args.op(), spec.shape);
        return spec;
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        std::vector<double> mean;
        std::vector<double> var;
        const ChannelLayout layout = layout_of(args.shape(0));
        channel_moments(args.values<T>(0), layout, mean, var);
        if (statistics_sink != nullptr) {
            *statistics_sink = make_statistics<T>(mean, var, layout.per_channel());
            statistics_sink = nullptr;
        }
        normalize<T>(args, 1, mean, inverse_std(var, args.attrs().scalars[0]), y);
    }

    // The statistics are recomputed from the saved x rather than kept, so a
    // tape record keeps nothing beyond its inputs.
    template <class T>
    static void vjp(const VjpArgs& args) {
        const xt::xarray<T>& x = args.values<T>(0);
        const xt::xarray<T>& grad_out = args.grad_output<T>();
        const ChannelLayout layout = layout_of(x.shape());
        std::vector<double> mean;
        std::vector<double> var;
        channel_moments(x, layout, mean, var);
        const std::vector<double> inv_std = inverse_std(var, args.attrs().scalars[0]);
        std::vector<double> sum_dy;
        std::vector<double> sum_dy_xhat;
        gradient_sums(x, grad_out, mean, inv_std, sum_dy, sum_dy_xhat);

        assign_affine_grads<T>(args, 1, sum_dy, sum_dy_xhat);
        if (auto* grad_x = args.grad<T>(0)) {
            grad_x->resize(x.shape());
            const T* gamma = optional_values<T>(args, affine_inputs(args.attrs(), 1).weight);
            assign_batch_norm_grad_x(x, grad_out, layout, mean, inv_std, gamma, sum_dy, sum_dy_xhat,
                                     *grad_x);
        }
    }

    // dx = gamma inv_std (dy - mean(dy) - x_hat mean(dy x_hat)), per channel.
    template <class T>
    static void assign_batch_norm_grad_x(const xt::xarray<T>& x, const xt::xarray<T>& grad_out,
                                         const ChannelLayout& layout,
                                         const std::vector<double>& mean,
                                         const std::vector<double>& inv_std, const T* gamma,
                                         const std::vector<double>& sum_dy,
                                         const std::vector<double>& sum_dy_xhat,
                                         xt::xarray<T>& grad_x) {
        const auto count = static_cast<double>(layout.per_channel());
        for (std::size_t n = 0; n < layout.batch; ++n) {
            for (std::size_t c = 0; c < layout.channels; ++c) {
                const auto center = static_cast<T>(mean[c]);
                const auto norm = static_cast<T>(inv_std[c]);
                const auto scale = static_cast<T>(gamma ? gamma[c] * inv_std[c] : inv_std[c]);
                const auto mean_dy = static_cast<T>(sum_dy[c] / count);
                const auto mean_dy_xhat = static_cast<T>(sum_dy_xhat[c] / count);
                const T* in = x.data() + layout.offset(n, c);
                const T* dy = grad_out.data() + layout.offset(n, c);
                T* out = grad_x.data() + layout.offset(n, c);
                for (std::size_t s = 0; s < layout.inner; ++s) {
                    const T x_hat = (in[s] - center) * norm;
                    out[s] = scale * (dy[s] - mean_dy - x_hat * mean_dy_xhat);
                }
            }
        }
    }

    static std::string describe(const OpAttrs& attrs) { return describe_batch_norm(attrs); }
};

// Inputs: x, running_mean, running_var, then the optional weight and bias.
struct BatchNormInference {
    static constexpr OpInfo kInfo{
        .name = "batch_norm_inference", .arity = kVariadic, .saved_inputs = kSaveAllInputs};

    static constexpr const char* kInputNames[] = {"x", "running_mean", "running_var", "weight",
                                                  "bias"};

    static OutputSpec infer(const OpArgs& args) {
        if (args.size() < 3) {
            throw value_error(std::string(args.op()) +
                              ": expected x, running_mean and running_var, got " +
                              std::to_string(args.size()) + " input tensors");
        }
        const OutputSpec spec = check_args(args, 3, kInputNames);
        detail::visit_floating(spec.dtype, args.op(), [&](auto zero) {
            using T = decltype(zero);
            check_positive_variance(args, args.values<T>(2));
        });
        return spec;
    }

    template <class T>
    static void check_positive_variance(const OpArgs& args, const xt::xarray<T>& running_var) {
        const double eps = args.attrs().scalars[0];
        for (std::size_t c = 0; c < running_var.size(); ++c) {
            if (!(running_var.flat(c) + eps > 0.0)) {
                throw value_error(std::string(args.op()) +
                                  ": running_var + eps must be positive, "
                                  "but channel " +
                                  std::to_string(c) + " has running_var " +
                                  format_number(running_var.flat(c)) + " and eps " +
                                  format_number(eps));
            }
        }
    }

    template <class T>
    static std::vector<double> as_doubles(const xt::xarray<T>& values) {
        return std::vector<double>(values.begin(), values.end());
    }

    template <class T>
    static std::vector<double> running_inverse_std(const OpArgs& args) {
        return inverse_std(as_doubles(args.values<T>(2)), args.attrs().scalars[0]);
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        normalize<T>(args, 3, as_doubles(args.values<T>(1)), running_inverse_std<T>(args), y);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const xt::xarray<T>& x = args.values<T>(0);
        const xt::xarray<T>& grad_out = args.grad_output<T>();
        const ChannelLayout layout = layout_of(x.shape());
        const std::vector<double> mean = as_doubles(args.values<T>(1));
        const std::vector<double> inv_std = running_inverse_std<T>(args);
        const T* gamma = optional_values<T>(args, affine_inputs(args.attrs(), 3).weight);
        std::vector<double> sum_dy;
        std::vector<double> sum_dy_xhat;
        gradient_sums(x, grad_out, mean, inv_std, sum_dy, sum_dy_xhat);

        assign_affine_grads<T>(args, 3, sum_dy, sum_dy_xhat);
        std::vector<double> scale(layout.channels);
        for (std::size_t c = 0; c < layout.channels; ++c) {
            scale[c] = gamma ? gamma[c] * inv_std[c] : inv_std[c];
        }
        const Shape channels{layout.channels};
        if (auto* grad_mean = args.grad<T>(1)) {
            grad_mean->resize(channels);
            for (std::size_t c = 0; c < layout.channels; ++c) {
                grad_mean->flat(c) = static_cast<T>(-scale[c] * sum_dy[c]);
            }
        }
        if (auto* grad_var = args.grad<T>(2)) {
            grad_var->resize(channels);
            for (std::size_t c = 0; c < layout.channels; ++c) {
                grad_var->flat(c) = static_cast<T>(-0.5 * scale[c] * inv_std[c] * sum_dy_xhat[c]);
            }
        }
        if (auto* grad_x = args.grad<T>(0)) {
            grad_x->resize(x.shape());
            for (std::size_t n = 0; n < layout.batch; ++n) {
                for (std::size_t c = 0; c < layout.channels; ++c) {
                    const auto factor = static_cast<T>(scale[c]);
                    const T* dy = grad_out.data() + layout.offset(n, c);
                    T* out = grad_x->data() + layout.offset(n, c);
                    for (std::size_t s = 0; s < layout.inner; ++s) {
                        out[s] = dy[s] * factor;
                    }
                }
            }
        }
    }

    static std::string describe(const OpAttrs& attrs) { return describe_batch_norm(attrs); }
};

const OpDef& kBatchNorm = define_op<BatchNorm>();
const OpDef& kBatchNormInference = define_op<BatchNormInference>();

// Builds the input list and attributes: the required inputs, then the weight
// and the bias where defined.
Tensor apply_batch_norm(const OpDef& op, std::vector<Tensor> inputs, const Tensor& weight,
                        const Tensor& bias, double eps) {
    OpAttrs attrs;
    attrs.scalars[0] = eps;
    attrs.ints.push_back(weight.defined() ? 1 : 0);
    attrs.ints.push_back(bias.defined() ? 1 : 0);
    if (weight.defined()) {
        inputs.push_back(weight);
    }
    if (bias.defined()) {
        inputs.push_back(bias);
    }
    return apply(op, inputs, attrs);
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
    return apply_batch_norm(kBatchNorm, {x}, weight, bias, eps);
}

Tensor batch_norm_inference(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                            const Tensor& weight, const Tensor& bias, double eps) {
    return apply_batch_norm(kBatchNormInference, {x, running_mean, running_var}, weight, bias, eps);
}

BatchStatistics batch_statistics(const Tensor& x) {
    check_defined("batch_statistics", x);
    check_input_shape("batch_statistics", x.shape());
    check_has_values("batch_statistics", x.shape());
    const ChannelLayout layout = layout_of(x.shape());
    BatchStatistics statistics;
    detail::visit_floating(x.dtype(), "batch_statistics", [&](auto zero) {
        using T = decltype(zero);
        std::vector<double> mean;
        std::vector<double> var;
        channel_moments(x.values<T>(), layout, mean, var);
        statistics = make_statistics<T>(mean, var, layout.per_channel());
    });
    return statistics;
}

namespace detail {

Tensor batch_norm_with_statistics(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                  double eps, BatchStatistics& statistics) {
    // Clears the sink also when batch_norm throws.
    struct SinkScope {
        explicit SinkScope(BatchStatistics& target) { statistics_sink = &target; }
        ~SinkScope() { statistics_sink = nullptr; }
        SinkScope(const SinkScope&) = delete;
        SinkScope& operator=(const SinkScope&) = delete;
    };

    statistics = BatchStatistics{};
    Tensor y;
    {
        const SinkScope scope(statistics);
        y = batch_norm(x, weight, bias, eps);
    }
    // The forward left the sink unfilled if it did not run on this thread.
    if (statistics.count == 0) {
        statistics = batch_statistics(x);
    }
    return y;
}

}  // namespace detail

}  // namespace xgrad

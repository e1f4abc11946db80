#include "xgrad/ops/loss.hpp"

#include <cmath>
#include <limits>

#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

#include "xgrad/op.hpp"

namespace xgrad {

namespace {

// attrs.ints[0] holds the Reduction for every loss here.

Reduction reduction_of(const OpArgs& args) { return static_cast<Reduction>(args.attrs().ints[0]); }

Shape reduced_shape(const Shape& unreduced, Reduction reduction) {
    return reduction == Reduction::none ? unreduced : Shape{};
}

// Reduces per-element losses into y (already shaped by the shape rule).
template <class T>
void reduce_losses(const xt::xarray<T>& losses, Reduction reduction, xt::xarray<T>& y) {
    if (reduction == Reduction::none) {
        xt::noalias(y) = losses;
        return;
    }
    double total = 0.0;  // a float32 running total would stall on large inputs
    for (T value : losses) {
        total += value;
    }
    if (reduction == Reduction::mean) {
        total /= static_cast<double>(losses.size());
    }
    y.flat(0) = static_cast<T>(total);
}

// The gradient of each unreduced loss element, given the gradient of the
// (reduced or unreduced) output: the scale by which its VJP multiplies.
template <class T>
xt::xarray<T> per_element_grad(const VjpArgs& args, const Shape& unreduced) {
    const auto& grad_out = args.grad_output<T>();
    const Reduction reduction = reduction_of(args);
    if (reduction == Reduction::none) {
        return grad_out;
    }
    T scale = grad_out.flat(0);
    if (reduction == Reduction::mean) {
        scale /= static_cast<T>(shape_size(unreduced));
    }
    return xt::xarray<T>(unreduced, scale);
}

std::string describe_reduction(const OpAttrs& attrs) {
    switch (static_cast<Reduction>(attrs.ints[0])) {
        case Reduction::none:
            return "reduction=none";
        case Reduction::sum:
            return "reduction=sum";
        case Reduction::mean:
            break;
    }
    return "reduction=mean";
}

void check_same_shape(const OpArgs& args) {
    if (args.shape(0) != args.shape(1)) {
        throw shape_error(std::string(args.op()) + ": the inputs must have the same shape: input 0 has shape " +
                          shape_string(args.shape(0)) + ", input 1 has shape " +
                          shape_string(args.shape(1)));
    }
}

// Inputs: logits (batch, classes), labels (batch).
struct CrossEntropy {
    static constexpr OpInfo kInfo{
        .name = "cross_entropy", .arity = 2, .saved_inputs = kSaveAllInputs};

    static OutputSpec infer(const OpArgs& args) {
        if (!is_floating(args.dtype(0))) {
            detail::throw_not_floating("cross_entropy", args.dtype(0));
        }
        if (args.dtype(1) != Dtype::int64) {
            throw value_error(std::string("cross_entropy: labels must be an int64 tensor of class "
                                          "indices, got ") + dtype_name(args.dtype(1)));
        }
        const Shape& logits = args.shape(0);
        if (logits.size() != 2) {
            throw not_implemented("cross_entropy: logits of shape " + shape_string(logits) +
                                  " are not supported; expected (batch, classes)");
        }
        if (args.shape(1) != Shape{logits[0]}) {
            throw shape_error("cross_entropy: logits have shape " + shape_string(logits) +
                              " but labels have shape " + shape_string(args.shape(1)) +
                              "; expected labels of shape (" + std::to_string(logits[0]) + ")");
        }
        const auto& labels = args.values<std::int64_t>(1);
        for (std::size_t i = 0; i < labels.size(); ++i) {
            if (labels.flat(i) < 0 || static_cast<std::size_t>(labels.flat(i)) >= logits[1]) {
                throw value_error("cross_entropy: label " + std::to_string(labels.flat(i)) +
                                  " at position " + std::to_string(i) + " is out of range for " +
                                  std::to_string(logits[1]) + " classes");
            }
        }
        return {reduced_shape(args.shape(1), reduction_of(args)), args.dtype(0)};
    }

    // Per row: subtract the maximum before exponentiating, so no exp overflows.
    template <class T>
    static T log_sum_exp(const T* row, std::size_t classes) {
        T largest = -std::numeric_limits<T>::infinity();
        for (std::size_t c = 0; c < classes; ++c) {
            largest = std::max(largest, row[c]);
        }
        T total = 0;
        for (std::size_t c = 0; c < classes; ++c) {
            total += std::exp(row[c] - largest);
        }
        return largest + std::log(total);
    }

    // Writes each example's loss straight into y, or sums them, so that a
    // replayed graph allocates nothing here.
    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto& logits = args.values<T>(0);
        const auto& labels = args.values<std::int64_t>(1);
        const std::size_t batch = logits.shape()[0];
        const std::size_t classes = logits.shape()[1];
        const Reduction reduction = reduction_of(args);
        double total = 0.0;
        for (std::size_t i = 0; i < batch; ++i) {
            const T* row = logits.data() + i * classes;
            const T loss = log_sum_exp(row, classes) - row[labels.flat(i)];
            if (reduction == Reduction::none) {
                y.flat(i) = loss;
            } else {
                total += loss;
            }
        }
        if (reduction != Reduction::none) {
            y.flat(0) = static_cast<T>(reduction == Reduction::mean ? total / static_cast<double>(batch) : total);
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& logits = args.values<T>(0);
        const auto& labels = args.values<std::int64_t>(1);
        const auto& grad_out = args.grad_output<T>();
        const std::size_t batch = logits.shape()[0];
        const std::size_t classes = logits.shape()[1];
        const Reduction reduction = reduction_of(args);
        T shared_scale = reduction == Reduction::none ? T(0) : grad_out.flat(0);
        if (reduction == Reduction::mean) {
            shared_scale /= static_cast<T>(batch);
        }
        xt::xarray<T>& grad_logits = *args.grad<T>(0);
        grad_logits.resize(logits.shape());
        for (std::size_t i = 0; i < batch; ++i) {
            const T scale = reduction == Reduction::none ? grad_out.flat(i) : shared_scale;
            const T* row = logits.data() + i * classes;
            T* grad_row = grad_logits.data() + i * classes;
            const T lse = log_sum_exp(row, classes);
            for (std::size_t c = 0; c < classes; ++c) {
                grad_row[c] = std::exp(row[c] - lse) * scale;
            }
            grad_row[labels.flat(i)] -= scale;
        }
    }

    static std::string describe(const OpAttrs& attrs) { return describe_reduction(attrs); }
};

// Inputs: logits, targets of the same shape.
struct BinaryCrossEntropyWithLogits {
    static constexpr OpInfo kInfo{.name = "binary_cross_entropy_with_logits",
                                  .arity = 2,
                                  .saved_inputs = kSaveAllInputs};

    static OutputSpec infer(const OpArgs& args) {
        const OutputSpec spec = elementwise_spec(args);
        check_same_shape(args);
        return {reduced_shape(spec.shape, reduction_of(args)), spec.dtype};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto& x = args.values<T>(0);
        const auto& t = args.values<T>(1);
        xt::xarray<T> losses(x.shape());
        for (std::size_t i = 0; i < x.size(); ++i) {
            const T v = x.flat(i);
            losses.flat(i) = std::max(v, T(0)) - v * t.flat(i) + std::log1p(std::exp(-std::abs(v)));
        }
        reduce_losses(losses, reduction_of(args), y);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& x = args.values<T>(0);
        const xt::xarray<T> scale = per_element_grad<T>(args, x.shape());
        if (auto* grad_x = args.grad<T>(0)) {
            const auto& t = args.values<T>(1);
            grad_x->resize(x.shape());
            for (std::size_t i = 0; i < x.size(); ++i) {
                const T v = x.flat(i);
                const T e = std::exp(-std::abs(v));
                const T sigmoid = v >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
                grad_x->flat(i) = (sigmoid - t.flat(i)) * scale.flat(i);
            }
        }
        if (auto* grad_t = args.grad<T>(1)) {
            xt::noalias(*grad_t) = -x * scale;
        }
    }

    static std::string describe(const OpAttrs& attrs) { return describe_reduction(attrs); }
};

// Inputs: prediction, target of the same shape.
struct MseLoss {
    static constexpr OpInfo kInfo{.name = "mse_loss", .arity = 2, .saved_inputs = kSaveAllInputs};

    static OutputSpec infer(const OpArgs& args) {
        const OutputSpec spec = elementwise_spec(args);
        check_same_shape(args);
        return {reduced_shape(spec.shape, reduction_of(args)), spec.dtype};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const xt::xarray<T> difference = args.values<T>(0) - args.values<T>(1);
        reduce_losses<T>(difference * difference, reduction_of(args), y);
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        const xt::xarray<T> scale = per_element_grad<T>(args, args.shape(0));
        const auto grad_prediction = T(2) * (args.values<T>(0) - args.values<T>(1)) * scale;
        if (auto* grad_target = args.grad<T>(1)) {
            xt::noalias(*grad_target) = -grad_prediction;
        }
        if (auto* grad_x = args.grad<T>(0)) {
            xt::noalias(*grad_x) = grad_prediction;
        }
    }

    static std::string describe(const OpAttrs& attrs) { return describe_reduction(attrs); }
};

const OpDef& kCrossEntropy = define_op<CrossEntropy>();
const OpDef& kBinaryCrossEntropyWithLogits = define_op<BinaryCrossEntropyWithLogits>();
const OpDef& kMseLoss = define_op<MseLoss>();

OpAttrs reduction_attrs(Reduction reduction) {
    if (reduction != Reduction::none && reduction != Reduction::mean && reduction != Reduction::sum) {
        throw value_error("loss: invalid reduction " + std::to_string(static_cast<std::int64_t>(reduction)));
    }
    OpAttrs attrs;
    attrs.ints.push_back(static_cast<std::int64_t>(reduction));
    return attrs;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction) {
    return apply(kCrossEntropy, logits, labels, reduction_attrs(reduction));
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction) {
    return apply(kBinaryCrossEntropyWithLogits, logits, targets, reduction_attrs(reduction));
}

Tensor mse_loss(const Tensor& prediction, const Tensor& target, Reduction reduction) {
    return apply(kMseLoss, prediction, target, reduction_attrs(reduction));
}

}  // namespace xgrad

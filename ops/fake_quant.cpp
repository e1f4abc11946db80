#include "xgrad/ops/fake_quant.hpp"

#include <cmath>

#include <xtensor/xnoalias.hpp>

#include "xgrad/op.hpp"

namespace xgrad {

namespace {

// Channel layout of x for per-channel parameters along `axis` (-1: one
// channel holding everything).
struct Channels {
    std::size_t outer = 1;
    std::size_t count = 1;
    std::size_t inner = 1;
};

Channels channels_of(const Shape& shape, std::int64_t axis) {
    Channels channels;
    if (axis < 0) {
        channels.inner = shape_size(shape);
        return channels;
    }
    const auto dim = static_cast<std::size_t>(axis);
    for (std::size_t d = 0; d < dim; ++d) {
        channels.outer *= shape[d];
    }
    channels.count = shape[dim];
    for (std::size_t d = dim + 1; d < shape.size(); ++d) {
        channels.inner *= shape[d];
    }
    return channels;
}

// Visits every element with its channel's scale and zero point.
template <class Visit>
void for_each_quantized(const Channels& channels, const double* scales,
                        const std::int64_t* zero_points, Visit visit) {
    std::size_t i = 0;
    for (std::size_t o = 0; o < channels.outer; ++o) {
        for (std::size_t c = 0; c < channels.count; ++c) {
            for (std::size_t j = 0; j < channels.inner; ++j, ++i) {
                visit(i, scales[c], zero_points[c]);
            }
        }
    }
}

// Inputs: x, scales (float64, one per channel), zero points (int64, one per
// channel). attrs.ints = {qmin, qmax, axis}, with axis -1 for per tensor.
struct FakeQuantize {
    static constexpr OpInfo kInfo{.name = "fake_quantize", .arity = 3, .saved_inputs = kSaveAllInputs};

    static OutputSpec infer(const OpArgs& args) {
        if (!is_floating(args.dtype(0))) {
            detail::throw_not_floating("fake_quantize", args.dtype(0));
        }
        if (args.dtype(1) != Dtype::float64 || args.dtype(2) != Dtype::int64) {
            throw value_error("fake_quantize: scales must be float64 and zero points int64, got " +
                              std::string(dtype_name(args.dtype(1))) + " and " + dtype_name(args.dtype(2)));
        }
        const auto& ints = args.attrs().ints;
        const std::int64_t axis = ints[2];
        if (axis >= static_cast<std::int64_t>(args.shape(0).size())) {
            throw shape_error("fake_quantize: channel axis " + std::to_string(axis) +
                              " does not exist in x of shape " + shape_string(args.shape(0)));
        }
        const std::size_t count = channels_of(args.shape(0), axis).count;
        if (args.shape(1) != Shape{count} || args.shape(2) != Shape{count}) {
            throw shape_error("fake_quantize: x of shape " + shape_string(args.shape(0)) + " needs " +
                              std::to_string(count) + " scales and zero points, got shapes " +
                              shape_string(args.shape(1)) + " and " + shape_string(args.shape(2)));
        }
        if (ints[0] >= ints[1]) {
            throw value_error("fake_quantize: qmin " + std::to_string(ints[0]) + " must be below qmax " +
                              std::to_string(ints[1]));
        }
        return {args.shape(0), args.dtype(0)};
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto& ints = args.attrs().ints;
        const auto& x = args.values<T>(0);
        for_each_quantized(channels_of(x.shape(), ints[2]), args.values<double>(1).data(),
                           args.values<std::int64_t>(2).data(),
                           [&](std::size_t i, double scale, std::int64_t zero_point) {
                               const std::int64_t q = quant::quantize_value(
                                   static_cast<double>(x.flat(i)), scale, zero_point, ints[0], ints[1]);
                               y.flat(i) = static_cast<T>(static_cast<double>(q - zero_point) * scale);
                           });
    }

    // The straight-through estimator: the gradient passes where the rounded
    // value lies in [qmin, qmax] before clamping.
    template <class T>
    static void vjp(const VjpArgs& args) {
        const auto& ints = args.attrs().ints;
        const auto& x = args.values<T>(0);
        const auto& grad_out = args.grad_output<T>();
        if (auto* grad_x = args.grad<T>(0)) {
            grad_x->resize(x.shape());
            for_each_quantized(channels_of(x.shape(), ints[2]), args.values<double>(1).data(),
                               args.values<std::int64_t>(2).data(),
                               [&](std::size_t i, double scale, std::int64_t zero_point) {
                                   const double q = std::nearbyint(static_cast<double>(x.flat(i)) / scale) +
                                                    static_cast<double>(zero_point);
                                   const bool inside = q >= static_cast<double>(ints[0]) &&
                                                       q <= static_cast<double>(ints[1]);
                                   grad_x->flat(i) = inside ? grad_out.flat(i) : T(0);
                               });
        }
        if (auto* grad_scales = args.grad<double>(1)) {
            grad_scales->resize(args.shape(1));
            grad_scales->fill(0.0);  // the estimator gives the parameters no gradient
        }
    }

    static std::string describe(const OpAttrs& attrs) {
        return "qmin=" + std::to_string(attrs.ints[0]) + ", qmax=" + std::to_string(attrs.ints[1]) +
               (attrs.ints[2] >= 0 ? ", axis=" + std::to_string(attrs.ints[2]) : "");
    }
};

// Symmetric int8 of a weight with one scale per output (a row of a linear
// weight, an output channel of a convolution weight), with parameters from
// its current values.
struct FakeQuantizeWeight {
    static constexpr OpInfo kInfo{.name = "fake_quantize_weight"};

    static OutputSpec infer(const OpArgs& args) {
        const std::size_t dim = args.shape(0).size();
        if (dim != 2 && dim != 4) {
            throw shape_error("fake_quantize_weight: expected a weight of shape (out_features, "
                              "in_features) or (C_out, C_in, kH, kW), got " +
                              shape_string(args.shape(0)));
        }
        return elementwise_spec(args);
    }

    template <class T>
    static void forward(const OpArgs& args, xt::xarray<T>& y) {
        const auto& w = args.values<T>(0);
        const std::size_t rows = w.shape()[0];
        const std::size_t columns = rows == 0 ? 0 : w.size() / rows;
        for (std::size_t r = 0; r < rows; ++r) {
            const T* row = w.data() + r * columns;
            double largest = 0.0;
            for (std::size_t c = 0; c < columns; ++c) {
                largest = std::max(largest, std::abs(static_cast<double>(row[c])));
            }
            const double scale = quant::int8_weight_scale(largest);
            for (std::size_t c = 0; c < columns; ++c) {
                const std::int64_t q = quant::quantize_value(static_cast<double>(row[c]), scale, 0, -127, 127);
                y.flat(r * columns + c) = static_cast<T>(static_cast<double>(q) * scale);
            }
        }
    }

    template <class T>
    static void vjp(const VjpArgs& args) {
        xt::noalias(*args.grad<T>(0)) = args.grad_output<T>();
    }
};

const OpDef& kFakeQuantize = define_op<FakeQuantize>();
const OpDef& kFakeQuantizeWeight = define_op<FakeQuantizeWeight>();

}  // namespace

Tensor fake_quantize(const Tensor& x, const quant::QParams& params) {
    OpAttrs attrs;
    attrs.ints.push_back(params.qmin());
    attrs.ints.push_back(params.qmax());
    attrs.ints.push_back(params.axis);
    xt::xarray<double> scales(Shape{params.scales.size()});
    std::copy(params.scales.begin(), params.scales.end(), scales.begin());
    xt::xarray<std::int64_t> zero_points(Shape{params.zero_points.size()});
    std::copy(params.zero_points.begin(), params.zero_points.end(), zero_points.begin());
    return apply(kFakeQuantize, x, Tensor(std::move(scales)), Tensor(std::move(zero_points)), attrs);
}

Tensor fake_quantize_weight(const Tensor& weight) { return apply(kFakeQuantizeWeight, weight); }

}  // namespace xgrad

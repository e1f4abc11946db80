#include "xgrad/quant/qparams.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>

namespace xgrad::quant {

namespace {

// Extents of x around `axis`: outer blocks of `channels` rows of `inner`
// contiguous elements (axis -1: one channel holding everything).
struct ChannelSplit {
    std::size_t outer = 1;
    std::size_t channels = 1;
    std::size_t inner = 1;
};

ChannelSplit split_channels(const Shape& shape, std::int64_t axis, const char* function) {
    ChannelSplit split;
    if (axis < 0) {
        split.inner = shape_size(shape);
        return split;
    }
    const auto dim = static_cast<std::size_t>(axis);
    if (dim >= shape.size()) {
        throw shape_error(std::string(function) + ": channel axis " + std::to_string(axis) +
                          " does not exist in a tensor of shape " + shape_string(shape));
    }
    for (std::size_t d = 0; d < dim; ++d) {
        split.outer *= shape[d];
    }
    split.channels = shape[dim];
    for (std::size_t d = dim + 1; d < shape.size(); ++d) {
        split.inner *= shape[d];
    }
    return split;
}

void check_channels(const QParams& params, const ChannelSplit& split, const Shape& shape,
                    const char* function) {
    if (params.scales.size() != split.channels || params.zero_points.size() != split.channels) {
        throw shape_error(std::string(function) + ": " + std::to_string(params.scales.size()) +
                          " scales for a tensor of shape " + shape_string(shape) + " with " +
                          std::to_string(split.channels) + " channels along axis " +
                          std::to_string(params.axis));
    }
}

}  // namespace

const char* scheme_name(QScheme scheme) {
    return scheme == QScheme::affine_uint8 ? "affine_uint8" : "symmetric_int8";
}

std::string QParams::describe() const {
    std::string text = std::string(scheme_name(scheme)) +
                       (per_channel() ? " per channel along axis " + std::to_string(axis) : " per tensor");
    if (scales.size() == 1) {
        text += ", scale " + std::to_string(scales[0]) + ", zero point " + std::to_string(zero_points[0]);
    }
    return text;
}

QParams choose_qparams(const std::vector<double>& min_values, const std::vector<double>& max_values,
                       QScheme scheme, std::int64_t axis) {
    if (min_values.size() != max_values.size() || min_values.empty()) {
        throw value_error("choose_qparams: needs one minimum and one maximum per channel, got " +
                          std::to_string(min_values.size()) + " and " + std::to_string(max_values.size()));
    }
    QParams params;
    params.scheme = scheme;
    params.axis = axis;
    for (std::size_t c = 0; c < min_values.size(); ++c) {
        if (std::isnan(min_values[c]) || std::isnan(max_values[c]) || min_values[c] > max_values[c]) {
            throw value_error("choose_qparams: invalid range [" + std::to_string(min_values[c]) + ", " +
                              std::to_string(max_values[c]) + "] for channel " + std::to_string(c));
        }
        // Widen the range to include 0, so that 0 is exactly representable.
        const double low = std::min(min_values[c], 0.0);
        const double high = std::max(max_values[c], 0.0);
        double scale = 0.0;
        std::int64_t zero_point = 0;
        if (scheme == QScheme::affine_uint8) {
            scale = std::max((high - low) / 255.0, kMinScale);
            zero_point = std::clamp<std::int64_t>(
                static_cast<std::int64_t>(std::nearbyint(-low / scale)), 0, 255);
        } else {
            scale = std::max(std::max(-low, high) / 127.0, kMinScale);
        }
        if (!std::isfinite(scale)) {
            throw value_error("choose_qparams: the range [" + std::to_string(low) + ", " +
                              std::to_string(high) + "] gives an infinite scale");
        }
        params.scales.push_back(scale);
        params.zero_points.push_back(zero_point);
    }
    return params;
}

std::int64_t quantize_value(double x, double scale, std::int64_t zero_point, std::int64_t qmin,
                            std::int64_t qmax) {
    if (std::isnan(x)) {
        return zero_point;
    }
    // In double, x / scale may be huge or infinite; clamping before the
    // conversion to an integer keeps the conversion defined.
    const double q = std::nearbyint(x / scale) + static_cast<double>(zero_point);
    return static_cast<std::int64_t>(
        std::clamp(q, static_cast<double>(qmin), static_cast<double>(qmax)));
}

Tensor quantize(const Tensor& x, const QParams& params) {
    if (!x.defined() || !is_floating(x.dtype())) {
        throw value_error("quantize: expected a float32 or float64 tensor");
    }
    const ChannelSplit split = split_channels(x.shape(), params.axis, "quantize");
    check_channels(params, split, x.shape(), "quantize");
    return detail::visit_floating(x.dtype(), "quantize", [&](auto zero) {
        using T = decltype(zero);
        const T* in = x.values<T>().data();
        auto run = [&](auto out_zero) {
            using Q = decltype(out_zero);
            xt::xarray<Q> out(x.shape());
            std::size_t i = 0;
            for (std::size_t o = 0; o < split.outer; ++o) {
                for (std::size_t c = 0; c < split.channels; ++c) {
                    for (std::size_t j = 0; j < split.inner; ++j, ++i) {
                        out.flat(i) = static_cast<Q>(quantize_value(
                            static_cast<double>(in[i]), params.scales[c], params.zero_points[c],
                            params.qmin(), params.qmax()));
                    }
                }
            }
            return Tensor(std::move(out));
        };
        return params.scheme == QScheme::affine_uint8 ? run(std::uint8_t{}) : run(std::int8_t{});
    });
}

Tensor dequantize(const Tensor& q, const QParams& params) {
    if (!q.defined() || q.dtype() != params.dtype()) {
        throw value_error(std::string("dequantize: expected a ") + dtype_name(params.dtype()) +
                          " tensor for " + scheme_name(params.scheme) + " parameters");
    }
    const ChannelSplit split = split_channels(q.shape(), params.axis, "dequantize");
    check_channels(params, split, q.shape(), "dequantize");
    xt::xarray<float> out(q.shape());
    detail::visit_dtype(q.dtype(), [&](auto zero) {
        using Q = decltype(zero);
        const Q* in = q.values<Q>().data();
        std::size_t i = 0;
        for (std::size_t o = 0; o < split.outer; ++o) {
            for (std::size_t c = 0; c < split.channels; ++c) {
                for (std::size_t j = 0; j < split.inner; ++j, ++i) {
                    out.flat(i) = static_cast<float>(
                        (static_cast<double>(in[i]) - static_cast<double>(params.zero_points[c])) *
                        params.scales[c]);
                }
            }
        }
    });
    return Tensor(std::move(out));
}

std::pair<std::vector<double>, std::vector<double>> channel_min_max(const Tensor& x,
                                                                    std::int64_t axis) {
    if (!x.defined() || !is_floating(x.dtype())) {
        throw value_error("channel_min_max: expected a float32 or float64 tensor");
    }
    const ChannelSplit split = split_channels(x.shape(), axis, "channel_min_max");
    std::vector<double> low(split.channels, INFINITY);
    std::vector<double> high(split.channels, -INFINITY);
    detail::visit_floating(x.dtype(), "channel_min_max", [&](auto zero) {
        using T = decltype(zero);
        const T* in = x.values<T>().data();
        std::size_t i = 0;
        for (std::size_t o = 0; o < split.outer; ++o) {
            for (std::size_t c = 0; c < split.channels; ++c) {
                double lo = low[c];
                double hi = high[c];
                for (std::size_t j = 0; j < split.inner; ++j, ++i) {
                    const auto v = static_cast<double>(in[i]);
                    lo = v < lo ? v : lo;  // NaN is skipped
                    hi = v > hi ? v : hi;
                }
                low[c] = lo;
                high[c] = hi;
            }
        }
    });
    // A channel without finite values (empty, or all NaN) reads as [0, 0].
    for (std::size_t c = 0; c < split.channels; ++c) {
        if (!(low[c] <= high[c])) {
            low[c] = 0.0;
            high[c] = 0.0;
        }
    }
    return {low, high};
}

double int8_weight_scale(double largest) {
    if (!(largest > 0.0)) {
        return 1.0;
    }
    return std::max(static_cast<double>(static_cast<float>(largest / 127.0)),
                    static_cast<double>(FLT_MIN));
}

QParams weight_qparams(const Tensor& weight) {
    if (!weight.defined() || (weight.dim() != 2 && weight.dim() != 4)) {
        throw shape_error(
            "weight_qparams: expected a weight of shape (out_features, in_features) or (C_out, "
            "C_in, kH, kW)");
    }
    const auto [low, high] = channel_min_max(weight, 0);
    QParams params;
    params.scheme = QScheme::symmetric_int8;
    params.axis = 0;
    for (std::size_t row = 0; row < low.size(); ++row) {
        params.scales.push_back(int8_weight_scale(std::max(-low[row], high[row])));
        params.zero_points.push_back(0);
    }
    return params;
}

}  // namespace xgrad::quant

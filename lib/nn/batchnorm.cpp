#include "xgrad/nn/batchnorm.hpp"

#include <cmath>

#include "nn/batch_norm_statistics.hpp"
#include "xgrad/op.hpp"
#include "xgrad/ops/norm.hpp"

namespace xgrad::nn {

namespace {

void check_options(const std::string& layer, const BatchNormOptions& options) {
    if (options.num_features == 0) {
        throw value_error(layer + ": num_features must be positive, got 0");
    }
    if (!(options.eps >= 0.0) || !std::isfinite(options.eps)) {
        throw value_error(layer + ": eps must be a finite non-negative number, got " +
                          format_number(options.eps));
    }
    if (options.momentum && !(*options.momentum >= 0.0 && *options.momentum <= 1.0)) {
        throw value_error(layer + ": momentum must be in [0, 1] or std::nullopt, got " +
                          format_number(*options.momentum));
    }
    if (!is_floating(options.dtype)) {
        throw value_error(layer + ": dtype must be float32 or float64, got " +
                          dtype_name(options.dtype));
    }
}

}  // namespace

BatchNorm::BatchNorm(const BatchNormOptions& options, const char* layer, std::size_t min_rank,
                     std::size_t max_rank, const char* expected_shapes)
    : options_(options),
      min_rank_(min_rank),
      max_rank_(max_rank),
      expected_shapes_(expected_shapes) {
    check_options(layer, options);
    const Shape channels{options.num_features};
    if (options.affine) {
        weight = register_parameter("weight", ones(channels, options.dtype));
        bias = register_parameter("bias", zeros(channels, options.dtype));
    }
    if (options.track_running_stats) {
        running_mean = register_buffer("running_mean", zeros(channels, options.dtype));
        running_var = register_buffer("running_var", ones(channels, options.dtype));
        num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, Dtype::int64));
    }
}

void BatchNorm::check_input(const Tensor& x) const {
    check_defined(type_name().c_str(), x);
    const Shape& shape = x.shape();
    if (shape.size() < min_rank_ || shape.size() > max_rank_) {
        throw shape_error(type_name() + ": expected an input of shape " + expected_shapes_ +
                          ", got shape " + shape_string(shape));
    }
    if (shape[1] != options_.num_features) {
        throw shape_error(type_name() + ": the input of shape " + shape_string(shape) + " has " +
                          std::to_string(shape[1]) + " channels along axis 1 but num_features is " +
                          std::to_string(options_.num_features));
    }
    const bool has_tensors = options_.affine || options_.track_running_stats;
    if (has_tensors && x.dtype() != options_.dtype) {
        throw value_error(type_name() + ": the input is " + dtype_name(x.dtype()) +
                          " but the layer's parameters and buffers are " +
                          dtype_name(options_.dtype) +
                          "; convert the input with to_dtype() or set BatchNormOptions::dtype");
    }
}

Tensor BatchNorm::forward(const Tensor& x) {
    check_input(x);
    const bool use_batch_stats = is_training() || !options_.track_running_stats;
    if (!use_batch_stats) {
        return batch_norm_inference(x, running_mean, running_var, weight, bias, options_.eps);
    }

    // With one value per channel the biased variance is 0 and the unbiased
    // one is undefined. PyTorch's functional batch_norm rejects this case too.
    const std::size_t per_channel = x.numel() / x.shape()[1];
    if (per_channel <= 1) {
        throw value_error(type_name() +
                          ": expected more than 1 value per channel when using "
                          "batch statistics, got an input of shape " +
                          shape_string(x.shape()) + "; use a batch of at least 2 examples" +
                          (options_.track_running_stats ? " or call eval()" : ""));
    }
    if (!is_training() || !options_.track_running_stats) {
        return batch_norm(x, weight, bias, options_.eps);
    }
    BatchStatistics batch;
    Tensor y = detail::batch_norm_with_statistics(x, weight, bias, options_.eps, batch);
    update_running_stats(batch);
    return y;
}

void BatchNorm::update_running_stats(const BatchStatistics& batch) {
    const auto count = static_cast<double>(batch.count);

    std::int64_t& batches = num_batches_tracked.mutable_values<std::int64_t>().flat(0);
    ++batches;
    const double momentum =
        options_.momentum ? *options_.momentum : 1.0 / static_cast<double>(batches);

    detail::visit_floating(batch.mean.dtype(), "BatchNorm", [&](auto zero) {
        using T = decltype(zero);
        const xt::xarray<T>& batch_mean = batch.mean.values<T>();
        const xt::xarray<T>& batch_var = batch.biased_var.values<T>();
        xt::xarray<T>& mean = running_mean.mutable_values<T>();
        xt::xarray<T>& var = running_var.mutable_values<T>();
        for (std::size_t c = 0; c < mean.size(); ++c) {
            const double unbiased_var =
                static_cast<double>(batch_var.flat(c)) * count / (count - 1.0);
            mean.flat(c) =
                static_cast<T>((1.0 - momentum) * mean.flat(c) + momentum * batch_mean.flat(c));
            var.flat(c) = static_cast<T>((1.0 - momentum) * var.flat(c) + momentum * unbiased_var);
        }
    });
}

void BatchNorm::reset_running_stats() {
    if (!options_.track_running_stats) {
        return;
    }
    detail::visit_floating(options_.dtype, "BatchNorm", [&](auto zero) {
        using T = decltype(zero);
        running_mean.mutable_values<T>().fill(T(0));
        running_var.mutable_values<T>().fill(T(1));
    });
    num_batches_tracked.mutable_values<std::int64_t>().fill(0);
}

std::string BatchNorm::extra_repr() const {
    const std::string momentum = options_.momentum ? format_number(*options_.momentum) : "none";
    return "num_features=" + std::to_string(options_.num_features) +
           ", eps=" + format_number(options_.eps) + ", momentum=" + momentum +
           ", affine=" + (options_.affine ? "true" : "false") +
           ", track_running_stats=" + (options_.track_running_stats ? "true" : "false");
}

BatchNorm1d::BatchNorm1d(std::size_t num_features)
    : BatchNorm1d(BatchNormOptions{.num_features = num_features}) {}

BatchNorm1d::BatchNorm1d(const BatchNormOptions& options)
    : BatchNorm(options, "BatchNorm1d", 2, 3, "(N, C) or (N, C, L)") {}

BatchNorm2d::BatchNorm2d(std::size_t num_features)
    : BatchNorm2d(BatchNormOptions{.num_features = num_features}) {}

BatchNorm2d::BatchNorm2d(const BatchNormOptions& options)
    : BatchNorm(options, "BatchNorm2d", 4, 4, "(N, C, H, W)") {}

}  // namespace xgrad::nn

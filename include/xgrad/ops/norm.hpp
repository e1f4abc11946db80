#pragma once

// Batch normalization (Ioffe and Szegedy, 2015). The input has shape
// (N, C, ...): (N, C), (N, C, L), (N, C, H, W) or any rank of at least 2.
// Axis 1 is the channel axis, and each channel is normalized over every
// other axis, so over M = N * L or M = N * H * W values. weight (gamma) and
// bias (beta) have shape (C); pass an undefined Tensor() to leave one out,
// which means gamma = 1 or beta = 0. All tensors share one dtype, float32 or
// float64. Per-channel sums are accumulated in double.
//
// Shape mismatches throw shape_error and other invalid arguments throw
// value_error; both messages name the op and the shapes or values involved.

#include <cstddef>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Batch normalization with the statistics of the batch itself (training):
///
///     mean_c = sum(x_c) / M,   var_c = sum((x_c - mean_c)^2) / M   (biased)
///     x_hat  = (x - mean_c) / sqrt(var_c + eps)
///     y      = gamma_c * x_hat + beta_c
///
/// The VJP goes through the batch statistics:
///
///     dbeta_c  = sum(dy_c)
///     dgamma_c = sum(dy_c * x_hat_c)
///     dx       = gamma_c / sqrt(var_c + eps)
///                * (dy - sum(dy_c) / M - x_hat * sum(dy_c * x_hat_c) / M)
///
/// where the sums run over the M values of channel c. Throws value_error for
/// a channel with no values (M = 0) or for eps that is negative or not finite.
Tensor batch_norm(const Tensor& x, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

/// Batch normalization with given statistics (inference), such as a layer's
/// running mean and variance:
///
///     x_hat = (x - running_mean_c) / sqrt(running_var_c + eps)
///     y     = gamma_c * x_hat + beta_c
///
/// with running_mean and running_var of shape (C). The VJP treats the
/// statistics as inputs like any other:
///
///     dx                = dy * gamma_c / sqrt(running_var_c + eps)
///     dgamma_c          = sum(dy_c * x_hat_c),   dbeta_c = sum(dy_c)
///     drunning_mean_c   = -gamma_c / sqrt(running_var_c + eps) * sum(dy_c)
///     drunning_var_c    = -gamma_c / (2 (running_var_c + eps)) * sum(dy_c * x_hat_c)
///
/// Throws value_error when running_var_c + eps is not positive for some
/// channel, or for eps that is negative or not finite.
Tensor batch_norm_inference(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                            const Tensor& weight = {}, const Tensor& bias = {}, double eps = 1e-5);

/// Per-channel statistics of a batch, as batch_norm() computes them.
struct BatchStatistics {
    Tensor mean;            ///< shape (C), the input's dtype
    Tensor biased_var;      ///< sum((x - mean)^2) / M, shape (C)
    std::size_t count = 0;  ///< M, the number of values per channel
};

/// Computes the mean and biased variance of each channel of x (shape
/// (N, C, ...)) over every axis except axis 1. Records nothing on the tape
/// and returns tensors that do not require grad. Batch normalization layers
/// use it to update their running statistics. Throws like batch_norm().
BatchStatistics batch_statistics(const Tensor& x);

}  // namespace xgrad

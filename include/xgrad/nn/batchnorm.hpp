#pragma once

// Batch normalization layers (Ioffe and Szegedy, 2015, "Batch
// Normalization: Accelerating Deep Network Training by Reducing Internal
// Covariate Shift"), with the options, names, defaults and running-statistics
// rule that PyTorch documents for torch.nn.BatchNorm1d and BatchNorm2d
// (docs.pytorch.org, stable docs). The math and its VJP are those of
// batch_norm() and batch_norm_inference() in xgrad/ops/norm.hpp.

#include <cstddef>
#include <optional>
#include <string>

#include "xgrad/nn/module.hpp"
#include "xgrad/ops/norm.hpp"

namespace xgrad::nn {

struct BatchNormOptions {
    std::size_t num_features = 0;  ///< C, the extent of the input's axis 1
    double eps = 1e-5;             ///< added to the variance before the square root
    /// Weight of the newest batch in the running statistics:
    /// running = (1 - momentum) * running + momentum * batch. std::nullopt
    /// gives every batch the same weight (a cumulative average), using
    /// momentum = 1 / num_batches_tracked.
    std::optional<double> momentum = 0.1;
    bool affine = true;               ///< learn gamma ("weight") and beta ("bias")
    bool track_running_stats = true;  ///< keep running statistics for eval mode
    Dtype dtype = Dtype::float32;     ///< dtype of the parameters and buffers
};

/// The base class of BatchNorm1d and BatchNorm2d; construct one of those.
///
/// Parameters: "weight" (gamma, starts at 1) and "bias" (beta, starts at 0),
/// of shape (C), when options().affine. Buffers, when
/// options().track_running_stats: "running_mean" (starts at 0),
/// "running_var" (starts at 1), both of shape (C), and "num_batches_tracked"
/// (an int64 scalar, starts at 0).
///
/// In training mode the layer normalizes with the batch's own mean and
/// biased variance (batch_norm()). It then updates the running statistics
/// with the batch mean and the unbiased variance, the sum of squared
/// deviations divided by M - 1 for M values per channel. These updates change
/// the buffers in place and are not recorded on the tape. In eval mode it
/// normalizes with the running statistics (batch_norm_inference()). Without
/// track_running_stats it uses batch statistics in both modes.
///
/// NOTE: the running-statistics update runs outside ops, so a graph captured
/// from this layer (capture()) normalizes with the statistics of each
/// replayed batch in training mode but never updates the running statistics.
class BatchNorm : public Module {
  public:
    /// Normalizes x. Throws shape_error for an input of another rank or
    /// channel count and value_error for another dtype. When batch
    /// statistics are used and a channel has only one value, it throws
    /// value_error, because the unbiased variance would divide by zero
    /// (torch.nn.functional.batch_norm raises in training mode for this case too).
    Tensor forward(const Tensor& x) override;

    std::string extra_repr() const override;

    const BatchNormOptions& options() const { return options_; }

    /// Sets running_mean to 0, running_var to 1 and num_batches_tracked to 0.
    void reset_running_stats();

    Tensor weight;               ///< gamma; undefined without affine
    Tensor bias;                 ///< beta; undefined without affine
    Tensor running_mean;         ///< undefined without track_running_stats
    Tensor running_var;          ///< undefined without track_running_stats
    Tensor num_batches_tracked;  ///< undefined without track_running_stats

  protected:
    /// `layer` names the class in the constructor's error messages (while a
    /// base is constructed, type_name() returns the base's name).
    /// `min_rank` and `max_rank` bound the input's rank, and
    /// `expected_shapes` describes the accepted shapes for error messages.
    BatchNorm(const BatchNormOptions& options, const char* layer, std::size_t min_rank,
              std::size_t max_rank, const char* expected_shapes);

  private:
    void check_input(const Tensor& x) const;
    void update_running_stats(const BatchStatistics& batch);

    BatchNormOptions options_;
    std::size_t min_rank_;
    std::size_t max_rank_;
    const char* expected_shapes_;
};

/// Batch normalization over the features of (N, C) inputs, or over the
/// channels of (N, C, L) sequences.
class BatchNorm1d : public BatchNorm {
  public:
    explicit BatchNorm1d(std::size_t num_features);
    explicit BatchNorm1d(const BatchNormOptions& options);
};

/// Batch normalization over the channels of (N, C, H, W) images.
class BatchNorm2d : public BatchNorm {
  public:
    explicit BatchNorm2d(std::size_t num_features);
    explicit BatchNorm2d(const BatchNormOptions& options);
};

}  // namespace xgrad::nn

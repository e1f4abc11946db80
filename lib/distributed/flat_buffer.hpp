#pragma once

// FlatBuffer: a list of tensors packed into two contiguous buffers, for the
// collectives of xgrad::distributed. Float32 values go to a float32 buffer;
// float64 and int64 values go to a float64 buffer (int64 values through
// double, exact up to 2^53). A header of scalars, such as weights and flags,
// travels at the front of one buffer, so that it costs no message of its own.
// That is the float64 buffer when it has tensors, else the float32 one.
//
// A collective sends each buffer in buckets of at most bucket_bytes bytes,
// one MPI call per bucket. The layout is fixed at construction and the
// storage is reused by every call.

#include <cstddef>
#include <string>
#include <vector>

#include <mpi.h>

#include "xgrad/distributed/context.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::distributed::detail {

class FlatBuffer {
public:
    /// Lays out the tensors of `like` (float32, float64 or int64) after
    /// `header_size` header scalars. `caller` starts every error message.
    /// Throws value_error for another dtype or bucket_bytes zero.
    FlatBuffer(const std::vector<Tensor>& like, std::size_t header_size, std::size_t bucket_bytes,
               std::string caller);

    /// Throws distributed_error on every rank unless every rank of `context`
    /// built a buffer of the same layout (tensor dtypes and shapes, header
    /// size). Every rank must call it.
    void check_same_layout(const Context& context) const;

    std::size_t tensor_count() const { return slots_.size(); }
    std::size_t bucket_count() const;

    void set_header(std::size_t index, double value);
    double header(std::size_t index) const;

    /// Copies `scale * source` into the place of tensor `index`; `source`
    /// must have the dtype and shape of the tensor laid out there.
    void pack(std::size_t index, const Tensor& source, double scale);
    void pack_zeros(std::size_t index);

    /// Writes `scale * packed values` into `target` in place (int64 values
    /// rounded to the nearest integer). The caller turns grad mode off when
    /// `target` requires grad.
    void unpack(std::size_t index, Tensor& target, double scale) const;

    /// The packed values times `scale` as a new tensor.
    Tensor unpack_new(std::size_t index, double scale) const;

    /// Sums the buffers over the ranks, in place.
    void all_reduce_sum(const Context& context);

    /// Copies rank `root`'s buffers to every other rank.
    void broadcast(const Context& context, int root);

private:
    struct Slot {
        Dtype dtype;
        Shape shape;
        std::size_t offset;  // in the float32 buffer for float32, else in the float64 buffer
        std::size_t size;
    };

    template <class Call>
    void for_each_bucket(Call call);

    std::string caller_;
    std::size_t bucket_bytes_;
    std::size_t header_size_;
    bool header_in_single_ = false;
    std::vector<Slot> slots_;
    std::vector<float> single_;
    std::vector<double> double_;
};

}  // namespace xgrad::distributed::detail

namespace xgrad::distributed::detail {

/// Number of header scalars that average_values() uses.
inline constexpr std::size_t kAverageHeaderSize = 2;

/// Replaces each of `tensors` on every rank by sum_r(weight_r * value_r) /
/// sum_r(weight_r), through `buffer`, laid out for `tensors` with
/// kAverageHeaderSize header scalars. Every rank must call it. Throws
/// value_error on every rank, changing nothing, when a rank's weight is
/// negative or not finite. When the weights sum to zero, it returns false
/// and changes nothing if `allow_zero_total`, and throws value_error if not.
bool average_values(const Context& context, FlatBuffer& buffer, const std::vector<Tensor>& tensors,
                    double weight, bool allow_zero_total, const std::string& caller);

/// The parameters and buffers of `model`, in state_dict() order.
std::vector<Tensor> model_tensors(const nn::Module& model);

}  // namespace xgrad::distributed::detail

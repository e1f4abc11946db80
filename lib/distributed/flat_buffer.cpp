#include "flat_buffer.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <utility>

#include "mpi.hpp"
#include "xgrad/error.hpp"

namespace xgrad::distributed::detail {

namespace {

// FNV-1a over 64-bit words: a fingerprint of a layout, compared across ranks.
void mix(std::uint64_t& hash, std::uint64_t word) {
    for (int byte = 0; byte < 8; ++byte) {
        hash ^= (word >> (8 * byte)) & 0xFF;
        hash *= 0x100000001B3ULL;
    }
}

template <class T>
std::size_t elements_per_bucket(std::size_t bucket_bytes) {
    const std::size_t elements = std::max<std::size_t>(1, bucket_bytes / sizeof(T));
    return std::min<std::size_t>(elements, INT_MAX);
}

template <class T>
void scale_copy(const T* source, T* target, std::size_t size, T scale) {
    if (scale == T(1)) {
        std::copy_n(source, size, target);
        return;
    }
    for (std::size_t i = 0; i < size; ++i) {
        target[i] = source[i] * scale;
    }
}

}  // namespace

FlatBuffer::FlatBuffer(const std::vector<Tensor>& like, std::size_t header_size,
                       std::size_t bucket_bytes, std::string caller)
    : caller_(std::move(caller)), bucket_bytes_(bucket_bytes), header_size_(header_size) {
    if (bucket_bytes_ == 0) {
        throw value_error(caller_ + ": bucket_bytes must be positive");
    }
    std::size_t single_size = 0;
    std::size_t double_size = 0;
    for (std::size_t i = 0; i < like.size(); ++i) {
        const Tensor& tensor = like[i];
        if (!tensor.defined()) {
            throw value_error(caller_ + ": tensor " + std::to_string(i) + " is undefined");
        }
        const Dtype dtype = tensor.dtype();
        if (dtype != Dtype::float32 && dtype != Dtype::float64 && dtype != Dtype::int64) {
            throw value_error(caller_ + ": tensor " + std::to_string(i) + " has dtype " +
                              dtype_name(dtype) + "; only float32, float64 and int64 can be sent");
        }
        (dtype == Dtype::float32 ? single_size : double_size) += tensor.numel();
    }

    header_in_single_ = double_size == 0 && single_size > 0;
    std::size_t single_offset = header_in_single_ ? header_size_ : 0;
    std::size_t double_offset = header_in_single_ ? 0 : header_size_;
    for (const Tensor& tensor : like) {
        std::size_t& offset = tensor.dtype() == Dtype::float32 ? single_offset : double_offset;
        slots_.push_back({tensor.dtype(), tensor.shape(), offset, tensor.numel()});
        offset += tensor.numel();
    }
    single_.assign(single_offset, 0.0f);
    double_.assign(double_offset, 0.0);
}

void FlatBuffer::check_same_layout(const Context& context) const {
    std::uint64_t hash = 0xCBF29CE484222325ULL;
    std::uint64_t elements = 0;
    mix(hash, header_size_);
    for (const Slot& slot : slots_) {
        mix(hash, static_cast<std::uint64_t>(slot.dtype));
        mix(hash, slot.shape.size());
        for (std::size_t extent : slot.shape) {
            mix(hash, extent);
        }
        elements += slot.size;
    }
    const std::uint64_t mine[3] = {hash, slots_.size(), elements};
    std::vector<std::uint64_t> all(3 * context.size());
    MPI_Allgather(mine, 3, MPI_UINT64_T, all.data(), 3, MPI_UINT64_T, communicator(context));

    for (std::size_t rank = 1; rank < context.size(); ++rank) {
        if (all[3 * rank] != all[0]) {
            throw distributed_error(
                caller_ + ": the ranks hold different tensors: rank 0 has " +
                std::to_string(all[1]) + " tensors of " + std::to_string(all[2]) +
                " elements, rank " + std::to_string(rank) + " has " +
                std::to_string(all[3 * rank + 1]) + " tensors of " +
                std::to_string(all[3 * rank + 2]) +
                " elements (or other shapes or dtypes); every rank must build the same model");
        }
    }
}

std::size_t FlatBuffer::bucket_count() const {
    const std::size_t single_bucket = elements_per_bucket<float>(bucket_bytes_);
    const std::size_t double_bucket = elements_per_bucket<double>(bucket_bytes_);
    return (single_.size() + single_bucket - 1) / single_bucket +
           (double_.size() + double_bucket - 1) / double_bucket;
}

void FlatBuffer::set_header(std::size_t index, double value) {
    XGRAD_ASSERT(index < header_size_);
    if (header_in_single_) {
        single_[index] = static_cast<float>(value);
    } else {
        double_[index] = value;
    }
}

double FlatBuffer::header(std::size_t index) const {
    XGRAD_ASSERT(index < header_size_);
    return header_in_single_ ? double(single_[index]) : double_[index];
}

void FlatBuffer::pack(std::size_t index, const Tensor& source, double scale) {
    const Slot& slot = slots_.at(index);
    XGRAD_ASSERT(source.dtype() == slot.dtype && source.shape() == slot.shape);
    switch (slot.dtype) {
        case Dtype::float32:
            scale_copy(source.values<float>().data(), single_.data() + slot.offset, slot.size,
                       static_cast<float>(scale));
            break;
        case Dtype::float64:
            scale_copy(source.values<double>().data(), double_.data() + slot.offset, slot.size,
                       scale);
            break;
        default: {
            const std::int64_t* values = source.values<std::int64_t>().data();
            double* target = double_.data() + slot.offset;
            for (std::size_t i = 0; i < slot.size; ++i) {
                target[i] = static_cast<double>(values[i]) * scale;
            }
        }
    }
}

void FlatBuffer::pack_zeros(std::size_t index) {
    const Slot& slot = slots_.at(index);
    if (slot.dtype == Dtype::float32) {
        std::fill_n(single_.data() + slot.offset, slot.size, 0.0f);
    } else {
        std::fill_n(double_.data() + slot.offset, slot.size, 0.0);
    }
}

void FlatBuffer::unpack(std::size_t index, Tensor& target, double scale) const {
    const Slot& slot = slots_.at(index);
    XGRAD_ASSERT(target.dtype() == slot.dtype && target.shape() == slot.shape);
    switch (slot.dtype) {
        case Dtype::float32:
            scale_copy(single_.data() + slot.offset, target.mutable_values<float>().data(),
                       slot.size, static_cast<float>(scale));
            break;
        case Dtype::float64:
            scale_copy(double_.data() + slot.offset, target.mutable_values<double>().data(),
                       slot.size, scale);
            break;
        default: {
            const double* values = double_.data() + slot.offset;
            std::int64_t* out = target.mutable_values<std::int64_t>().data();
            for (std::size_t i = 0; i < slot.size; ++i) {
                out[i] = static_cast<std::int64_t>(std::llround(values[i] * scale));
            }
        }
    }
}

Tensor FlatBuffer::unpack_new(std::size_t index, double scale) const {
    const Slot& slot = slots_.at(index);
    Tensor tensor = zeros(slot.shape, slot.dtype);
    unpack(index, tensor, scale);
    return tensor;
}

template <class Call>
void FlatBuffer::for_each_bucket(Call call) {
    const std::size_t single_bucket = elements_per_bucket<float>(bucket_bytes_);
    for (std::size_t first = 0; first < single_.size(); first += single_bucket) {
        const std::size_t count = std::min(single_bucket, single_.size() - first);
        call(static_cast<void*>(single_.data() + first), static_cast<int>(count), MPI_FLOAT);
    }
    const std::size_t double_bucket = elements_per_bucket<double>(bucket_bytes_);
    for (std::size_t first = 0; first < double_.size(); first += double_bucket) {
        const std::size_t count = std::min(double_bucket, double_.size() - first);
        call(static_cast<void*>(double_.data() + first), static_cast<int>(count), MPI_DOUBLE);
    }
}

void FlatBuffer::all_reduce_sum(const Context& context) {
    const MPI_Comm comm = communicator(context);
    for_each_bucket([comm](void* data, int count, MPI_Datatype type) {
        MPI_Allreduce(MPI_IN_PLACE, data, count, type, MPI_SUM, comm);
    });
}

void FlatBuffer::broadcast(const Context& context, int root) {
    const MPI_Comm comm = communicator(context);
    for_each_bucket([comm, root](void* data, int count, MPI_Datatype type) {
        MPI_Bcast(data, count, type, root, comm);
    });
}

}  // namespace xgrad::distributed::detail

// Integer convolutions for quantized_conv2d: im2row plus the reference
// matrix loop, and oneDNN's u8 x s8 -> s32 convolution.

#include "kernels/int8_conv.hpp"

#include <algorithm>
#include <memory>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/int8_matmul.hpp"
#include "kernels/onednn_runtime.hpp"

namespace xgrad::detail {

namespace {

// oneDNN primitives each thread keeps, most recently used last.
constexpr std::size_t kCachedPrimitives = 16;
constexpr std::size_t kAlignment = 64;

// A byte buffer with a 64-byte aligned start, a cache line, for oneDNN's
// vector loads and stores.
struct AlignedBuffer {
    std::vector<std::byte> storage;
    void* data = nullptr;

    void allocate(std::size_t size) {
        storage.resize(size + kAlignment);
        void* aligned = storage.data();
        std::size_t space = storage.size();
        data = std::align(kAlignment, size, aligned, space);
    }
};

// One convolution for a shape, with the reorder that brings the OIHW weight
// into the blocked layout the convolution chose.
struct ConvPrimitive {
    Int8ConvShape shape;
    bool supported = false;  // false: oneDNN could not create it; use the reference
    dnnl::primitive convolution;
    dnnl::primitive reorder;
    dnnl::memory source;
    dnnl::memory user_weights;
    dnnl::memory weights;
    dnnl::memory sums;
    dnnl::memory conv_scratchpad;
    dnnl::memory reorder_scratchpad;
    AlignedBuffer weight_buffer;
    AlignedBuffer conv_scratch;
    AlignedBuffer reorder_scratch;
    dnnl_exec_arg_t conv_arguments[4] = {};
    dnnl_exec_arg_t reorder_arguments[3] = {};
};

dnnl::memory::dims dims(std::initializer_list<std::size_t> values) {
    dnnl::memory::dims out;
    for (std::size_t value : values) {
        out.push_back(static_cast<dnnl::memory::dim>(value));
    }
    return out;
}

// A memory object over an aligned buffer that the entry owns.
dnnl::memory owned_memory(const dnnl::memory::desc& desc, AlignedBuffer& buffer) {
    buffer.allocate(desc.get_size());
    return dnnl::memory(desc, cpu_engine(), buffer.data);
}

std::unique_ptr<ConvPrimitive> make_conv(const Int8ConvShape& s) {
    using dnnl::memory;
    auto entry = std::make_unique<ConvPrimitive>();
    entry->shape = s;

    // The input and the sums in NHWC and the weight in any layout: oneDNN
    // 2.6 offers its VNNI and AMX int8 kernels (brgconv) for these and falls
    // back to a slow reference for NCHW or a plain OIHW weight.
    const memory::desc source(dims({s.batch, s.channels, s.height, s.width}), memory::data_type::u8,
                              memory::format_tag::nhwc);
    const memory::desc user_weights(dims({s.out_channels, s.channels, s.kernel_h, s.kernel_w}),
                                    memory::data_type::s8, memory::format_tag::oihw);
    const memory::desc any_weights(dims({s.out_channels, s.channels, s.kernel_h, s.kernel_w}),
                                   memory::data_type::s8, memory::format_tag::any);
    const memory::desc sums(dims({s.batch, s.out_channels, s.out_h, s.out_w}),
                            memory::data_type::s32, memory::format_tag::nhwc);
    // oneDNN counts dilation from 0 (no gap between taps); xgrad from 1.
    const memory::dims dilation = dims({s.dilation_h - 1, s.dilation_w - 1});
    const memory::dims no_padding = {0, 0};
    // User scratchpads, owned by the entry, keep oneDNN from allocating its
    // own at execution.
    dnnl::primitive_attr attributes;
    attributes.set_scratchpad_mode(dnnl::scratchpad_mode::user);

    try {
        const dnnl::convolution_forward::desc description(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, source,
            any_weights, sums, dims({s.stride_h, s.stride_w}), dilation, no_padding, no_padding);
        const dnnl::convolution_forward::primitive_desc conv(description, attributes, cpu_engine());
        const dnnl::reorder::primitive_desc reorder(cpu_engine(), user_weights, cpu_engine(),
                                                    conv.weights_desc(), attributes);
        entry->convolution = dnnl::convolution_forward(conv);
        entry->reorder = dnnl::reorder(reorder);
        entry->source = memory(source, cpu_engine(), nullptr);
        entry->user_weights = memory(user_weights, cpu_engine(), nullptr);
        entry->sums = memory(sums, cpu_engine(), nullptr);
        entry->weights = owned_memory(conv.weights_desc(), entry->weight_buffer);
        entry->conv_scratchpad = owned_memory(conv.scratchpad_desc(), entry->conv_scratch);
        entry->reorder_scratchpad = owned_memory(reorder.scratchpad_desc(), entry->reorder_scratch);
    } catch (const dnnl::error&) {
        return entry;
    }

    entry->reorder_arguments[0] = {DNNL_ARG_FROM, entry->user_weights.get()};
    entry->reorder_arguments[1] = {DNNL_ARG_TO, entry->weights.get()};
    entry->reorder_arguments[2] = {DNNL_ARG_SCRATCHPAD, entry->reorder_scratchpad.get()};
    entry->conv_arguments[0] = {DNNL_ARG_SRC, entry->source.get()};
    entry->conv_arguments[1] = {DNNL_ARG_WEIGHTS, entry->weights.get()};
    entry->conv_arguments[2] = {DNNL_ARG_DST, entry->sums.get()};
    entry->conv_arguments[3] = {DNNL_ARG_SCRATCHPAD, entry->conv_scratchpad.get()};
    entry->supported = true;
    return entry;
}

// Per thread: a stream and the primitives for the shapes this thread ran.
struct OnednnState {
    dnnl::stream stream{cpu_engine()};
    std::vector<std::unique_ptr<ConvPrimitive>> primitives;
};

ConvPrimitive& find_conv(OnednnState& state, const Int8ConvShape& shape) {
    auto& cache = state.primitives;
    auto found = std::find_if(cache.begin(), cache.end(),
                              [&shape](const auto& entry) { return entry->shape == shape; });
    if (found == cache.end()) {
        if (cache.size() == kCachedPrimitives) {
            cache.erase(cache.begin());
        }
        cache.push_back(make_conv(shape));
        return *cache.back();
    }
    std::rotate(found, found + 1, cache.end());
    return *cache.back();
}

// Writes one sample's im2row matrix: row i * W_out + j contains the inputs that
// output position (i, j) reads, in the weight's (c, p, q) order.
void im2row(const Int8ConvShape& s, const std::uint8_t* sample, std::uint8_t* rows) {
    const std::size_t row_length = s.channels * s.kernel_h * s.kernel_w;
    for (std::size_t i = 0; i < s.out_h; ++i) {
        for (std::size_t j = 0; j < s.out_w; ++j) {
            std::uint8_t* row = rows + (i * s.out_w + j) * row_length;
            for (std::size_t c = 0; c < s.channels; ++c) {
                for (std::size_t p = 0; p < s.kernel_h; ++p) {
                    const std::size_t h = i * s.stride_h + p * s.dilation_h;
                    for (std::size_t q = 0; q < s.kernel_w; ++q) {
                        const std::size_t w = j * s.stride_w + q * s.dilation_w;
                        *row++ = sample[(h * s.width + w) * s.channels + c];
                    }
                }
            }
        }
    }
}

}  // namespace

void int8_conv_reference(const Int8ConvShape& shape, const std::uint8_t* q_x,
                         const std::int8_t* q_w, std::int32_t* sums) {
    const std::size_t row_length = shape.channels * shape.kernel_h * shape.kernel_w;
    const std::size_t positions = shape.out_h * shape.out_w;
    const std::size_t sample_size = shape.height * shape.width * shape.channels;
    thread_local std::vector<std::uint8_t> rows;
    if (rows.size() < positions * row_length) {
        rows.resize(positions * row_length);
    }
    for (std::size_t n = 0; n < shape.batch; ++n) {
        im2row(shape, q_x + n * sample_size, rows.data());
        int8_matmul_reference(rows.data(), q_w, positions, row_length, shape.out_channels,
                              sums + n * positions * shape.out_channels);
    }
}

bool int8_conv_onednn(const Int8ConvShape& shape, const std::uint8_t* q_x, const std::int8_t* q_w,
                      std::int32_t* sums) {
    thread_local OnednnState state;
    const OneThreadScope one_thread;
    ConvPrimitive& conv = find_conv(state, shape);
    if (!conv.supported) {
        return false;
    }
    // oneDNN takes non-const handles but only reads the input and weights.
    conv.source.set_data_handle(const_cast<std::uint8_t*>(q_x));
    conv.user_weights.set_data_handle(const_cast<std::int8_t*>(q_w));
    conv.sums.set_data_handle(sums);
    // NOTE: the weight is reordered at every call, because the op cannot see
    // whether its values changed since the last one, and quantized_conv2d
    // calls once per chunk of samples. A 64 x 64 x 3 x 3 weight is 36 KB.
    dnnl::error::wrap_c_api(
        dnnl_primitive_execute(conv.reorder.get(), state.stream.get(), 3, conv.reorder_arguments),
        "quantized_conv2d: oneDNN weight reorder failed");
    dnnl::error::wrap_c_api(
        dnnl_primitive_execute(conv.convolution.get(), state.stream.get(), 4, conv.conv_arguments),
        "quantized_conv2d: oneDNN convolution execution failed");
    state.stream.wait();
    return true;
}

}  // namespace xgrad::detail

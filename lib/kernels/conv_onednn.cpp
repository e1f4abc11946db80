// conv2d's float32 forward through oneDNN 2.6's convolution primitive.

#include "kernels/conv_onednn.hpp"

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/onednn_runtime.hpp"

namespace xgrad::detail {

namespace {

// Maximum number of oneDNN primitives each thread keeps, most recently used
// last.
// NOTE: each cached primitive keeps its reorder buffers until its thread
// exits, about 13 MB for the CNN example's largest layer at batch 256.
constexpr std::size_t kCachedPrimitives = 16;

struct ConvKey {
    Window2d window;
    std::size_t out_channels = 0;
    bool has_bias = false;

    bool operator==(const ConvKey& other) const {
        const Window2d& a = window;
        const Window2d& b = other.window;
        return out_channels == other.out_channels && has_bias == other.has_bias &&
               a.batch == b.batch && a.channels == b.channels && a.height == b.height &&
               a.width == b.width && a.kernel_h == b.kernel_h && a.kernel_w == b.kernel_w &&
               a.stride_h == b.stride_h && a.stride_w == b.stride_w && a.pad_h == b.pad_h &&
               a.pad_w == b.pad_w && a.dilation_h == b.dilation_h &&
               a.dilation_w == b.dilation_w;
    }
};

// One convolution for a shape. The user_* memories wrap the caller's NCHW
// and OIHW buffers. The others are in the layouts the convolution chose and
// own their buffers. A reorder is kept only where the two layouts differ.
struct ConvPrimitive {
    ConvKey key;
    bool supported = false;  // false: oneDNN could not create it; use im2col
    dnnl::convolution_forward convolution;
    dnnl::memory user_source;
    dnnl::memory user_weights;
    dnnl::memory user_destination;
    dnnl::memory bias;
    dnnl::memory source;
    dnnl::memory weights;
    dnnl::memory destination;
    dnnl::reorder to_source;
    dnnl::reorder to_weights;
    dnnl::reorder from_destination;
    bool reorder_source = false;
    bool reorder_weights = false;
    bool reorder_destination = false;
};

dnnl::memory::dim dim(std::size_t value) { return static_cast<dnnl::memory::dim>(value); }

std::unique_ptr<ConvPrimitive> make_conv(const ConvKey& key) {
    using dnnl::memory;
    auto entry = std::make_unique<ConvPrimitive>();
    entry->key = key;
    const Window2d& w = key.window;
    const auto f32 = memory::data_type::f32;
    const memory::dims source_dims{dim(w.batch), dim(w.channels), dim(w.height), dim(w.width)};
    const memory::dims weight_dims{dim(key.out_channels), dim(w.channels), dim(w.kernel_h),
                                   dim(w.kernel_w)};
    const memory::dims destination_dims{dim(w.batch), dim(key.out_channels), dim(w.out_h),
                                        dim(w.out_w)};
    const memory::desc user_source(source_dims, f32, memory::format_tag::nchw);
    const memory::desc user_weights(weight_dims, f32, memory::format_tag::oihw);
    const memory::desc user_destination(destination_dims, f32, memory::format_tag::nchw);
    const memory::desc bias({dim(key.out_channels)}, f32, memory::format_tag::x);
    const memory::dims strides{dim(w.stride_h), dim(w.stride_w)};
    // oneDNN counts dilation from 0 (no gap between taps), while xgrad counts
    // from 1.
    const memory::dims dilation{dim(w.dilation_h - 1), dim(w.dilation_w - 1)};
    // oneDNN checks out = (in + left + right - kernel extent) / stride + 1
    // with integer division, which is xgrad's output size for equal padding
    // on both sides.
    const memory::dims padding{dim(w.pad_h), dim(w.pad_w)};

    try {
        const memory::desc any_source(source_dims, f32, memory::format_tag::any);
        const memory::desc any_weights(weight_dims, f32, memory::format_tag::any);
        const memory::desc any_destination(destination_dims, f32, memory::format_tag::any);
        const auto description =
            key.has_bias ? dnnl::convolution_forward::desc(
                               dnnl::prop_kind::forward_inference,
                               dnnl::algorithm::convolution_direct, any_source, any_weights, bias,
                               any_destination, strides, dilation, padding, padding)
                         : dnnl::convolution_forward::desc(
                               dnnl::prop_kind::forward_inference,
                               dnnl::algorithm::convolution_direct, any_source, any_weights,
                               any_destination, strides, dilation, padding, padding);
        const dnnl::convolution_forward::primitive_desc conv(description, cpu_engine());
        entry->convolution = dnnl::convolution_forward(conv);
        entry->user_source = memory(user_source, cpu_engine(), nullptr);
        entry->user_weights = memory(user_weights, cpu_engine(), nullptr);
        entry->user_destination = memory(user_destination, cpu_engine(), nullptr);
        entry->bias = memory(bias, cpu_engine(), nullptr);
        entry->reorder_source = conv.src_desc() != user_source;
        entry->reorder_weights = conv.weights_desc() != user_weights;
        entry->reorder_destination = conv.dst_desc() != user_destination;
        if (entry->reorder_source) {
            entry->source = memory(conv.src_desc(), cpu_engine());
            entry->to_source = dnnl::reorder(entry->user_source, entry->source);
        }
        if (entry->reorder_weights) {
            entry->weights = memory(conv.weights_desc(), cpu_engine());
            entry->to_weights = dnnl::reorder(entry->user_weights, entry->weights);
        }
        if (entry->reorder_destination) {
            entry->destination = memory(conv.dst_desc(), cpu_engine());
            entry->from_destination = dnnl::reorder(entry->destination, entry->user_destination);
        }
    } catch (const dnnl::error&) {
        return entry;
    }
    entry->supported = true;
    return entry;
}

// Per thread: a stream and the primitives for the shapes this thread ran.
struct OnednnState {
    dnnl::stream stream{cpu_engine()};
    std::vector<std::unique_ptr<ConvPrimitive>> primitives;
};

ConvPrimitive& find_conv(OnednnState& state, const ConvKey& key) {
    auto& cache = state.primitives;
    auto found = std::find_if(cache.begin(), cache.end(),
                              [&key](const auto& entry) { return entry->key == key; });
    if (found == cache.end()) {
        if (cache.size() == kCachedPrimitives) {
            cache.erase(cache.begin());
        }
        cache.push_back(make_conv(key));
        return *cache.back();
    }
    std::rotate(found, found + 1, cache.end());
    return *cache.back();
}

}  // namespace

bool conv2d_forward_onednn(const Window2d& window, std::size_t out_channels, const float* x,
                           const float* weight, const float* bias, float* y) {
    if (window.batch == 0 || window.channels == 0 || out_channels == 0) {
        return false;  // im2col handles empty tensors without a primitive
    }
    thread_local OnednnState state;
    const OneThreadScope one_thread;
    ConvPrimitive& conv = find_conv(state, {window, out_channels, bias != nullptr});
    if (!conv.supported) {
        return false;
    }
    // oneDNN takes non-const handles but only reads the input, weight and bias.
    conv.user_source.set_data_handle(const_cast<float*>(x));
    conv.user_weights.set_data_handle(const_cast<float*>(weight));
    conv.user_destination.set_data_handle(y);
    dnnl::stream& stream = state.stream;
    // The weight is reordered at every call, because in training it changes
    // at every step and the op cannot see whether it did.
    if (conv.reorder_source) {
        conv.to_source.execute(stream, conv.user_source, conv.source);
    }
    if (conv.reorder_weights) {
        conv.to_weights.execute(stream, conv.user_weights, conv.weights);
    }
    const dnnl::memory& source = conv.reorder_source ? conv.source : conv.user_source;
    const dnnl::memory& weights = conv.reorder_weights ? conv.weights : conv.user_weights;
    const dnnl::memory& destination =
        conv.reorder_destination ? conv.destination : conv.user_destination;
    std::unordered_map<int, dnnl::memory> arguments{
        {DNNL_ARG_SRC, source}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, destination}};
    if (bias != nullptr) {
        conv.bias.set_data_handle(const_cast<float*>(bias));
        arguments.emplace(DNNL_ARG_BIAS, conv.bias);
    }
    conv.convolution.execute(stream, arguments);
    if (conv.reorder_destination) {
        conv.from_destination.execute(stream, conv.destination, conv.user_destination);
    }
    stream.wait();
    return true;
}

}  // namespace xgrad::detail

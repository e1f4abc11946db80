// Integer matrix products for quantized_linear: a plain reference loop and
// oneDNN's u8 x s8 -> s32 matmul.

#include "kernels/int8_matmul.hpp"

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/onednn_runtime.hpp"

namespace xgrad::detail {

namespace {

// oneDNN primitives each thread keeps, most recently used last.
constexpr std::size_t kCachedPrimitives = 16;
constexpr std::size_t kScratchAlignment = 64;

bool has_vnni(dnnl::cpu_isa isa) {
    using dnnl::cpu_isa;
    return isa == cpu_isa::avx2_vnni || isa == cpu_isa::avx512_core_vnni ||
           isa == cpu_isa::avx512_core_bf16 || isa == cpu_isa::avx512_core_amx;
}

// One matmul primitive for a shape: (rows, in) u8 times (in, out) s8 into
// (rows, out) s32. The weight (out, in) in row-major order is the (in, out)
// matrix in column-major order, format tag `ba`, so no copy is needed first.
// NOTE: oneDNN repacks the weight into its blocked layout in the scratchpad
// at every call, which at batch 1 costs more than the product itself. A
// packed copy made once would need to know when the weight's values change,
// and the op cannot see that.
struct MatmulPrimitive {
    std::size_t rows = 0;
    std::size_t in = 0;
    std::size_t out = 0;
    bool supported = false;  // false: oneDNN could not create it; use the reference
    dnnl::primitive matmul;
    dnnl::memory source;
    dnnl::memory weights;
    dnnl::memory sums;
    dnnl::memory scratchpad;
    std::vector<std::byte> scratch;
    dnnl_exec_arg_t arguments[4] = {};
};

std::unique_ptr<MatmulPrimitive> make_matmul(std::size_t rows, std::size_t in, std::size_t out) {
    using dnnl::memory;
    auto entry = std::make_unique<MatmulPrimitive>();
    entry->rows = rows;
    entry->in = in;
    entry->out = out;

    const auto m = static_cast<memory::dim>(rows);
    const auto k = static_cast<memory::dim>(in);
    const auto n = static_cast<memory::dim>(out);
    const memory::desc source({m, k}, memory::data_type::u8, memory::format_tag::ab);
    const memory::desc weights({k, n}, memory::data_type::s8, memory::format_tag::ba);
    const memory::desc sums({m, n}, memory::data_type::s32, memory::format_tag::ab);
    // A user scratchpad, owned by the entry, keeps oneDNN from allocating its
    // own at execution.
    dnnl::primitive_attr attributes;
    attributes.set_scratchpad_mode(dnnl::scratchpad_mode::user);

    try {
        const dnnl::matmul::primitive_desc description(dnnl::matmul::desc(source, weights, sums),
                                                       attributes, cpu_engine());
        entry->matmul = dnnl::matmul(description);

        // 64-byte alignment, a cache line, for oneDNN's vector loads and stores.
        const memory::desc scratchpad = description.scratchpad_desc();
        entry->scratch.resize(scratchpad.get_size() + kScratchAlignment);
        void* aligned = entry->scratch.data();
        std::size_t space = entry->scratch.size();
        std::align(kScratchAlignment, scratchpad.get_size(), aligned, space);

        entry->source = memory(source, cpu_engine(), nullptr);
        entry->weights = memory(weights, cpu_engine(), nullptr);
        entry->sums = memory(sums, cpu_engine(), nullptr);
        entry->scratchpad = memory(scratchpad, cpu_engine(), aligned);
    } catch (const dnnl::error&) {
        return entry;
    }

    entry->arguments[0] = {DNNL_ARG_SRC, entry->source.get()};
    entry->arguments[1] = {DNNL_ARG_WEIGHTS, entry->weights.get()};
    entry->arguments[2] = {DNNL_ARG_DST, entry->sums.get()};
    entry->arguments[3] = {DNNL_ARG_SCRATCHPAD, entry->scratchpad.get()};
    entry->supported = true;
    return entry;
}

// Per thread: a stream and the primitives for the shapes this thread ran.
struct OnednnState {
    dnnl::stream stream{cpu_engine()};
    std::vector<std::unique_ptr<MatmulPrimitive>> primitives;
};

MatmulPrimitive& find_matmul(OnednnState& state, std::size_t rows, std::size_t in,
                             std::size_t out) {
    auto& cache = state.primitives;
    auto found = std::find_if(cache.begin(), cache.end(), [&](const auto& entry) {
        return entry->rows == rows && entry->in == in && entry->out == out;
    });
    if (found == cache.end()) {
        if (cache.size() == kCachedPrimitives) {
            cache.erase(cache.begin());
        }
        cache.push_back(make_matmul(rows, in, out));
        return *cache.back();
    }
    std::rotate(found, found + 1, cache.end());
    return *cache.back();
}

}  // namespace

// sums[m, n] = sum_k q_x[m, k] * q_w[n, k], one int32 sum per output element.
void int8_matmul_reference(const std::uint8_t* q_x, const std::int8_t* q_w, std::size_t rows,
                        std::size_t in, std::size_t out, std::int32_t* sums) {
    for (std::size_t m = 0; m < rows; ++m) {
        const std::uint8_t* x_row = q_x + m * in;
        for (std::size_t n = 0; n < out; ++n) {
            const std::int8_t* w_row = q_w + n * in;
            std::int32_t sum = 0;
            for (std::size_t k = 0; k < in; ++k) {
                sum += static_cast<std::int32_t>(x_row[k]) * static_cast<std::int32_t>(w_row[k]);
            }
            sums[m * out + n] = sum;
        }
    }
}

// Computes the same sums as int8_matmul_reference() with oneDNN. Returns false,
// leaving `sums` untouched, when oneDNN cannot create a primitive for the shape.
bool int8_matmul_onednn(const std::uint8_t* q_x, const std::int8_t* q_w, std::size_t rows,
                     std::size_t in, std::size_t out, std::int32_t* sums) {
    thread_local OnednnState state;
    const OneThreadScope one_thread;
    MatmulPrimitive& matmul = find_matmul(state, rows, in, out);
    if (!matmul.supported) {
        return false;
    }
    // oneDNN takes non-const handles but only reads the source and weights.
    matmul.source.set_data_handle(const_cast<std::uint8_t*>(q_x));
    matmul.weights.set_data_handle(const_cast<std::int8_t*>(q_w));
    matmul.sums.set_data_handle(sums);
    // The C call takes the arguments as an array; the C++ execute() would
    // build a vector from a map at every call.
    dnnl::error::wrap_c_api(
        dnnl_primitive_execute(matmul.matmul.get(), state.stream.get(), 4, matmul.arguments),
        "quantized_linear: oneDNN matmul execution failed");
    state.stream.wait();
    return true;
}

bool onednn_has_int8_dot_product() {
    static const bool available = has_vnni(dnnl::get_effective_cpu_isa());
    return available;
}

}  // namespace xgrad::detail

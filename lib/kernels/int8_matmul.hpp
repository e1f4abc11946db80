#pragma once

// Integer matrix products for quantized_linear():
//   sums[m, n] = sum_k q_x[m, k] * q_w[n, k]
// with q_x uint8 of shape (rows, in), q_w int8 of shape (out, in) in
// row-major order, and int32 sums of shape (rows, out).

#include <cstddef>
#include <cstdint>

namespace xgrad::detail {

/// The plain loop, one int32 sum per output element. Runs anywhere.
void int8_matmul_reference(const std::uint8_t* q_x, const std::int8_t* q_w, std::size_t rows,
                           std::size_t in, std::size_t out, std::int32_t* sums);

/// oneDNN's matmul on the calling thread alone, with a per-thread cache of
/// primitives. Returns false, leaving `sums` untouched, when oneDNN cannot
/// create a primitive for the shape. Call it only when
/// onednn_has_int8_dot_product(): without VNNI, oneDNN adds pairs of products
/// in saturating int16 and the sums can differ from the reference.
bool int8_matmul_onednn(const std::uint8_t* q_x, const std::int8_t* q_w, std::size_t rows,
                        std::size_t in, std::size_t out, std::int32_t* sums);

/// True when oneDNN's instruction set on this CPU (after any
/// DNNL_MAX_CPU_ISA limit) includes VNNI or AMX.
bool onednn_has_int8_dot_product();

}  // namespace xgrad::detail

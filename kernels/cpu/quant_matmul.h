// Matmul kernels that read weights in their stored format (F32, F16, BF16 and GGML's block
// quantizations), so that a decode step reads the file's bytes, not a 5x larger fp32 copy.
//
// Two steps: quantize_activations turns the n input rows into what the weight's dot product reads
// (8-bit blocks for the quantized formats, fp32 otherwise), once per matmul; quant_matmul_rows then
// computes a range of output columns. Each weight row is loaded once for all n input rows, so a
// batch of decode rows costs about one pass over the weights. Accumulation is fp32. The kernels are
// single-threaded: the caller's thread pool splits the weight rows into ranges.
//
// The instruction set is chosen once at run time (one binary for any x86-64): AMX-INT8 with
// AVX-512 when the CPU and the OS allow the tiles, else AVX-512 (F, BW, VL, DQ and VNNI), else
// AVX2+FMA+F16C, else portable scalar code. HOGWILD_CPU_FEATURES=scalar (or avx2, avx512, amx) in
// the environment, or set_quant_isa, forces one. AMX only changes the lane layout's kernel at 16
// or more input rows (prefill), and gives its bits: the tiles make the same integer block dots.
// AVX-512-BF16's dot products are not used: they would round the activations to bf16 (3 digits),
// while F16/BF16 weights here meet fp32 activations, and at decode batches these kernels are
// bound by reading the weights, not by the multiplies.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/tensor.h"

namespace hogwild::cpu {

// Whether quant_matmul_rows reads weights of this type.
bool quant_matmul_supports(DType weight);

// Bytes of the activation buffer quantize_activations writes for n rows of k values.
size_t activation_bytes(DType weight, int64_t n, int64_t k);

// Converts x (n rows of k fp32, row stride x_stride) into the form weight's dot kernel reads
// (8-bit blocks of 32 with their scale and sum for the 32-element formats, 8-bit blocks of 256
// with sums of 16 for K-quants, fp32 for F16/BF16/F32). k must be a whole number of weight blocks;
// act must be 4-byte aligned (its blocks hold floats).
void quantize_activations(DType weight, const float* x, int64_t n, int64_t k, int64_t x_stride,
                          void* act);

// out[i*out_stride + j] = dot(x_i, W_j) for i in [0,n), j in [row_begin,row_end). W: rows of
// k elements of `weight` type in GGML block layout, dtype_row_bytes(weight,k) apart, starting at
// `w`. Batch-invariant: out[i][j] is the same bits for any n and any position of row i in the
// batch (for one instruction set), so a batch's rows round as they would alone.
void quant_matmul_rows(DType weight, const void* w, int64_t k, const void* act, int64_t n,
                       int64_t row_begin, int64_t row_end, float* out, int64_t out_stride);

// ---- The lane layout: Q4_0 / Q4_1 matrices of whole groups of 16 rows, each group's blocks
// interleaved so that block b of its 16 rows is one contiguous run (the rows' scales, then their
// nibbles, 4 bytes of each row in turn). The AVX-512 and AVX2 kernels then read 16 rows with plain
// loads, in one sequential stream, instead of 16 gathered streams; the bytes and their number are
// the same, and so is every result bit (the same operations on the same values). The CPU backend
// keeps Q4_0 / Q4_1 weights this way; rows are addressed by their index in the whole matrix.
bool lane_layout_fits(DType weight, int64_t rows);  // Q4_0 / Q4_1 and rows a multiple of 16
constexpr int64_t kLaneGroupRows = 16;

// Writes `rows` plain GGML rows of k elements (dtype_row_bytes apart) as rows [first, first +
// rows) of the lane-layout matrix at `base`.
void to_lane_layout(DType weight, const void* plain, int64_t k, int64_t rows, void* base,
                    int64_t first);
// Row `row` of the lane-layout matrix at `base`, as one plain GGML row.
void from_lane_layout(DType weight, const void* base, int64_t k, int64_t row, void* plain);

// quant_matmul_rows for rows [first + row_begin, first + row_end) of a lane-layout matrix:
// out[i*out_stride + j] = dot(x_i, W_{first + j}). The same bits as quant_matmul_rows on the
// plain rows, with the same instruction set.
void quant_matmul_lane_rows(DType weight, const void* base, int64_t first, int64_t k,
                            const void* act, int64_t n, int64_t row_begin, int64_t row_end,
                            float* out, int64_t out_stride);

// The instruction set of the kernels, each a superset of the one before (Amx: Avx512 plus tiles).
enum class QuantIsa { Scalar, Avx2, Avx512, Amx };
const char* quant_isa_name(QuantIsa isa);
bool quant_isa_available(QuantIsa isa);
// The one in use: chosen at the first call (see above). Throws on a bad HOGWILD_CPU_FEATURES
// value: call it once on the main thread (at model load) before the kernels run on a pool.
QuantIsa quant_isa();
// The one a HOGWILD_CPU_FEATURES value asks for ("scalar", "avx2", "avx512", "amx"; nullptr or "":
// the best this CPU has); throws naming the value when it is unknown or this CPU lacks it.
QuantIsa quant_isa_for(const char* features);
// Forces one (tests, benchmarks); throws when this CPU lacks it.
void set_quant_isa(QuantIsa isa);

}  // namespace hogwild::cpu

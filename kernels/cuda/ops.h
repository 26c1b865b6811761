// Launchers of the CUDA kernels behind CudaBackend (internal to kernels/cuda; the public face is
// kernels/backend.h). Shapes and dtypes arrive checked by Backend's public ops
// (kernels/backend.cpp); a launcher checks only this backend's limits (f32/bf16 operands, grid
// sizes), queues its kernel on `stream` and checks the launch; none synchronizes. Plain C++17 so
// both nvcc and the C++20 host compiler read it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/backend.h"

namespace hogwild::cuda {

// Errors a kernel finds in its inputs (the CPU backend throws for them at once). A kernel cannot
// throw: it writes 1 into its flag, in mapped host memory, and skips the bad element; the backend
// reads the flags after the next synchronisation and throws hogwild::Error naming them.
enum ErrorFlag : int {
  kBadTokenId = 0,    // embedding: id outside the table
  kBadRowIndex = 1,   // scatter_rows / gather_rows: row outside the tensor
  kBadViewEntry = 2,  // block_attention: offsets or entries out of range
  kBadPage = 3,       // block_attention: a page outside the key/value pool
  kErrorFlagCount = 4,
};
const char* error_flag_message(int flag);

void embedding(const Tensor& table, const Tensor& ids, const Tensor& out, int* error_flags,
               cudaStream_t stream);
void rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out,
              cudaStream_t stream);
void head_rms_norm(const Tensor& x, const Tensor& weight, float eps, cudaStream_t stream);
void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, int64_t head_dim,
          cudaStream_t stream);
void swiglu(const Tensor& gate_up, const Tensor& out, cudaStream_t stream);
void add(const Tensor& x, const Tensor& y, cudaStream_t stream);
// dst[rows[i]] = src[i] (scatter) or dst[i] = src[rows[i]] (gather); same dtype on both sides.
void copy_rows(const Tensor& src, const Tensor& rows, const Tensor& dst, bool scatter,
               int* error_flags, cudaStream_t stream);
// out[r] = bias for every row r (the bias term of a GEMM with beta = 1).
void broadcast_rows(const Tensor& bias, const Tensor& out, cudaStream_t stream);
// Dense bf16 copy of x (rows x cols, leading dimension cols) into `bf16_out`.
void convert_to_bf16(const Tensor& x, void* bf16_out, cudaStream_t stream);

}  // namespace hogwild::cuda

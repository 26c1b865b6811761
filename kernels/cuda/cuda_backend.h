// What the CUDA backend offers beyond kernels/backend.h (make_cuda_backend is declared there).
//
// Behaviour worth knowing:
// - Every op is queued on one stream owned by the backend; nothing synchronises except
//   synchronize(), download_f32(), the uploads (they return when the host buffer may be reused)
//   and release().
// - CUDA graphs are not implemented: every step is launched op by op. A step as the engine runs
//   it could not be captured as it stands either: its uploads synchronise, and block_attention
//   and bf16 matmuls may grow their workspaces (cudaMalloc) on the first calls.
// - Inputs checked on the host by the CPU backend (token ids, row indices, view entries, pages)
//   are checked by the kernels; a bad element is skipped and reported as hogwild::Error at the
//   next synchronize() / download_f32().
// - dtypes: F32 everywhere; BF16 for weights (matmul via cublasGemmEx, fp32 accumulation, the
//   activations rounded to bf16), for the K/V pools of block_attention, and for the inputs and
//   outputs of the elementwise ops. I32 for ids, positions, rows, page tables and views.
// - Accuracy against the CPU (fp32): elementwise ops and fp32 GEMMs to fp32 rounding; rope and
//   the query rotation of block_attention to ~2e-7 absolute (see rope_cos_sin in
//   device_math.cuh); block_attention to ~1e-6 (exp2f, another order of summation).
#pragma once

#include <cuda_runtime.h>

#include "kernels/backend.h"

namespace hogwild {

// The stream every op of a CUDA backend runs on (e.g. for timing with events). Throws
// hogwild::Error for a backend that is not a CUDA one.
cudaStream_t cuda_stream(Backend& backend);

}  // namespace hogwild

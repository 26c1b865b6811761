// What the CUDA backend offers beyond kernels/backend.h (make_cuda_backend is declared there).
//
// Behaviour worth knowing:
// - Every op is queued on one stream owned by the backend; nothing synchronises except
//   synchronize(), download_f32(), upload_f32() and release(). upload_i32() (a step's packed
//   inputs) copies the host values into a pinned staging buffer and queues one cudaMemcpyAsync:
//   no wait (a staging buffer is reused only once its copy's event has completed).
// - CUDA graphs (run_step, kernels/backend.h): per key, the first call runs eagerly (a warm-up
//   that grows block_attention's workspace and the bf16 matmul scratch to the key's sizes), the
//   second is captured (cudaStreamBeginCapture, thread-local mode) into a cudaGraphExec and
//   launched, later ones are replayed with cudaGraphLaunch. Inside a capture, allocating,
//   releasing, uploading, downloading, synchronising or growing a workspace is refused with a
//   clear error. A graph is captured again when a workspace it holds has moved, and every graph
//   is dropped when a tensor is released. Collectives outside this backend (MPI staging) cannot
//   be captured: the engine runs such steps eagerly.
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

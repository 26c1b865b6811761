// The CUDA launcher of Backend::sample_tokens (internal to kernels/cuda): one block per row, the
// rule of kernels/sampling_rule.h by threshold searches over rank keys instead of a sort.
#pragma once

#include <cuda_runtime.h>

#include "kernels/tensor.h"

namespace hogwild::cuda {

// Arguments as Backend::sample_tokens states them, already checked; queued on `stream`.
void sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& suppressed,
                   const Tensor& tokens, const Tensor& logprobs, cudaStream_t stream);

}  // namespace hogwild::cuda

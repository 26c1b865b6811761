// The CPU backend's sample_tokens (kernels/backend.h): the reference implementation of the rule
// in kernels/sampling_rule.h, written the plain way (sort the eligible tokens by rank, prefix
// sums), which the CUDA kernel's threshold searches must reproduce.
#pragma once

#include "kernels/tensor.h"

namespace hogwild::cpu {

// Arguments as Backend::sample_tokens states them, already checked; host memory.
void sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& suppressed,
                   const Tensor& tokens, const Tensor& logprobs);

}  // namespace hogwild::cpu

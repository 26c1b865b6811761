// Device helpers shared by the CUDA kernels (nvcc only; device code is C++17): element access for
// tensors whose dtype (F32 or BF16) is chosen at run time, warp reductions, and the RoPE angle.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/error.h"
#include "kernels/backend.h"

namespace hogwild::cuda {

// A 2-D F32 or BF16 tensor as kernels read it. The dtype is a run-time flag: the branch is the
// same for every thread, costs nothing next to the memory traffic, and saves a template
// instantiation per dtype combination of every elementwise op.
struct Elements {
  void* data = nullptr;
  int64_t stride = 0;
  bool bf16 = false;

  __device__ float load(int64_t row, int64_t col) const {
    const int64_t index = row * stride + col;
    return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(data)[index])
                : static_cast<const float*>(data)[index];
  }
  __device__ void store(int64_t row, int64_t col, float value) const {
    const int64_t index = row * stride + col;
    if (bf16) {
      static_cast<__nv_bfloat16*>(data)[index] = __float2bfloat16(value);  // round to nearest even
    } else {
      static_cast<float*>(data)[index] = value;
    }
  }
};

inline Elements elements_of(const Tensor& tensor, const char* what) {
  HOGWILD_CHECK(tensor.dtype == DType::F32 || tensor.dtype == DType::BF16,
                "the CUDA backend needs ", what, " in f32 or bf16, not ", dtype_name(tensor.dtype));
  return Elements{tensor.data, tensor.stride, tensor.dtype == DType::BF16};
}

inline const int32_t* ints_of(const Tensor& tensor, const char* what) {
  HOGWILD_CHECK(tensor.dtype == DType::I32, "the CUDA backend needs ", what, " in i32, not ",
                dtype_name(tensor.dtype));
  return static_cast<const int32_t*>(tensor.data);
}

__device__ inline float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

__device__ inline float warp_max(float value) {
  for (int offset = 16; offset > 0; offset /= 2)
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

// cos and sin of position * inv_freq. The angle reaches 1e5+ radians for long contexts, where an
// fp32 product keeps no phase at all. The product is taken in double and reduced to turns in
// [-0.5, 0.5] (3 double operations, cheap even where fp64 is slow); sincospif then works on an
// fp32 argument of magnitude <= 1, whose rounding (2^-25) is an angle error of about 1e-7 rad.
// The CPU backend takes cos/sin of the double angle: the two agree to ~2e-7 absolute.
__device__ inline void rope_cos_sin(int32_t position, float inv_freq, float* cosine, float* sine) {
  constexpr double kInverseTwoPi = 0.15915494309189533577;
  double turns = static_cast<double>(position) * static_cast<double>(inv_freq) * kInverseTwoPi;
  turns -= rint(turns);
  sincospif(static_cast<float>(2.0 * turns), sine, cosine);
}

}  // namespace hogwild::cuda

// Backend::sample_tokens on the device: one block per logits row. The CPU reference
// (kernels/cpu/sampling.cpp) sorts the eligible tokens by rank and takes prefix sums; here the
// search of kernels/sampling_search.h finds the same sets by thresholds on the rank key. All masses
// are exact integer sums (kernels/sampling_rule.h), so the result is the CPU's token bit for bit
// whatever order the block reduces in.
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/sampling.h"
#include "kernels/sampling_rule.h"
#include "kernels/sampling_search.h"

namespace hogwild::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullMask = 0xffffffffu;

// Block-wide reductions; every thread gets the result. `scratch` holds kWarps values.
template <typename T>
__device__ T block_sum(T value, T* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1)
    value += __shfl_xor_sync(kFullMask, value, offset);
  __syncthreads();  // the previous reduction's readers are done with scratch
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = value;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < kWarps; ++w) total += scratch[w];
  return total;
}

__device__ uint64_t block_max(uint64_t value, uint64_t* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const uint64_t other = __shfl_xor_sync(kFullMask, value, offset);
    value = other > value ? other : value;
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = value;
  __syncthreads();
  uint64_t best = 0;
  for (int w = 0; w < kWarps; ++w) best = scratch[w] > best ? scratch[w] : best;
  return best;
}

// Inclusive prefix sum over the block in thread order; `total` gets the block's sum.
__device__ uint64_t block_inclusive_scan(uint64_t value, uint64_t* scratch, uint64_t& total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int offset = 1; offset < 32; offset <<= 1) {
    const uint64_t other = __shfl_up_sync(kFullMask, value, offset);
    if (lane >= offset) value += other;
  }
  __syncthreads();
  if (lane == 31) scratch[warp] = value;
  __syncthreads();
  uint64_t before = 0;
  total = 0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += scratch[w];
    total += scratch[w];
  }
  return value + before;
}

struct Row {
  const float* logits;
  const int32_t* suppressed;  // nullptr: none
  int64_t vocab;
  float maximum;
  float temperature;

  __device__ bool candidate(int64_t i) const {
    return (suppressed == nullptr || suppressed[i] == 0) && !isnan(logits[i]);
  }
  // The token's weight when eligible (a candidate of nonzero weight), else 0.
  __device__ uint64_t weight(int64_t i) const {
    if (!candidate(i)) return 0;
    return sampling::logit_weight(logits[i], maximum, temperature);
  }
  __device__ uint64_t weight_of_key(uint32_t key) const {
    return sampling::logit_weight(sampling::key_logit(key), maximum, temperature);
  }
};

// The passes of sampling::search_sample as block-wide reductions over the row.
struct BlockOps {
  const Row& row;
  uint64_t* scratch;

  __device__ uint64_t at_least(uint64_t threshold, bool mass) {
    uint64_t local = 0;
    if (threshold <= 0xffffffffull)
      for (int64_t i = threadIdx.x; i < row.vocab; i += kThreads) {
        if (sampling::rank_key(row.logits[i]) < threshold) continue;
        const uint64_t w = row.weight(i);
        if (w > 0) local += mass ? w : 1;
      }
    return block_sum(local, scratch);
  }

  __device__ uint64_t weight_at_least(uint64_t least) {
    uint64_t local = 0;
    for (int64_t i = threadIdx.x; i < row.vocab; i += kThreads)
      local += row.weight(i) >= least ? 1 : 0;
    return block_sum(local, scratch);
  }

  __device__ uint64_t weight_of_key(uint32_t key) const { return row.weight_of_key(key); }

  // Chunks of kThreads ids in order: a scan ranks the ties, a second one accumulates the kept
  // weights; the first thread past the target ends the search.
  __device__ int32_t first_crossing(const sampling::SearchPrefix& prefix, uint64_t target) {
    uint64_t carry_mass = 0, carry_ties = 0;
    for (int64_t base = 0; base < row.vocab; base += kThreads) {
      const int64_t i = base + threadIdx.x;
      uint64_t w = 0, tie = 0;
      if (i < row.vocab) {
        w = row.weight(i);
        const uint32_t key = sampling::rank_key(row.logits[i]);
        if (w > 0 && key == prefix.key) tie = 1;
        if (key < prefix.key) w = 0;
      }
      uint64_t tie_total = 0;
      const uint64_t tie_rank = block_inclusive_scan(tie, scratch, tie_total) - tie + carry_ties;
      if (tie == 1 && tie_rank >= prefix.ties) w = 0;
      uint64_t mass_total = 0;
      const uint64_t cumulative = block_inclusive_scan(w, scratch, mass_total) + carry_mass;
      // The lowest id that crosses the target, as a maximum of (2^63 - id).
      const uint64_t crossing =
          w > 0 && cumulative > target ? (uint64_t{1} << 63) - static_cast<uint64_t>(i) : 0;
      const uint64_t first = block_max(crossing, scratch);
      if (first != 0) return static_cast<int32_t>((uint64_t{1} << 63) - first);
      carry_mass += mass_total;
      carry_ties += tie_total;
    }
    return -1;  // unreachable: the target is below the kept mass
  }
};

__global__ void sample_kernel(const float* logits, int64_t logits_stride, int64_t vocab,
                              const int32_t* params, int64_t params_stride,
                              const int32_t* suppressed, int64_t suppressed_stride, int32_t* tokens,
                              int64_t tokens_stride, float* logprobs, int64_t logprobs_stride) {
  __shared__ uint64_t scratch[kWarps];
  __shared__ double scratch_double[kWarps];
  const int64_t r = blockIdx.x;
  Row row{logits + r * logits_stride,
          suppressed == nullptr ? nullptr : suppressed + r * suppressed_stride, vocab, 0.0f, 0.0f};
  const sampling::RowParams p = sampling::unpack_row(params + r * params_stride);

  // Greedy's token (highest key, lowest id: the maximum of key << 32 | (2^32 - 1 - id)), and
  // whether the row has a distribution for its logprob.
  uint64_t best = 0, bad = 0;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    if (row.suppressed != nullptr && row.suppressed[i] != 0) continue;
    const float x = row.logits[i];
    if (isnan(x) || x == INFINITY) bad = 1;
    if (isnan(x)) continue;
    const uint64_t packed = (static_cast<uint64_t>(sampling::rank_key(x)) << 32) |
                            (0xffffffffull - static_cast<uint64_t>(i));
    best = packed > best ? packed : best;
  }
  best = block_max(best, scratch);
  bad = block_max(bad, scratch);
  int32_t token = -1;
  if (best != 0) {
    token = static_cast<int32_t>(0xffffffffull - (best & 0xffffffffull));
    row.maximum = row.logits[token];
    row.temperature = p.temperature;
    if (p.temperature >= sampling::kGreedyBelowTemperature && !isinf(row.maximum)) {
      BlockOps ops{row, scratch};
      token = sampling::search_sample(ops, p);
    }
  }
  if (threadIdx.x == 0) tokens[r * tokens_stride] = token;
  if (logprobs == nullptr) return;
  if (token < 0 || bad != 0 || row.maximum == -INFINITY) {
    if (threadIdx.x == 0) logprobs[r * logprobs_stride] = NAN;
    return;
  }
  const double maximum = row.maximum;
  double local = 0.0;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads)
    if (row.suppressed == nullptr || row.suppressed[i] == 0)
      local += exp(static_cast<double>(row.logits[i]) - maximum);
  const double total = block_sum(local, scratch_double);
  if (threadIdx.x == 0)
    logprobs[r * logprobs_stride] =
        static_cast<float>(static_cast<double>(row.logits[token]) - (maximum + log(total)));
}

}  // namespace

void sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& suppressed,
                   const Tensor& tokens, const Tensor& logprobs, cudaStream_t stream) {
  const bool one_mask = !suppressed.empty() && suppressed.rows == 1;
  sample_kernel<<<static_cast<unsigned>(logits.rows), kThreads, 0, stream>>>(
      static_cast<const float*>(logits.data), logits.stride, logits.cols,
      static_cast<const int32_t*>(params.data), params.stride,
      static_cast<const int32_t*>(suppressed.data), one_mask ? 0 : suppressed.stride,
      static_cast<int32_t*>(tokens.data), tokens.stride, static_cast<float*>(logprobs.data),
      logprobs.stride);
  HOGWILD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace hogwild::cuda

// Backend::sample_tokens on the device: one block per logits row. The CPU reference
// (kernels/cpu/sampling.cpp) sorts the eligible tokens by rank and takes prefix sums; here every
// "first L tokens in rank order" is found as a threshold on the 32-bit rank key by binary search
// (32 counting passes over the row), ties at the threshold taken in id order, which is the same
// set. All masses are exact integer sums (kernels/sampling_rule.h), so the result is the CPU's
// token bit for bit whatever order the block reduces in.
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/sampling.h"
#include "kernels/sampling_rule.h"

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

// Count (mass = false) or mass (true) of the eligible tokens with rank key >= threshold.
__device__ uint64_t eligible_at_least(const Row& row, uint64_t threshold, bool mass,
                                      uint64_t* scratch) {
  uint64_t local = 0;
  if (threshold <= 0xffffffffull)
    for (int64_t i = threadIdx.x; i < row.vocab; i += kThreads) {
      if (sampling::rank_key(row.logits[i]) < threshold) continue;
      const uint64_t w = row.weight(i);
      if (w > 0) local += mass ? w : 1;
    }
  return block_sum(local, scratch);
}

// The first `keep` eligible tokens in rank order, as a threshold key, the count above it and
// how many of the ties at it (in id order) belong.
struct Prefix {
  uint64_t key = 0;
  uint64_t above = 0;
  uint64_t ties = 0;
};

__device__ Prefix rank_prefix(const Row& row, uint64_t keep, uint64_t* scratch) {
  // The largest key with at least `keep` eligible tokens at or above it.
  uint64_t key = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const uint64_t trial = key | (uint64_t{1} << bit);
    if (eligible_at_least(row, trial, false, scratch) >= keep) key = trial;
  }
  Prefix prefix;
  prefix.key = key;
  prefix.above = eligible_at_least(row, key + 1, false, scratch);
  prefix.ties = keep - prefix.above;
  return prefix;
}

__device__ int32_t sample_row(const Row& row, const sampling::RowParams& p, uint64_t* scratch) {
  const uint64_t eligible = eligible_at_least(row, 0, false, scratch);
  uint64_t keep = p.top_k > 0 && static_cast<uint64_t>(p.top_k) < eligible
                      ? static_cast<uint64_t>(p.top_k)
                      : eligible;
  if (p.top_p < 1.0f) {
    uint64_t mass_k = 0;
    if (keep == eligible) {
      mass_k = eligible_at_least(row, 0, true, scratch);
    } else {
      const Prefix k = rank_prefix(row, keep, scratch);
      mass_k = eligible_at_least(row, k.key + 1, true, scratch) +
               k.ties * row.weight_of_key(static_cast<uint32_t>(k.key));
    }
    const uint64_t target = sampling::top_p_target(p.top_p, mass_k);
    // The largest key whose tokens at or above it reach the target mass.
    uint64_t key = 0;
    for (int bit = 31; bit >= 0; --bit) {
      const uint64_t trial = key | (uint64_t{1} << bit);
      if (eligible_at_least(row, trial, true, scratch) >= target) key = trial;
    }
    const uint64_t above_mass = eligible_at_least(row, key + 1, true, scratch);
    const uint64_t above = eligible_at_least(row, key + 1, false, scratch);
    const uint64_t w = row.weight_of_key(static_cast<uint32_t>(key));
    const uint64_t keep_p = above + (target - above_mass + w - 1) / w;
    keep = keep_p < keep ? keep_p : keep;
  }
  if (p.min_p > 0.0f) {
    const uint64_t least = sampling::min_p_weight(p.min_p);
    uint64_t local = 0;
    for (int64_t i = threadIdx.x; i < row.vocab; i += kThreads)
      local += row.weight(i) >= least ? 1 : 0;
    uint64_t keep_m = block_sum(local, scratch);
    keep_m = keep_m < 1 ? 1 : keep_m;
    keep = keep_m < keep ? keep_m : keep;
  }

  // The kept set: every eligible key above `prefix.key`, and the first `prefix.ties` at it.
  Prefix prefix;  // keep == eligible: everything (no eligible token has key 0, a NaN's)
  if (keep < eligible) prefix = rank_prefix(row, keep, scratch);
  const uint64_t kept_mass =
      eligible_at_least(row, prefix.key + 1, true, scratch) +
      prefix.ties * (prefix.ties > 0 ? row.weight_of_key(static_cast<uint32_t>(prefix.key)) : 0);
  const uint64_t target = sampling::draw_target(p.seed, p.counter, kept_mass);

  // The first kept token, in id order, whose cumulative weight exceeds the target.
  __shared__ uint64_t found_scratch[kWarps];
  uint64_t carry_mass = 0, carry_ties = 0;
  for (int64_t base = 0; base < row.vocab; base += kThreads) {
    const int64_t i = base + threadIdx.x;
    uint64_t w = 0, tie = 0;
    if (i < row.vocab) {
      w = row.weight(i);
      const uint32_t key = sampling::rank_key(row.logits[i]);
      if (w > 0 && key == prefix.key) tie = 1;
      if (w > 0 && key < prefix.key) w = 0;
    }
    uint64_t tie_total = 0;
    const uint64_t tie_rank = block_inclusive_scan(tie, scratch, tie_total) - tie + carry_ties;
    if (tie == 1 && tie_rank >= prefix.ties) w = 0;
    uint64_t mass_total = 0;
    const uint64_t cumulative = block_inclusive_scan(w, scratch, mass_total) + carry_mass;
    // The lowest id that crosses the target, as a maximum of (2^63 - id).
    const uint64_t crossing =
        w > 0 && cumulative > target ? (uint64_t{1} << 63) - static_cast<uint64_t>(i) : 0;
    const uint64_t first = block_max(crossing, found_scratch);
    if (first != 0) return static_cast<int32_t>((uint64_t{1} << 63) - first);
    carry_mass += mass_total;
    carry_ties += tie_total;
  }
  return -1;  // unreachable: the target is below the kept mass
}

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
    if (p.temperature >= sampling::kGreedyBelowTemperature && !isinf(row.maximum))
      token = sample_row(row, p, scratch);
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

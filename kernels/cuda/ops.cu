// The CUDA kernels of the elementwise and row ops (kernels/backend.h has their semantics; the
// CPU backend is the reference). All memory-bound: each kernel reads and writes every element
// once, with consecutive threads on consecutive columns so warps access memory coalesced.
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/ops.h"

namespace hogwild::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
// Grid-stride kernels: enough blocks to fill any current GPU, few enough to stay in int range.
constexpr int64_t kMaxBlocks = 8192;

int grid_for(int64_t work) {
  return static_cast<int>(std::min<int64_t>(kMaxBlocks, (work + kThreads - 1) / kThreads));
}

void check_launch() { HOGWILD_CUDA_CHECK(cudaGetLastError()); }

// out[i] = table[ids[i]]; one block per row.
__global__ void embedding_kernel(Elements table, int64_t vocabulary, const int32_t* ids,
                                 int64_t ids_stride, Elements out, int64_t cols, int* error_flags) {
  const int64_t i = blockIdx.x;
  const int32_t id = ids[i * ids_stride];
  const bool valid = id >= 0 && id < vocabulary;
  if (!valid && threadIdx.x == 0) error_flags[kBadTokenId] = 1;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    out.store(i, c, valid ? table.load(id, c) : 0.0f);
}

// Sum over the block of one value per thread (kThreads threads), returned to every thread.
__device__ float block_sum(float value) {
  __shared__ float warp_totals[kWarpsPerBlock];
  value = warp_sum(value);
  if (threadIdx.x % 32 == 0) warp_totals[threadIdx.x / 32] = value;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < kWarpsPerBlock; ++w) total += warp_totals[w];
  return total;
}

// One block per row: the mean square in fp32 (a tree of kThreads partial sums, relative error
// ~1e-7 for any width the models use), then x * scale * weight.
__global__ void rms_norm_kernel(Elements x, Elements weight, float eps, Elements out,
                                int64_t cols) {
  const int64_t r = blockIdx.x;
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = x.load(r, c);
    sum = fmaf(v, v, sum);
  }
  sum = block_sum(sum);
  const float scale = 1.0f / sqrtf(sum / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    out.store(r, c, x.load(r, c) * scale * weight.load(0, c));
}

// One warp per (row, head), in place: every lane reads its elements before any is written.
__global__ void head_rms_norm_kernel(Elements x, Elements weight, float eps, int64_t rows,
                                     int64_t heads, int64_t head_dim) {
  const int64_t pair = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (pair >= rows * heads) return;
  const int64_t r = pair / heads, first = pair % heads * head_dim;
  const int lane = threadIdx.x % 32;
  float sum = 0.0f;
  for (int64_t c = lane; c < head_dim; c += 32) {
    const float v = x.load(r, first + c);
    sum = fmaf(v, v, sum);
  }
  sum = warp_sum(sum);
  const float scale = 1.0f / sqrtf(sum / static_cast<float>(head_dim) + eps);
  for (int64_t c = lane; c < head_dim; c += 32)
    x.store(r, first + c, x.load(r, first + c) * scale * weight.load(0, c));
}

// One thread per (row, frequency j): the angle once, then the pair (j, j + half) of every head.
__global__ void rope_kernel(Elements x, const int32_t* positions, int64_t positions_stride,
                            const float* inv_freq, int64_t rows, int64_t heads, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       index < rows * half; index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = index / half, j = index % half;
    float c, s;
    rope_cos_sin(positions[r * positions_stride], inv_freq[j], &c, &s);
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t col = h * head_dim + j;
      const float a = x.load(r, col), b = x.load(r, col + half);
      x.store(r, col, a * c - b * s);
      x.store(r, col + half, b * c + a * s);
    }
  }
}

__global__ void swiglu_kernel(Elements gate_up, Elements out, int64_t rows, int64_t cols) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       index < rows * cols; index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = index / cols, j = index % cols;
    const float g = gate_up.load(r, j);
    // expf, not __expf: silu must match the CPU to fp32 rounding; g -> -inf gives -0, not NaN.
    out.store(r, j, g / (1.0f + expf(-g)) * gate_up.load(r, cols + j));
  }
}

__global__ void add_kernel(Elements x, Elements y, int64_t rows, int64_t cols) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       index < rows * cols; index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = index / cols, j = index % cols;
    x.store(r, j, x.load(r, j) + y.load(r, j));
  }
}

// One block per index; a plain copy of `cols` elements of type Word (4 bytes for f32/i32, 2 for
// bf16), so rows of any dtype move unchanged.
template <typename Word>
__global__ void copy_rows_kernel(const Word* src, int64_t src_stride, Word* dst, int64_t dst_stride,
                                 const int32_t* rows, int64_t rows_stride, int64_t limit,
                                 int64_t cols, bool scatter, int* error_flags) {
  const int64_t i = blockIdx.x;
  const int32_t target = rows[i * rows_stride];
  if (target < 0 || target >= limit) {
    if (threadIdx.x == 0) error_flags[kBadRowIndex] = 1;
    return;
  }
  const Word* from = src + (scatter ? i : target) * src_stride;
  Word* to = dst + (scatter ? target : i) * dst_stride;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) to[c] = from[c];
}

__global__ void broadcast_rows_kernel(Elements bias, Elements out, int64_t rows, int64_t cols) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       index < rows * cols; index += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out.store(index / cols, index % cols, bias.load(0, index % cols));
}

__global__ void convert_to_bf16_kernel(Elements x, __nv_bfloat16* out, int64_t rows, int64_t cols) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       index < rows * cols; index += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[index] = __float2bfloat16(x.load(index / cols, index % cols));
}

// Grids of one block per row are limited to 2^31 - 1 rows by gridDim.x.
void check_row_grid(int64_t rows) {
  HOGWILD_CHECK(rows <= 0x7fffffff, "too many rows for one CUDA launch: ", rows);
}

}  // namespace

const char* error_flag_message(int flag) {
  switch (flag) {
    case kBadTokenId:
      return "embedding: a token id is outside the vocabulary";
    case kBadRowIndex:
      return "scatter_rows/gather_rows: a row index is outside the tensor";
    case kBadViewEntry:
      return "block_attention: view offsets or entries out of range (block, visible or order)";
    case kBadPage:
      return "block_attention: a page of the page table is outside the K/V pool";
  }
  return "unknown CUDA kernel error";
}

void embedding(const Tensor& table, const Tensor& ids, const Tensor& out, int* error_flags,
               cudaStream_t stream) {
  if (out.rows == 0 || out.cols == 0) return;
  check_row_grid(out.rows);
  embedding_kernel<<<static_cast<unsigned>(out.rows), kThreads, 0, stream>>>(
      elements_of(table, "the embedding table"), table.rows, ints_of(ids, "token ids"), ids.stride,
      elements_of(out, "the embedding output"), out.cols, error_flags);
  check_launch();
}

void rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out,
              cudaStream_t stream) {
  if (x.rows == 0 || x.cols == 0) return;
  check_row_grid(x.rows);
  rms_norm_kernel<<<static_cast<unsigned>(x.rows), kThreads, 0, stream>>>(
      elements_of(x, "rms_norm input"), elements_of(weight, "the norm weight"), eps,
      elements_of(out, "rms_norm output"), x.cols);
  check_launch();
}

void head_rms_norm(const Tensor& x, const Tensor& weight, float eps, cudaStream_t stream) {
  const int64_t head_dim = weight.elements();
  const int64_t heads = x.cols / head_dim, pairs = x.rows * heads;
  if (pairs == 0) return;
  const int64_t blocks = (pairs + kWarpsPerBlock - 1) / kWarpsPerBlock;
  check_row_grid(blocks);
  head_rms_norm_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      elements_of(x, "head_rms_norm input"), elements_of(weight, "the norm weight"), eps, x.rows,
      heads, head_dim);
  check_launch();
}

void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, int64_t head_dim,
          cudaStream_t stream) {
  const int64_t work = x.rows * (head_dim / 2);
  if (work == 0 || x.cols == 0) return;
  rope_kernel<<<grid_for(work), kThreads, 0, stream>>>(
      elements_of(x, "rope input"), ints_of(positions, "positions"), positions.stride,
      static_cast<const float*>(inv_freq.data), x.rows, x.cols / head_dim, head_dim);
  check_launch();
}

void swiglu(const Tensor& gate_up, const Tensor& out, cudaStream_t stream) {
  if (out.elements() == 0) return;
  swiglu_kernel<<<grid_for(out.elements()), kThreads, 0, stream>>>(
      elements_of(gate_up, "swiglu input"), elements_of(out, "swiglu output"), out.rows, out.cols);
  check_launch();
}

void add(const Tensor& x, const Tensor& y, cudaStream_t stream) {
  if (x.elements() == 0) return;
  add_kernel<<<grid_for(x.elements()), kThreads, 0, stream>>>(
      elements_of(x, "add input"), elements_of(y, "add input"), x.rows, x.cols);
  check_launch();
}

void copy_rows(const Tensor& src, const Tensor& rows, const Tensor& dst, bool scatter,
               int* error_flags, cudaStream_t stream) {
  const int64_t count = rows.rows, limit = scatter ? dst.rows : src.rows;
  if (count == 0 || src.cols == 0) return;
  check_row_grid(count);
  const int32_t* indices = ints_of(rows, "row indices");
  if (dtype_size(src.dtype) == 4) {
    copy_rows_kernel<<<static_cast<unsigned>(count), kThreads, 0, stream>>>(
        static_cast<const uint32_t*>(src.data), src.stride, static_cast<uint32_t*>(dst.data),
        dst.stride, indices, rows.stride, limit, src.cols, scatter, error_flags);
  } else {
    copy_rows_kernel<<<static_cast<unsigned>(count), kThreads, 0, stream>>>(
        static_cast<const uint16_t*>(src.data), src.stride, static_cast<uint16_t*>(dst.data),
        dst.stride, indices, rows.stride, limit, src.cols, scatter, error_flags);
  }
  check_launch();
}

void broadcast_rows(const Tensor& bias, const Tensor& out, cudaStream_t stream) {
  if (out.elements() == 0) return;
  broadcast_rows_kernel<<<grid_for(out.elements()), kThreads, 0, stream>>>(
      elements_of(bias, "the bias"), elements_of(out, "the matmul output"), out.rows, out.cols);
  check_launch();
}

void convert_to_bf16(const Tensor& x, void* bf16_out, cudaStream_t stream) {
  if (x.elements() == 0) return;
  convert_to_bf16_kernel<<<grid_for(x.elements()), kThreads, 0, stream>>>(
      elements_of(x, "the matmul input"), static_cast<__nv_bfloat16*>(bf16_out), x.rows, x.cols);
  check_launch();
}

}  // namespace hogwild::cuda

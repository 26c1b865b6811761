// The reference backend: fp32 math on the host. One thread pool (kernels/cpu/thread_pool.h) runs
// every op across rows, heads or weight rows; matmuls of few rows (decode) use small_gemm, larger
// ones OpenBLAS, single-threaded, on slices of the weight rows split across the pool.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <vector>

#include "common/error.h"
#include "common/float16.h"
#include "kernels/backend.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/blas_threads.h"
#include "kernels/cpu/block_attention.h"
#include "kernels/cpu/host_memory.h"
#include "kernels/cpu/quant_matmul.h"
#include "kernels/cpu/sampling.h"
#include "kernels/cpu/small_gemm.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/stored_dtype.h"
#include "model/quant.h"

namespace hogwild {

namespace {

float* f32(const Tensor& t) {
  HOGWILD_ASSERT(t.dtype == DType::F32);
  return static_cast<float*>(t.data);
}
const int32_t* i32(const Tensor& t) {
  HOGWILD_ASSERT(t.dtype == DType::I32);
  return static_cast<const int32_t*>(t.data);
}
float* row(const Tensor& t, int64_t r) { return f32(t) + r * t.stride; }

// Weight rows per chunk of a stored-format matmul: a few KiB of weights, so that the pool's
// threads share a matrix evenly and a descheduled one holds up little.
constexpr int64_t kStoredRowsPerChunk = 16;

// Elementwise ops run on one thread below this many values: waking the pool costs more.
constexpr int64_t kParallelValues = 16384;

// Rows per chunk so that a chunk holds about kParallelValues values (at least one row).
int64_t rows_grain(int64_t cols) {
  return std::max<int64_t>(1, kParallelValues / std::max<int64_t>(cols, 1));
}

// OMP_NUM_THREADS, which the launch scripts set per rank, else the physical cores.
int threads_from_environment() {
  const char* text = std::getenv("OMP_NUM_THREADS");
  if (text == nullptr || *text == '\0') return cpu::physical_cores();
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  HOGWILD_CHECK(
      errno == 0 && end != text && (*end == '\0' || *end == ',') && value >= 1 && value <= 1024,
      "OMP_NUM_THREADS='", text, "' is not a thread count in [1, 1024]");
  return static_cast<int>(value);
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : pool_(threads) {
    cpu::make_blas_single_threaded();
    // The quantized kernels' instruction set, chosen here on the calling thread: a bad
    // HOGWILD_CPU_FEATURES is one error now, not an exception inside the pool.
    static_cast<void>(cpu::quant_isa());
  }

  std::string name() const override { return "cpu"; }
  bool host_memory() const override { return true; }
  bool reads_stored_weights() const override { return true; }
  void synchronize() override {}

  // Shapes and dtypes are checked by Backend's public ops (kernels/backend.cpp); what remains here
  // are the CPU backend's own limits (fp32 compute; bf16 and the other storage dtypes only as
  // weights) and the index values it reads.
 private:
  Tensor do_allocate(int64_t rows, int64_t cols, DType dtype) override {
    HOGWILD_CHECK(dtype == DType::BF16 || dtype == DType::F32 || dtype == DType::I32 ||
                      cpu::quant_matmul_supports(dtype),
                  "the CPU backend cannot hold ", dtype_name(dtype), " tensors");
    const size_t bytes = static_cast<size_t>(rows) * dtype_row_bytes(dtype, cols);
    void* block = memory_.allocate(bytes);  // zeroed, 64-byte aligned (host_memory.h)
    HOGWILD_CHECK(block != nullptr, "out of host memory allocating ", bytes, " bytes");
    // Q4_0 / Q4_1 weights in the lane layout, for the AVX2 and AVX-512 kernels (quant_matmul.h).
    if (cpu::quant_isa() >= cpu::QuantIsa::Avx2 && cpu::lane_layout_fits(dtype, rows))
      lane_matrices_.emplace(static_cast<uint8_t*>(block),
                             LaneMatrix{rows, static_cast<int64_t>(dtype_row_bytes(dtype, cols))});
    return Tensor{block, dtype, rows, cols, cols};
  }

  void do_release(const Tensor& tensor) override {
    HOGWILD_ASSERT(memory_.release(tensor.data));
    lane_matrices_.erase(static_cast<uint8_t*>(tensor.data));
  }

  void do_upload_f32(const Tensor& dst, const float* host) override {
    if (dst.dtype == DType::BF16) {  // converted, as backend.h says (bf16 weights: `dtype`)
      auto* out = static_cast<uint16_t*>(dst.data);
      for (int64_t r = 0; r < dst.rows; ++r)
        for (int64_t c = 0; c < dst.cols; ++c)
          out[r * dst.stride + c] = float_to_bf16(host[r * dst.cols + c]);
      return;
    }
    for (int64_t r = 0; r < dst.rows; ++r)
      std::memcpy(row(dst, r), host + r * dst.cols, static_cast<size_t>(dst.cols) * 4);
  }

  void do_upload_i32(const Tensor& dst, const int32_t* host) override {
    auto* out = static_cast<int32_t*>(dst.data);
    for (int64_t r = 0; r < dst.rows; ++r)
      std::memcpy(out + r * dst.stride, host + r * dst.cols, static_cast<size_t>(dst.cols) * 4);
  }

  void do_download_f32(const Tensor& src, float* host) override {
    if (src.dtype == DType::BF16) {
      const auto* in = static_cast<const uint16_t*>(src.data);
      for (int64_t r = 0; r < src.rows; ++r)
        for (int64_t c = 0; c < src.cols; ++c)
          host[r * src.cols + c] = bf16_to_float(in[r * src.stride + c]);
      return;
    }
    for (int64_t r = 0; r < src.rows; ++r)
      std::memcpy(host + r * src.cols, row(src, r), static_cast<size_t>(src.cols) * 4);
  }

  void do_upload_stored(const Tensor& dst, const void* host) override {
    if (const auto lanes = lane_view(dst)) {
      cpu::to_lane_layout(dst.dtype, host, dst.cols, dst.rows, lanes->base, lanes->first);
      return;
    }
    std::memcpy(dst.data, host,
                static_cast<size_t>(dst.rows) * dtype_row_bytes(dst.dtype, dst.cols));
  }

  void do_embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override {
    const size_t row_bytes = dtype_row_bytes(table.dtype, table.cols);
    for (int64_t i = 0; i < ids.rows; ++i) {
      const int32_t id = i32(ids)[i * ids.stride];
      HOGWILD_CHECK(id >= 0 && id < table.rows, "token id ", id, " is outside the vocabulary of ",
                    table.rows);
      if (table.dtype == DType::F32) {
        std::memcpy(row(out, i), row(table, id), static_cast<size_t>(table.cols) * 4);
      } else if (const auto lanes = lane_view(table)) {
        embedding_row_.resize(row_bytes);
        cpu::from_lane_layout(table.dtype, lanes->base, table.cols, lanes->first + id,
                              embedding_row_.data());
        dequantize(ggml_type_of(table.dtype), embedding_row_.data(), row(out, i), table.cols);
      } else {
        // A stored table (contiguous rows): the row as the matmul kernels would read it.
        dequantize(ggml_type_of(table.dtype),
                   static_cast<const uint8_t*>(table.data) + static_cast<size_t>(id) * row_bytes,
                   row(out, i), table.cols);
      }
    }
  }

  void do_rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override {
    const float* w = f32(weight);
    pool_.parallel_for(x.rows, rows_grain(x.cols), [&](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) normalize(row(x, r), w, x.cols, eps, row(out, r));
    });
  }

  void do_head_rms_norm(const Tensor& x, const Tensor& weight, float eps) override {
    const int64_t head_dim = weight.elements();
    const int64_t heads = x.cols / head_dim;
    const float* w = f32(weight);
    pool_.parallel_for(x.rows * heads, rows_grain(head_dim), [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        float* v = row(x, i / heads) + (i % heads) * head_dim;
        normalize(v, w, head_dim, eps, v);
      }
    });
  }

  void do_matmul(const Tensor& x, const Tensor& weight, const Tensor& bias,
                 const Tensor& out) override {
    if (x.rows == 0) return;
    if (weight.dtype != DType::F32) {
      stored_matmul(x, weight, bias, out);
      return;
    }
    const cpu::GemmArgs args{f32(x),        x.stride,    x.rows, f32(weight),
                             weight.stride, weight.rows, x.cols, bias.empty() ? nullptr : f32(bias),
                             f32(out),      out.stride};
    if (x.rows <= cpu::kSmallGemmRows) {
      cpu::small_gemm(args, pool_);
      return;
    }
    // Each chunk: BLAS on a slice of the weight rows (= output columns); OpenBLAS itself is
    // single-threaded (make_blas_single_threaded), so no second pool competes for the cores.
    pool_.parallel_for(weight.rows, kBlasRowsPerChunk, [&](int64_t begin, int64_t end, int) {
      cpu::make_blas_single_threaded();
      const int64_t width = end - begin;
      float beta = 0.0f;
      if (args.bias != nullptr) {
        for (int64_t r = 0; r < out.rows; ++r)
          std::memcpy(row(out, r) + begin, args.bias + begin, static_cast<size_t>(width) * 4);
        beta = 1.0f;
      }
      cpu::sgemm(true, x.rows, width, x.cols, 1.0f, f32(x), x.stride,
                 f32(weight) + begin * weight.stride, weight.stride, beta, row(out, 0) + begin,
                 out.stride);
    });
  }

  void do_rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
               int64_t head_dim) override {
    const int64_t half = head_dim / 2;
    const int64_t heads = x.cols / head_dim;
    const float* freq = f32(inv_freq);
    const int32_t* position_of = i32(positions);
    pool_.parallel_for(x.rows, rows_grain(x.cols), [&](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) {
        const double position = position_of[r * positions.stride];
        for (int64_t j = 0; j < half; ++j) {
          // The angle in double: positions reach 1e5+ and fp32 angles would lose the phase.
          const double angle = position * static_cast<double>(freq[j]);
          const float c = static_cast<float>(std::cos(angle));
          const float s = static_cast<float>(std::sin(angle));
          for (int64_t h = 0; h < heads; ++h) {
            float* v = row(x, r) + h * head_dim;
            const float a = v[j], b = v[j + half];
            v[j] = a * c - b * s;
            v[j + half] = b * c + a * s;
          }
        }
      }
    });
  }

  void do_swiglu(const Tensor& gate_up, const Tensor& out) override {
    const int64_t n = out.cols;
    pool_.parallel_for(out.rows, rows_grain(n), [&](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) {
        const float* g = row(gate_up, r);
        cpu::swiglu_row(g, g + n, row(out, r), n);
      }
    });
  }

  void do_add(const Tensor& x, const Tensor& y) override {
    pool_.parallel_for(x.rows, rows_grain(x.cols), [&](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) {
        float* a = row(x, r);
        const float* b = row(y, r);
        for (int64_t j = 0; j < x.cols; ++j) a[j] += b[j];
      }
    });
  }

  void do_scatter_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) override {
    for (int64_t i = 0; i < src.rows; ++i) {
      const int32_t target = i32(rows)[i * rows.stride];
      HOGWILD_ASSERT(target >= 0 && target < dst.rows);
      std::memcpy(row(dst, target), row(src, i), static_cast<size_t>(src.cols) * 4);
    }
  }

  void do_gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) override {
    for (int64_t i = 0; i < out.rows; ++i) {
      const int32_t source = i32(rows)[i * rows.stride];
      HOGWILD_ASSERT(source >= 0 && source < src.rows);
      std::memcpy(row(out, i), row(src, source), static_cast<size_t>(src.cols) * 4);
    }
  }

  void do_block_attention(const Tensor& q, const Tensor& keys, const Tensor& values,
                          const Tensor& page_table, int64_t page_size, const Tensor& view_offsets,
                          const Tensor& view_entries, const Tensor& inv_freq,
                          const AttentionShape& shape, const Tensor& out) override {
    cpu::block_attention(q, keys, values, page_table, page_size, view_offsets, view_entries,
                         inv_freq, shape, out, pool_);
  }

  // ---- sampling (kernels/cpu/sampling.cpp is the reference rule)
  void do_sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& suppressed,
                        const Tensor& tokens, const Tensor& logprobs) override {
    cpu::sample_tokens(logits, params, suppressed, tokens, logprobs);
  }

  void do_download_i32(const Tensor& src, int32_t* host) override {
    for (int64_t r = 0; r < src.rows; ++r)
      std::memcpy(host + r * src.cols, i32(src) + r * src.stride,
                  static_cast<size_t>(src.cols) * 4);
  }
  // ---- end of sampling

  // A weight in its stored format: the activations converted once (8-bit blocks for the
  // quantized formats), then the weight rows split across the pool, each read once for all rows.
  void stored_matmul(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out) {
    const DType type = weight.dtype;
    const int64_t n = x.rows, k = x.cols;
    // 4-byte aligned, as the kernels' activation blocks need.
    activations_.resize((cpu::activation_bytes(type, n, k) + 3) / 4);
    auto* act = reinterpret_cast<uint8_t*>(activations_.data());
    pool_.parallel_for(n, rows_grain(k), [&](int64_t begin, int64_t end, int) {
      cpu::quantize_activations(type, row(x, begin), end - begin, k, x.stride,
                                act + cpu::activation_bytes(type, begin, k));
    });
    const float* b = bias.empty() ? nullptr : f32(bias);
    const auto lanes = lane_view(weight);
    pool_.parallel_for(weight.rows, kStoredRowsPerChunk, [&](int64_t begin, int64_t end, int) {
      // All input rows at once: the kernels decode each weight block once for a tile of rows,
      // and round every row the same whatever the batch (quant_matmul.h), so a row's product
      // does not depend on what else is in the batch.
      if (lanes)
        cpu::quant_matmul_lane_rows(type, lanes->base, lanes->first, k, act, n, begin, end,
                                    f32(out), out.stride);
      else
        cpu::quant_matmul_rows(type, weight.data, k, act, n, begin, end, f32(out), out.stride);
      if (b != nullptr)
        for (int64_t r = 0; r < n; ++r)
          for (int64_t j = begin; j < end; ++j) row(out, r)[j] += b[j];
    });
  }

  static void normalize(const float* x, const float* w, int64_t n, float eps, float* out) {
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(x[j]) * x[j];
    const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
    for (int64_t j = 0; j < n; ++j) out[j] = x[j] * scale * w[j];
  }

  // Weight rows per BLAS call: slices narrower than this lose BLAS's blocking.
  static constexpr int64_t kBlasRowsPerChunk = 64;

  // A lane-layout allocation, and where a view of it starts.
  struct LaneMatrix {
    int64_t rows, row_bytes;
  };
  struct LaneView {
    uint8_t* base;
    int64_t first;  // the view's first row in the allocation
  };
  std::optional<LaneView> lane_view(const Tensor& t) const {
    if (lane_matrices_.empty()) return std::nullopt;
    const auto* data = static_cast<const uint8_t*>(t.data);
    auto at = lane_matrices_.upper_bound(data);
    if (at == lane_matrices_.begin()) return std::nullopt;
    --at;
    const int64_t offset = data - at->first;
    if (offset >= at->second.rows * at->second.row_bytes) return std::nullopt;
    HOGWILD_ASSERT(offset % at->second.row_bytes == 0);
    return LaneView{at->first, offset / at->second.row_bytes};
  }

  cpu::HostMemory memory_;
  // By allocation; std::less<> so a view's const pointer finds its allocation.
  std::map<uint8_t*, LaneMatrix, std::less<>> lane_matrices_;
  std::vector<uint8_t> embedding_row_;  // a lane-layout table's row, plain
  std::vector<float> activations_;      // stored_matmul's converted input rows
  cpu::ThreadPool pool_;
};

}  // namespace

int default_cpu_threads() { return threads_from_environment(); }

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads == 0 ? default_cpu_threads() : threads);
}

}  // namespace hogwild

// The CUDA backend: device memory, one stream, cuBLAS for the GEMMs and our kernels (ops.cu,
// block_attention.cu) for everything else. Host C++20; the kernels sit behind the C++17
// launchers of ops.h / block_attention.h.
#include "kernels/cuda/cuda_backend.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/error.h"
#include "common/float16.h"
#include "kernels/cuda/block_attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/int_range.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/sampling.h"

namespace hogwild {
namespace {

using cuda::fits_int;

// cuBLAS gets a fixed workspace, so that it allocates nothing during a step (a captured step
// must not allocate).
constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;
// Graphs kept at once (keys are batch-size buckets, so a run needs a handful); past this, new
// keys run eagerly.
constexpr size_t kMaxStepGraphs = 256;
// Pinned staging buffers of upload_i32 in flight at once; past this the oldest is waited for.
constexpr size_t kMaxStagingBuffers = 64;
constexpr size_t kMinStagingBytes = size_t{64} << 10;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) {
    const int count = cuda_device_count();
    HOGWILD_CHECK(device >= 0 && device < count, "CUDA device ", device, " does not exist (", count,
                  " devices)");
    try {
      // The backend's ops run on the device current at construction: one device per process
      // (MPI ranks pick theirs by local rank).
      HOGWILD_CUDA_CHECK(cudaSetDevice(device));
      HOGWILD_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      HOGWILD_CUBLAS_CHECK(cublasCreate(&cublas_));
      HOGWILD_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
      // Default math: fp32 GEMMs stay fp32 (TF32 tensor cores only by explicit opt-in).
      HOGWILD_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
      HOGWILD_CUDA_CHECK(cudaMalloc(&cublas_workspace_, kCublasWorkspaceBytes));
      HOGWILD_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_workspace_, kCublasWorkspaceBytes));
      // Kernels report bad inputs here (ops.h, ErrorFlag): mapped host memory, read for free
      // after each synchronisation.
      HOGWILD_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&error_flags_),
                                       sizeof(int) * cuda::kErrorFlagCount, cudaHostAllocMapped));
      std::memset(error_flags_, 0, sizeof(int) * cuda::kErrorFlagCount);
      HOGWILD_CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&device_error_flags_),
                                                  error_flags_, 0));
      attention_ = std::make_unique<cuda::BlockAttention>(device);
    } catch (...) {
      release_everything();
      throw;
    }
  }

  ~CudaBackend() override { release_everything(); }

  std::string name() const override { return "cuda"; }
  // Every op reads and writes F32 or BF16 (ops.cu's Elements; bf16 matmuls via cublasGemmEx).
  bool supports(BackendOp, DType dtype) const override {
    return dtype == DType::F32 || dtype == DType::BF16;
  }

  void synchronize() override {
    refuse_in_capture("synchronize");
    HOGWILD_CUDA_CHECK(cudaStreamSynchronize(stream_));
    throw_kernel_errors();
  }

  cudaStream_t stream() const { return stream_; }

  // ---- step graphs (kernels/backend.h, run_step)
  bool step_graphs() const override { return true; }
  StepGraphStats step_graph_stats() const override { return stats_; }
  void drop_step_graphs() override {
    for (auto& [key, graph] : graphs_)
      if (graph.exec != nullptr) HOGWILD_CUDA_CHECK(cudaGraphExecDestroy(graph.exec));
    graphs_.clear();
  }

 private:
  // ---- memory (shapes and dtypes are checked by Backend's public ops, kernels/backend.cpp)
  Tensor do_allocate(int64_t rows, int64_t cols, DType dtype) override {
    refuse_in_capture("allocate");
    const size_t bytes = static_cast<size_t>(rows * cols) * dtype_size(dtype);
    void* data = nullptr;
    // cudaMalloc, never managed memory: pages must not migrate under a decode step.
    const cudaError_t status = cudaMalloc(&data, std::max<size_t>(bytes, 256));
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      fail("out of GPU memory allocating a ", rows, "x", cols, " ", dtype_name(dtype), " tensor (",
           bytes, " bytes; ", cudaGetErrorString(status), ")");
    }
    allocations_.insert(data);
    HOGWILD_CUDA_CHECK(cudaMemsetAsync(data, 0, bytes, stream_));  // zeroed, as on the CPU
    ++inputs_version_;  // a new i32 tensor may reuse a released address
    return Tensor{data, dtype, rows, cols, cols};
  }

  void do_release(const Tensor& tensor) override {
    refuse_in_capture("release");
    HOGWILD_ASSERT(allocations_.count(tensor.data) == 1);
    HOGWILD_CUDA_CHECK(cudaStreamSynchronize(stream_));  // queued kernels may still read it
    drop_step_graphs();  // a graph may hold the address, which a later allocation may reuse
    HOGWILD_CUDA_CHECK(cudaFree(tensor.data));
    allocations_.erase(tensor.data);
    ++inputs_version_;
  }

  // upload_f32 waits for the copy (weights, staged collectives): the caller may reuse `host` at
  // once, whatever memory it is. upload_i32 (a step's inputs) stages `host` in pinned memory and
  // returns without waiting.
  void do_upload_f32(const Tensor& dst, const float* host) override {
    refuse_in_capture("upload_f32");
    if (dst.elements() == 0) return;
    if (dst.dtype == DType::F32) {
      copy_to_device(dst, host);
    } else {  // BF16
      std::vector<uint16_t> converted(static_cast<size_t>(dst.elements()));
      for (size_t i = 0; i < converted.size(); ++i) converted[i] = float_to_bf16(host[i]);
      copy_to_device(dst, converted.data());
    }
  }

  void do_upload_i32(const Tensor& dst, const int32_t* host) override {
    refuse_in_capture("upload_i32");
    if (dst.elements() == 0) return;
    const size_t row_bytes = static_cast<size_t>(dst.cols) * sizeof(int32_t);
    const size_t bytes = row_bytes * static_cast<size_t>(dst.rows);
    Staging& staging = staging_buffer(bytes);
    std::memcpy(staging.host, host, bytes);
    HOGWILD_CUDA_CHECK(cudaMemcpy2DAsync(
        dst.data, static_cast<size_t>(dst.stride) * 4, staging.host, row_bytes, row_bytes,
        static_cast<size_t>(dst.rows), cudaMemcpyHostToDevice, stream_));
    // The staging buffer is free again once the copy is done.
    HOGWILD_CUDA_CHECK(cudaEventRecord(staging.copied, stream_));
    ++inputs_version_;
  }

  void do_download_f32(const Tensor& src, float* host) override {
    refuse_in_capture("download_f32");
    if (src.elements() == 0) return;
    if (src.dtype == DType::F32) {
      copy_to_host(src, host);
    } else {  // BF16
      std::vector<uint16_t> raw(static_cast<size_t>(src.elements()));
      copy_to_host(src, raw.data());
      for (size_t i = 0; i < raw.size(); ++i) host[i] = bf16_to_float(raw[i]);
    }
  }

  // ---- ops
  void do_embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override {
    cuda::embedding(table, ids, out, device_error_flags_, stream_);
  }

  void do_rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override {
    cuda::rms_norm(x, weight, eps, out, stream_);
  }

  void do_head_rms_norm(const Tensor& x, const Tensor& weight, float eps) override {
    cuda::head_rms_norm(x, weight, eps, stream_);
  }

  // Row-major out[n, m] = x[n, k] · W[m, k]ᵀ is, read column-major, outᵀ = W · xᵀ with W taken
  // transposed (its rows are columns of length k) and xᵀ as stored: one GEMM, no copies.
  void do_matmul(const Tensor& x, const Tensor& weight, const Tensor& bias,
                 const Tensor& out) override {
    if (x.rows == 0 || out.cols == 0) return;
    HOGWILD_CHECK(fits_int(x.rows) && fits_int(weight.rows) && fits_int(x.cols) &&
                      fits_int(x.stride) && fits_int(weight.stride) && fits_int(out.stride),
                  "matmul dimensions exceed cuBLAS' 32-bit sizes");
    const int m = static_cast<int>(weight.rows), n = static_cast<int>(x.rows);
    const int k = static_cast<int>(x.cols);
    const float alpha = 1.0f;
    float beta = 0.0f;
    if (!bias.empty()) {
      cuda::broadcast_rows(bias, out, stream_);
      beta = 1.0f;
    }
    if (weight.dtype == DType::F32) {
      HOGWILD_CHECK(x.dtype == DType::F32 && out.dtype == DType::F32,
                    "an f32 weight needs f32 input and output (got ", dtype_name(x.dtype), " and ",
                    dtype_name(out.dtype), ")");
      HOGWILD_CUBLAS_CHECK(
          cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha,
                      static_cast<const float*>(weight.data), static_cast<int>(weight.stride),
                      static_cast<const float*>(x.data), static_cast<int>(x.stride), &beta,
                      static_cast<float*>(out.data), static_cast<int>(out.stride)));
      return;
    }
    HOGWILD_CHECK(weight.dtype == DType::BF16, "matmul needs an f32 or bf16 weight");
    HOGWILD_CHECK(out.dtype == DType::F32 || out.dtype == DType::BF16,
                  "matmul needs an f32 or bf16 output");
    // cublasGemmEx multiplies equal types: an f32 input is rounded to bf16 first (scratch).
    const void* input = x.data;
    int input_stride = static_cast<int>(x.stride);
    if (x.dtype == DType::F32) {
      void* converted = scratch(static_cast<size_t>(x.rows * x.cols) * 2);
      cuda::convert_to_bf16(x, converted, stream_);
      input = converted;
      input_stride = k;
    } else {
      HOGWILD_CHECK(x.dtype == DType::BF16, "matmul needs an f32 or bf16 input");
    }
    HOGWILD_CUBLAS_CHECK(
        cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, weight.data, CUDA_R_16BF,
                     static_cast<int>(weight.stride), input, CUDA_R_16BF, input_stride, &beta,
                     out.data, out.dtype == DType::F32 ? CUDA_R_32F : CUDA_R_16BF,
                     static_cast<int>(out.stride), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }

  void do_rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
               int64_t head_dim) override {
    cuda::rope(x, positions, inv_freq, head_dim, stream_);
  }

  void do_swiglu(const Tensor& gate_up, const Tensor& out) override {
    cuda::swiglu(gate_up, out, stream_);
  }

  void do_add(const Tensor& x, const Tensor& y) override { cuda::add(x, y, stream_); }

  void do_scatter_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) override {
    cuda::copy_rows(src, rows, dst, /*scatter=*/true, device_error_flags_, stream_);
    if (dst.dtype == DType::I32) ++inputs_version_;
  }

  void do_gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) override {
    cuda::copy_rows(src, rows, out, /*scatter=*/false, device_error_flags_, stream_);
    if (out.dtype == DType::I32) ++inputs_version_;
  }

  void do_block_attention(const Tensor& q, const Tensor& keys, const Tensor& values,
                          const Tensor& page_table, int64_t page_size, const Tensor& view_offsets,
                          const Tensor& view_entries, const Tensor& inv_freq,
                          const AttentionShape& shape, const Tensor& out) override {
    attention_->run(q, keys, values, page_table, page_size, view_offsets, view_entries, inv_freq,
                    shape, out, inputs_version_, device_error_flags_, stream_);
  }

  // ---- sampling (kernels/cuda/sampling.cu): only the tokens and logprobs come back, through
  // download_i32 / download_f32.
  void do_sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& suppressed,
                        const Tensor& tokens, const Tensor& logprobs) override {
    cuda::sample_tokens(logits, params, suppressed, tokens, logprobs, stream_);
  }

  void do_download_i32(const Tensor& src, int32_t* host) override {
    if (src.elements() == 0) return;
    copy_to_host(src, host);
  }
  // ---- end of sampling

  // Dense host rows <-> strided device rows, on the backend's stream, waiting for the copy.
  void copy_to_device(const Tensor& dst, const void* host) {
    const size_t element = dtype_size(dst.dtype);
    HOGWILD_CUDA_CHECK(cudaMemcpy2DAsync(
        dst.data, static_cast<size_t>(dst.stride) * element, host,
        static_cast<size_t>(dst.cols) * element, static_cast<size_t>(dst.cols) * element,
        static_cast<size_t>(dst.rows), cudaMemcpyHostToDevice, stream_));
    HOGWILD_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void copy_to_host(const Tensor& src, void* host) {
    const size_t element = dtype_size(src.dtype);
    HOGWILD_CUDA_CHECK(cudaMemcpy2DAsync(
        host, static_cast<size_t>(src.cols) * element, src.data,
        static_cast<size_t>(src.stride) * element, static_cast<size_t>(src.cols) * element,
        static_cast<size_t>(src.rows), cudaMemcpyDeviceToHost, stream_));
    HOGWILD_CUDA_CHECK(cudaStreamSynchronize(stream_));
    throw_kernel_errors();
  }

  // Scratch device memory for one op at a time; grows (rarely: a graph key's warm-up run grows
  // it to the key's sizes), never shrinks, and never inside a capture.
  void* scratch(size_t bytes) {
    if (bytes > scratch_bytes_) {
      HOGWILD_CHECK(!capturing_, "a bf16 matmul would grow its scratch from ", scratch_bytes_,
                    " to ", bytes, " bytes inside a CUDA graph capture");
      HOGWILD_CUDA_CHECK(cudaStreamSynchronize(stream_));
      ++scratch_generation_;
      if (scratch_ != nullptr) HOGWILD_CUDA_CHECK(cudaFree(scratch_));
      scratch_ = nullptr;
      scratch_bytes_ = 0;
      HOGWILD_CUDA_CHECK(cudaMalloc(&scratch_, bytes));
      scratch_bytes_ = bytes;
    }
    return scratch_;
  }

  // ---- step graphs
  struct StepGraph {
    bool warmed = false;  // ran eagerly once: the workspaces hold the key's sizes
    cudaGraphExec_t exec = nullptr;
    uint64_t generation = 0;  // memory_generation() at capture
  };

  // Changes whenever a workspace a graph may hold (scratch, attention) is reallocated.
  uint64_t memory_generation() const {
    return scratch_generation_ + attention_->workspace_generation();
  }

  void refuse_in_capture(const char* what) const {
    HOGWILD_CHECK(!capturing_, "CUDA backend: ", what,
                  " inside a step captured as a CUDA graph (run_step's record function may "
                  "only queue ops)");
  }

  void do_run_step(uint64_t key, const std::function<void()>& record) override {
    HOGWILD_CHECK(!capturing_, "run_step inside a captured step");
    auto found = graphs_.find(key);
    if (found == graphs_.end()) {
      if (graphs_.size() >= kMaxStepGraphs) {  // too many shapes: run this one eagerly
        record();
        ++stats_.eager;
        return;
      }
      found = graphs_.emplace(key, StepGraph{}).first;
    }
    StepGraph& graph = found->second;
    if (graph.exec != nullptr && graph.generation != memory_generation()) {
      // A workspace moved since the capture (another key's warm-up grew it): capture again. The
      // key's own sizes were reserved before and the workspaces only grow, so no warm-up.
      HOGWILD_CUDA_CHECK(cudaGraphExecDestroy(graph.exec));
      graph.exec = nullptr;
    }
    if (graph.exec == nullptr && !graph.warmed) {
      record();
      graph.warmed = true;
      ++stats_.eager;
      return;
    }
    if (graph.exec == nullptr) capture(graph, record);
    HOGWILD_CUDA_CHECK(cudaGraphLaunch(graph.exec, stream_));
    ++stats_.replayed;
    // The plan in the attention workspace is now the graph's; eager calls must not reuse it.
    attention_->invalidate_plan();
  }

  void capture(StepGraph& graph, const std::function<void()>& record) {
    attention_->invalidate_plan();  // the first layer's plan kernel goes into the graph
    // Thread-local: other threads (other ranks of a test) may use CUDA meanwhile.
    HOGWILD_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    capturing_ = true;
    cudaGraph_t captured = nullptr;
    try {
      record();
    } catch (...) {
      capturing_ = false;
      if (cudaStreamEndCapture(stream_, &captured) == cudaSuccess && captured != nullptr)
        (void)cudaGraphDestroy(captured);
      (void)cudaGetLastError();
      attention_->invalidate_plan();
      throw;
    }
    capturing_ = false;
    HOGWILD_CUDA_CHECK(cudaStreamEndCapture(stream_, &captured));
    const cudaError_t status = cudaGraphInstantiateWithFlags(&graph.exec, captured, 0);
    (void)cudaGraphDestroy(captured);
    HOGWILD_CUDA_CHECK(status);
    graph.generation = memory_generation();
    ++stats_.captured;
  }

  // ---- pinned staging of upload_i32
  struct Staging {
    void* host = nullptr;
    size_t bytes = 0;
    cudaEvent_t copied = nullptr;  // recorded after the copy that reads `host`
  };

  // A staging buffer of at least `bytes` whose last copy is done; a new one when none is free
  // (the first steps), or the oldest waited for when too many copies are in flight.
  Staging& staging_buffer(size_t bytes) {
    for (Staging& staging : staging_) {
      if (staging.bytes < bytes) continue;
      const cudaError_t status = cudaEventQuery(staging.copied);
      if (status == cudaSuccess) return staging;
      if (status != cudaErrorNotReady) HOGWILD_CUDA_CHECK(status);
    }
    if (staging_.size() >= kMaxStagingBuffers) {
      Staging& oldest = staging_[next_reused_ % staging_.size()];
      ++next_reused_;
      HOGWILD_CUDA_CHECK(cudaEventSynchronize(oldest.copied));
      if (oldest.bytes >= bytes) return oldest;
      HOGWILD_CUDA_CHECK(cudaFreeHost(oldest.host));
      oldest.host = nullptr;
      oldest.bytes = 0;
      HOGWILD_CUDA_CHECK(cudaHostAlloc(&oldest.host, bytes, cudaHostAllocDefault));
      oldest.bytes = bytes;
      return oldest;
    }
    Staging staging;
    staging.bytes = std::max(bytes, kMinStagingBytes);
    HOGWILD_CUDA_CHECK(cudaHostAlloc(&staging.host, staging.bytes, cudaHostAllocDefault));
    const cudaError_t status = cudaEventCreateWithFlags(&staging.copied, cudaEventDisableTiming);
    if (status != cudaSuccess) (void)cudaFreeHost(staging.host);
    HOGWILD_CUDA_CHECK(status);
    staging_.push_back(staging);
    return staging_.back();
  }

  void throw_kernel_errors() {
    std::string message;
    for (int flag = 0; flag < cuda::kErrorFlagCount; ++flag) {
      if (error_flags_[flag] == 0) continue;
      error_flags_[flag] = 0;
      message += message.empty() ? "" : "; ";
      message += cuda::error_flag_message(flag);
    }
    if (!message.empty()) fail("CUDA backend: ", message);
  }

  // Frees whatever exists; errors are ignored (called from the destructor).
  void release_everything() noexcept {
    if (stream_ != nullptr) (void)cudaStreamSynchronize(stream_);
    for (auto& [key, graph] : graphs_)
      if (graph.exec != nullptr) (void)cudaGraphExecDestroy(graph.exec);
    graphs_.clear();
    for (Staging& staging : staging_) {
      if (staging.copied != nullptr) (void)cudaEventDestroy(staging.copied);
      if (staging.host != nullptr) (void)cudaFreeHost(staging.host);
    }
    staging_.clear();
    attention_.reset();
    for (void* data : allocations_) (void)cudaFree(data);
    allocations_.clear();
    if (scratch_ != nullptr) (void)cudaFree(scratch_);
    if (cublas_workspace_ != nullptr) (void)cudaFree(cublas_workspace_);
    if (cublas_ != nullptr) (void)cublasDestroy(cublas_);
    if (error_flags_ != nullptr) (void)cudaFreeHost(error_flags_);
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
    scratch_ = cublas_workspace_ = nullptr;
    cublas_ = nullptr;
    error_flags_ = device_error_flags_ = nullptr;
    stream_ = nullptr;
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* cublas_workspace_ = nullptr;
  int* error_flags_ = nullptr;         // host view of the mapped flags
  int* device_error_flags_ = nullptr;  // the same memory as kernels address it
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  std::unique_ptr<cuda::BlockAttention> attention_;
  std::unordered_set<void*> allocations_;
  // Changes whenever an i32 tensor may have changed: block_attention reuses its plan (built from
  // the view tensors) only while this stays the same.
  uint64_t inputs_version_ = 0;
  uint64_t scratch_generation_ = 0;  // bumped when scratch_ moves
  std::unordered_map<uint64_t, StepGraph> graphs_;
  bool capturing_ = false;
  StepGraphStats stats_;
  std::vector<Staging> staging_;
  size_t next_reused_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) {
  return std::make_unique<CudaBackend>(device);
}

cudaStream_t cuda_stream(Backend& backend) {
  auto* cuda_backend = dynamic_cast<CudaBackend*>(&backend);
  HOGWILD_CHECK(cuda_backend != nullptr, "backend '", backend.name(), "' is not a CUDA backend");
  return cuda_backend->stream();
}

}  // namespace hogwild

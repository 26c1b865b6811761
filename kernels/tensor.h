// Tensors as the backends see them: a typed, strided 2-D view of backend memory. Its own unit
// (hogwild_tensor) so that every backend links it without linking another backend. Plain C++17:
// nvcc includes it from the CUDA kernels.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hogwild {

enum class DType { F32, BF16, I32 };
size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

// 2-D and row-major, with a row stride, so that column slices (e.g. of a fused QKV output) are
// views, not copies. The memory belongs to the backend that allocated it.
struct Tensor {
  void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;  // elements between the starts of consecutive rows (>= cols)

  bool empty() const { return data == nullptr; }
  bool contiguous() const { return stride == cols; }
  int64_t elements() const { return rows * cols; }
  // Views of `count` rows / columns starting at `first`.
  Tensor rows_view(int64_t first, int64_t count) const;
  Tensor cols_view(int64_t first, int64_t count) const;
};

}  // namespace hogwild

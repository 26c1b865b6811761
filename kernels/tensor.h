// Tensors as the backends see them: a typed, strided 2-D view of backend memory. Its own unit
// (hogwild_tensor) so that every backend links it without linking another backend. Plain C++17:
// nvcc includes it from the CUDA kernels.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hogwild {

// F32, BF16 and I32 are element types the backends compute in. The others are weight-only storage
// types (as are BF16 weights on the CPU): F16, and GGML's block-quantized formats in their GGUF
// block layout (src/model/quant.cpp dequantizes them), read by the quantized matmul kernels.
enum class DType { F32, BF16, I32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K };

// Bytes of one element; throws for block types, whose elements have no size of their own.
size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
// Block types store a whole number of blocks per row, and their tensors are contiguous.
bool dtype_is_block(DType dtype);
int64_t dtype_block_elements(DType dtype);  // 1 for element types
size_t dtype_block_bytes(DType dtype);      // dtype_size for element types
// Bytes of one row of `cols` elements; throws when cols is not a whole number of blocks.
size_t dtype_row_bytes(DType dtype, int64_t cols);

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
  // Views of `count` rows / columns starting at `first` (block types: rows only).
  Tensor rows_view(int64_t first, int64_t count) const;
  Tensor cols_view(int64_t first, int64_t count) const;
};

}  // namespace hogwild

#include "kernels/tensor.h"

#include "common/error.h"

namespace hogwild {
namespace {

struct DTypeInfo {
  const char* name;
  int64_t block_elements;
  size_t block_bytes;
};

// Block sizes of the GGUF specification (the same as model/quant.cpp's ggml_type_traits).
DTypeInfo info_of(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return {"f32", 1, 4};
    case DType::BF16:
      return {"bf16", 1, 2};
    case DType::I32:
      return {"i32", 1, 4};
    case DType::F16:
      return {"f16", 1, 2};
    case DType::Q4_0:
      return {"q4_0", 32, 18};
    case DType::Q4_1:
      return {"q4_1", 32, 20};
    case DType::Q5_0:
      return {"q5_0", 32, 22};
    case DType::Q5_1:
      return {"q5_1", 32, 24};
    case DType::Q8_0:
      return {"q8_0", 32, 34};
    case DType::Q4_K:
      return {"q4_k", 256, 144};
    case DType::Q5_K:
      return {"q5_k", 256, 176};
    case DType::Q6_K:
      return {"q6_k", 256, 210};
  }
  fail("internal error: unknown DType ", static_cast<int>(dtype));
}

}  // namespace

size_t dtype_size(DType dtype) {
  const DTypeInfo info = info_of(dtype);
  HOGWILD_CHECK(info.block_elements == 1, info.name,
                " is a block type: its elements have no size of their own (use dtype_row_bytes)");
  return info.block_bytes;
}

const char* dtype_name(DType dtype) { return info_of(dtype).name; }

bool dtype_is_block(DType dtype) { return info_of(dtype).block_elements > 1; }

int64_t dtype_block_elements(DType dtype) { return info_of(dtype).block_elements; }

size_t dtype_block_bytes(DType dtype) { return info_of(dtype).block_bytes; }

size_t dtype_row_bytes(DType dtype, int64_t cols) {
  const DTypeInfo info = info_of(dtype);
  HOGWILD_CHECK(cols >= 0 && cols % info.block_elements == 0, "a ", info.name,
                " row needs a multiple of ", info.block_elements, " columns, got ", cols);
  return static_cast<size_t>(cols / info.block_elements) * info.block_bytes;
}

Tensor Tensor::rows_view(int64_t first, int64_t count) const {
  HOGWILD_ASSERT(first >= 0 && count >= 0 && first + count <= rows);
  Tensor view = *this;
  if (dtype_is_block(dtype)) {
    HOGWILD_ASSERT(contiguous());
    view.data =
        static_cast<char*>(data) + static_cast<size_t>(first) * dtype_row_bytes(dtype, cols);
  } else {
    view.data = static_cast<char*>(data) + first * stride * static_cast<int64_t>(dtype_size(dtype));
  }
  view.rows = count;
  return view;
}

Tensor Tensor::cols_view(int64_t first, int64_t count) const {
  HOGWILD_ASSERT(first >= 0 && count >= 0 && first + count <= cols);
  HOGWILD_CHECK(!dtype_is_block(dtype), "a column view of a ", dtype_name(dtype), " tensor");
  Tensor view = *this;
  view.data = static_cast<char*>(data) + first * static_cast<int64_t>(dtype_size(dtype));
  view.cols = count;
  return view;
}

}  // namespace hogwild

#include "kernels/tensor.h"

#include "common/error.h"

namespace hogwild {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return 4;
    case DType::BF16:
      return 2;
    case DType::I32:
      return 4;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "f32";
    case DType::BF16:
      return "bf16";
    case DType::I32:
      return "i32";
  }
  return "?";
}

Tensor Tensor::rows_view(int64_t first, int64_t count) const {
  HOGWILD_ASSERT(first >= 0 && count >= 0 && first + count <= rows);
  Tensor view = *this;
  view.data = static_cast<char*>(data) + first * stride * static_cast<int64_t>(dtype_size(dtype));
  view.rows = count;
  return view;
}

Tensor Tensor::cols_view(int64_t first, int64_t count) const {
  HOGWILD_ASSERT(first >= 0 && count >= 0 && first + count <= cols);
  Tensor view = *this;
  view.data = static_cast<char*>(data) + first * static_cast<int64_t>(dtype_size(dtype));
  view.cols = count;
  return view;
}

}  // namespace hogwild

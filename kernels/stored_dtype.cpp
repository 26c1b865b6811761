#include "kernels/stored_dtype.h"

#include <utility>

#include "common/error.h"

namespace hogwild {
namespace {

constexpr std::pair<GgmlType, DType> kStored[] = {
    {GgmlType::F32, DType::F32},   {GgmlType::F16, DType::F16},   {GgmlType::BF16, DType::BF16},
    {GgmlType::Q4_0, DType::Q4_0}, {GgmlType::Q4_1, DType::Q4_1}, {GgmlType::Q5_0, DType::Q5_0},
    {GgmlType::Q5_1, DType::Q5_1}, {GgmlType::Q8_0, DType::Q8_0}, {GgmlType::Q4_K, DType::Q4_K},
    {GgmlType::Q5_K, DType::Q5_K}, {GgmlType::Q6_K, DType::Q6_K},
};

}  // namespace

std::optional<DType> stored_dtype(GgmlType type) {
  for (const auto& [ggml, dtype] : kStored)
    if (ggml == type) return dtype;
  return std::nullopt;
}

GgmlType ggml_type_of(DType dtype) {
  for (const auto& [ggml, stored] : kStored)
    if (stored == dtype) return ggml;
  fail("no GGML type stores ", dtype_name(dtype), " tensors");
}

}  // namespace hogwild

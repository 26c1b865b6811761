// Which GGML file types a backend tensor can hold as stored (kernels/tensor.h's storage dtypes),
// from one table both ways: the engine asks which dtype a file's tensor keeps, the CPU backend
// which GGML type to dequantize an embedding row of that dtype with.
#pragma once

#include <optional>

#include "kernels/tensor.h"
#include "model/quant.h"

namespace hogwild {

// The dtype a tensor of GGML type `type` keeps as stored (F32 for F32); nullopt for types no
// backend reads as stored (Q2_K, Q3_K, …: dequantized at load).
std::optional<DType> stored_dtype(GgmlType type);
// The GGML type of a dtype from stored_dtype; throws for the others (I32).
GgmlType ggml_type_of(DType dtype);

}  // namespace hogwild

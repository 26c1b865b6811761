// Hugging Face safetensors reader: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data.
// Every field is validated against the file size; a bad file gives a hogwild::Error naming it.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/mapped_file.h"

namespace hogwild {

enum class SafetensorsDType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool, F8_E4M3, F8_E5M2 };

struct SafetensorsTensor {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::F32;
  std::string dtype_name;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
  int64_t element_count() const;
};

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);
  static SafetensorsFile parse(std::span<const uint8_t> bytes, const std::string& name);

  const std::string& name() const { return name_; }
  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& tensor_name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string name_;
  MappedFile file_;
  std::map<std::string, SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Converts a tensor of F32, F16 or BF16 to fp32; throws naming the tensor for other dtypes.
std::vector<float> safetensors_to_float(const SafetensorsTensor& tensor, const std::string& file);
// Elements [first, first + count) only, into `out` (the loaders convert chunk by chunk).
void safetensors_to_float(const SafetensorsTensor& tensor, const std::string& file, int64_t first,
                          int64_t count, float* out);

}  // namespace hogwild

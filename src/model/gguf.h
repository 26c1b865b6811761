// GGUF (v2/v3) reader: metadata key/values and tensor descriptors over a memory-mapped file.
// Every read is bounds-checked: a truncated or hostile file gives a hogwild::Error naming the
// file and the problem, never a crash (see tests/fuzz/fuzz_gguf.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/mapped_file.h"
#include "model/quant.h"

namespace hogwild {

enum class GgufType : uint32_t {
  UInt8 = 0,
  Int8 = 1,
  UInt16 = 2,
  Int16 = 3,
  UInt32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  UInt64 = 10,
  Int64 = 11,
  Float64 = 12,
};

// One metadata value. Scalars keep their widest form; strings point into the mapped file.
// Arrays keep their encoded elements in the file too (validated when parsed) and are decoded on
// demand, so parsing allocates nothing per element whatever count a file claims.
struct GgufValue {
  GgufType type = GgufType::UInt8;
  uint64_t unsigned_value = 0;
  int64_t signed_value = 0;
  double float_value = 0.0;
  std::string_view string_value;
  GgufType element_type = GgufType::UInt8;  // for arrays
  uint64_t element_count = 0;               // for arrays
  std::span<const uint8_t> element_bytes;   // for arrays: the encoded elements

  // Decodes an array's elements (one level: nested arrays stay encoded).
  std::vector<GgufValue> elements() const;
  bool is_integer() const;
  bool is_float() const { return type == GgufType::Float32 || type == GgufType::Float64; }
};

struct GgufTensor {
  std::string name;
  std::vector<int64_t> shape;  // GGUF order: shape[0] is the innermost (contiguous) dimension
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;  // relative to the data section
  uint64_t bytes = 0;
  const uint8_t* data = nullptr;

  int64_t element_count() const;
};

class GgufFile {
 public:
  // Maps and parses the file at `path`.
  static GgufFile open(const std::string& path);
  // Parses bytes already in memory (kept alive by the caller); `name` appears in error messages.
  static GgufFile parse(std::span<const uint8_t> bytes, const std::string& name);

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }

  bool has(const std::string& key) const { return metadata_.count(key) != 0; }
  const GgufValue* find(const std::string& key) const;
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }

  // Typed getters throw hogwild::Error naming the file and key when the key is missing or has
  // another type. The *_or variants return the fallback when the key is missing.
  std::string get_string(const std::string& key) const;
  std::string get_string_or(const std::string& key, const std::string& fallback) const;
  int64_t get_int(const std::string& key) const;
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;
  double get_float_or(const std::string& key, double fallback) const;
  bool get_bool_or(const std::string& key, bool fallback) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<float> get_float_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(const std::string& name) const;
  const GgufTensor& tensor(const std::string& name) const;  // throws if missing

 private:
  std::string name_;
  MappedFile file_;  // empty when parsed from caller-owned bytes
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace hogwild

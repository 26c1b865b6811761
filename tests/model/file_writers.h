// Builds safetensors and GGUF files byte by byte, so the parser tests and the fuzzers' seed
// corpora depend on no Python and no checked-in binaries. The writers are deliberately naive
// (little-endian bytes appended in order) so that they are easy to check against the specs.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace hogwild::testing {

using Bytes = std::vector<uint8_t>;

// Appends little-endian values.
class ByteWriter {
 public:
  template <typename T>
  ByteWriter& put(T value) {
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));  // the tests run on little-endian hosts
    bytes_.insert(bytes_.end(), raw, raw + sizeof(T));
    return *this;
  }
  ByteWriter& u8(uint8_t value) { return put(value); }
  ByteWriter& u32(uint32_t value) { return put(value); }
  ByteWriter& u64(uint64_t value) { return put(value); }
  ByteWriter& i64(int64_t value) { return put(value); }
  ByteWriter& raw(const void* data, size_t size) {
    const auto* begin = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), begin, begin + size);
    return *this;
  }
  ByteWriter& raw(const Bytes& data) { return raw(data.data(), data.size()); }
  ByteWriter& text(const std::string& value) { return raw(value.data(), value.size()); }
  // A GGUF string: u64 length, then the bytes.
  ByteWriter& gguf_string(const std::string& value) { return u64(value.size()).text(value); }
  ByteWriter& pad_to(size_t alignment, uint8_t fill = 0) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(fill);
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  const Bytes& bytes() const { return bytes_; }

 private:
  Bytes bytes_;
};

template <typename T>
Bytes bytes_of(const std::vector<T>& values) {
  Bytes bytes(values.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// ---- safetensors ----

// A safetensors file from a header's JSON text and the data section, as written on disk.
inline Bytes safetensors_file(const std::string& header_json, const Bytes& data) {
  ByteWriter writer;
  writer.u64(header_json.size()).text(header_json).raw(data);
  return writer.bytes();
}

struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  Bytes data;
};

inline std::string json_int_list(const std::vector<int64_t>& values) {
  std::string text = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i != 0) text += ',';
    text += std::to_string(values[i]);
  }
  return text + "]";
}

// A valid file: tensors laid out back to back in the given order; the header padded with spaces
// to a multiple of 8 bytes, as the reference writer does.
inline Bytes safetensors_file(const std::vector<SafetensorsEntry>& entries,
                              const std::map<std::string, std::string>& metadata = {}) {
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      header += (first ? "\"" : ",\"") + key + "\":\"" + value + "\"";
      first = false;
    }
    header += "}";
  }
  Bytes data;
  for (const SafetensorsEntry& entry : entries) {
    if (header.size() > 1) header += ",";
    const auto begin = static_cast<int64_t>(data.size());
    data.insert(data.end(), entry.data.begin(), entry.data.end());
    header += "\"" + entry.name + "\":{\"dtype\":\"" + entry.dtype +
              "\",\"shape\":" + json_int_list(entry.shape) +
              ",\"data_offsets\":" + json_int_list({begin, static_cast<int64_t>(data.size())}) +
              "}";
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  return safetensors_file(header, data);
}

// ---- GGUF ----

// GGUF value types (gguf_type in the specification).
enum GgufWireType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// Collects key/values and tensors, then lays out a GGUF v3 file: header, key/values, tensor
// infos, padding to the alignment, tensor data (each tensor padded to the alignment).
class GgufWriter {
 public:
  template <typename T>
  GgufWriter& scalar(const std::string& key, GgufWireType type, T value) {
    key_values_.gguf_string(key).u32(type).put(value);
    ++keys_;
    return *this;
  }
  GgufWriter& u32(const std::string& key, uint32_t value) { return scalar(key, kU32, value); }
  GgufWriter& i32(const std::string& key, int32_t value) { return scalar(key, kI32, value); }
  GgufWriter& u64(const std::string& key, uint64_t value) { return scalar(key, kU64, value); }
  GgufWriter& f32(const std::string& key, float value) { return scalar(key, kF32, value); }
  GgufWriter& f64(const std::string& key, double value) { return scalar(key, kF64, value); }
  GgufWriter& boolean(const std::string& key, bool value) {
    return scalar(key, kBool, static_cast<uint8_t>(value));
  }
  GgufWriter& string(const std::string& key, const std::string& value) {
    key_values_.gguf_string(key).u32(kString).gguf_string(value);
    ++keys_;
    return *this;
  }
  GgufWriter& string_array(const std::string& key, const std::vector<std::string>& values) {
    key_values_.gguf_string(key).u32(kArray).u32(kString).u64(values.size());
    for (const std::string& value : values) key_values_.gguf_string(value);
    ++keys_;
    return *this;
  }
  GgufWriter& f32_array(const std::string& key, const std::vector<float>& values) {
    key_values_.gguf_string(key).u32(kArray).u32(kF32).u64(values.size());
    for (float value : values) key_values_.put(value);
    ++keys_;
    return *this;
  }
  GgufWriter& i32_array(const std::string& key, const std::vector<int32_t>& values) {
    key_values_.gguf_string(key).u32(kArray).u32(kI32).u64(values.size());
    for (int32_t value : values) key_values_.put(value);
    ++keys_;
    return *this;
  }
  // A key with hand-made value bytes (for bad types and odd encodings).
  GgufWriter& raw_key(const std::string& key, uint32_t type, const Bytes& value) {
    key_values_.gguf_string(key).u32(type).raw(value);
    ++keys_;
    return *this;
  }
  // `shape` in GGUF order (innermost first); `data` must be the tensor's exact bytes.
  GgufWriter& tensor(const std::string& name, const std::vector<int64_t>& shape, uint32_t type,
                     const Bytes& data) {
    tensors_.push_back({name, shape, type, data});
    return *this;
  }

  // `alignment` must match the general.alignment key when one was added (32 otherwise).
  Bytes bytes(uint32_t version = 3, size_t alignment = 32) const {
    ByteWriter writer;
    writer.text("GGUF").u32(version).u64(tensors_.size()).u64(keys_).raw(key_values_.bytes());
    uint64_t offset = 0;
    for (const Tensor& tensor : tensors_) {
      writer.gguf_string(tensor.name).u32(static_cast<uint32_t>(tensor.shape.size()));
      for (int64_t extent : tensor.shape) writer.i64(extent);
      writer.u32(tensor.type).u64(offset);
      offset += (tensor.data.size() + alignment - 1) / alignment * alignment;
    }
    writer.pad_to(alignment);
    for (const Tensor& tensor : tensors_) writer.raw(tensor.data).pad_to(alignment);
    return writer.bytes();
  }

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    uint32_t type;
    Bytes data;
  };
  ByteWriter key_values_;
  uint64_t keys_ = 0;
  std::vector<Tensor> tensors_;
};

// ---- files (temporary folders: test_support.h) ----

inline void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline void write_file(const std::string& path, const std::string& text) {
  write_file(path, Bytes(text.begin(), text.end()));
}

// Every entry under `dir`: a regular file's bytes, or a marker for anything else (a FIFO, a
// folder), by path. Two snapshots compare equal when a reader left every file as it was.
inline std::map<std::string, std::string> snapshot_files(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    const std::string path = entry.path().string();
    if (!entry.is_regular_file()) {
      files[path] = "(not a regular file)";
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    files[path] = std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return files;
}

}  // namespace hogwild::testing

#include "model/gguf.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>

#include "common/error.h"

namespace hogwild {
namespace {

constexpr uint64_t kMaxStringBytes = 1ull << 24;  // 16 MiB: longer metadata strings are corrupt
constexpr uint64_t kMaxKeyBytes = 65535;          // the GGUF specification's limit for keys
// The longest arrays a model holds are its vocabulary (tokens, scores, merges): about 256 Ki
// entries for the largest vocabularies in use. Sixteen times that is refused as corrupt.
constexpr uint64_t kMaxArrayElements = 1ull << 22;
constexpr uint64_t kMaxCount = 1ull << 20;  // tensors or keys
constexpr uint32_t kMaxDimensions = 4;
constexpr int kMaxArrayNesting = 2;

// Bounds-checked little-endian cursor over the header.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  size_t position() const { return position_; }
  uint64_t remaining() const { return bytes_.size() - position_; }
  const std::string& name() const { return name_; }
  std::span<const uint8_t> bytes_between(size_t begin, size_t end) const {
    return bytes_.subspan(begin, end - begin);
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }

  std::string_view read_string(const char* what, uint64_t max_length = kMaxStringBytes) {
    const auto length = read<uint64_t>(what);
    if (length > max_length) fail(name_, ": ", what, " has an implausible length ", length);
    need(length, what);
    std::string_view text(reinterpret_cast<const char*>(bytes_.data() + position_), length);
    position_ += length;
    return text;
  }

  void skip(uint64_t count, const char* what) {
    need(count, what);
    position_ += count;
  }

  [[noreturn]] void corrupt(const std::string& message) const {
    fail(name_, ": corrupt GGUF header at byte ", position_, ": ", message);
  }

 private:
  void need(uint64_t count, const char* what) const {
    if (count > bytes_.size() - position_)
      fail(name_, ": file is truncated (reading ", what, " at byte ", position_, ")");
  }

  std::span<const uint8_t> bytes_;
  const std::string& name_;
  size_t position_ = 0;
};

// Bytes one element of `type` takes at least: its size, or a string's or array's length fields.
uint64_t min_encoded_bytes(GgufType type) {
  switch (type) {
    case GgufType::UInt8:
    case GgufType::Int8:
    case GgufType::Bool:
      return 1;
    case GgufType::UInt16:
    case GgufType::Int16:
      return 2;
    case GgufType::UInt32:
    case GgufType::Int32:
    case GgufType::Float32:
      return 4;
    case GgufType::String:  // u64 length
    case GgufType::UInt64:
    case GgufType::Int64:
    case GgufType::Float64:
      return 8;
    case GgufType::Array:  // u32 element type, u64 count
      return 12;
  }
  return 1;
}

const char* wire_type_name(GgufType type) {
  static const char* const kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
  const auto index = static_cast<uint32_t>(type);
  return index < std::size(kNames) ? kNames[index] : "?";
}

// `key` names the metadata key in messages.
GgufValue read_value(Reader& reader, GgufType type, int depth, std::string_view key) {
  GgufValue value;
  value.type = type;
  switch (type) {
    case GgufType::UInt8:
      value.unsigned_value = reader.read<uint8_t>("u8");
      break;
    case GgufType::Int8: {
      const int8_t number = reader.read<int8_t>("i8");  // a number, sign-extended
      value.signed_value = number;
      break;
    }
    case GgufType::UInt16:
      value.unsigned_value = reader.read<uint16_t>("u16");
      break;
    case GgufType::Int16:
      value.signed_value = reader.read<int16_t>("i16");
      break;
    case GgufType::UInt32:
      value.unsigned_value = reader.read<uint32_t>("u32");
      break;
    case GgufType::Int32:
      value.signed_value = reader.read<int32_t>("i32");
      break;
    case GgufType::UInt64:
      value.unsigned_value = reader.read<uint64_t>("u64");
      break;
    case GgufType::Int64:
      value.signed_value = reader.read<int64_t>("i64");
      break;
    case GgufType::Float32:
      value.float_value = reader.read<float>("f32");
      break;
    case GgufType::Float64:
      value.float_value = reader.read<double>("f64");
      break;
    case GgufType::Bool: {
      const auto raw = reader.read<uint8_t>("bool");
      if (raw > 1) reader.corrupt(cat("key '", key, "': boolean value ", int{raw}));
      value.unsigned_value = raw;
      break;
    }
    case GgufType::String:
      value.string_value = reader.read_string("string value");
      break;
    case GgufType::Array: {
      if (depth >= kMaxArrayNesting)
        reader.corrupt(cat("key '", key, "': arrays nested too deeply"));
      const auto element_type = reader.read<uint32_t>("array type");
      if (element_type > static_cast<uint32_t>(GgufType::Float64))
        reader.corrupt(cat("key '", key, "': unknown array element type ", element_type));
      const auto count = reader.read<uint64_t>("array length");
      value.element_type = static_cast<GgufType>(element_type);
      value.element_count = count;
      if (count > kMaxArrayElements)
        reader.corrupt(cat("key '", key, "': array of ", count, " elements is longer than any ",
                           "model needs (at most ", kMaxArrayElements, ")"));
      // Refused before anything is read or allocated: the elements cannot fit in the file.
      const uint64_t least = min_encoded_bytes(value.element_type);
      if (count > reader.remaining() / least)
        fail(reader.name(), ": file is truncated: key '", key, "' holds an array of ", count, " ",
             wire_type_name(value.element_type), " elements, at least ", count * least,
             " bytes, but only ", reader.remaining(), " bytes follow");
      // Walk the elements once to validate them; they stay encoded in the file.
      const size_t begin = reader.position();
      if (value.element_type == GgufType::String || value.element_type == GgufType::Array ||
          value.element_type == GgufType::Bool) {
        for (uint64_t i = 0; i < count; ++i) read_value(reader, value.element_type, depth + 1, key);
      } else {
        reader.skip(count * least, wire_type_name(value.element_type));
      }
      value.element_bytes = reader.bytes_between(begin, reader.position());
      break;
    }
    default:
      reader.corrupt(cat("key '", key, "' has unknown value type ", static_cast<uint32_t>(type)));
  }
  return value;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += cat(i == 0 ? "" : ", ", shape[i]);
  return text + "]";
}

// Writers lay tensors out back to back, each padded to the alignment. A tensor whose declared
// type and shape need more bytes than lie before the next tensor, or fewer than those bytes less
// the padding, has a type that does not match its data (reading it would give garbage).
void check_tensor_layout(const std::vector<GgufTensor>& tensors, uint64_t alignment,
                         const std::string& name) {
  std::vector<const GgufTensor*> by_offset;
  by_offset.reserve(tensors.size());
  for (const GgufTensor& tensor : tensors) by_offset.push_back(&tensor);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 0; i + 1 < by_offset.size(); ++i) {
    const GgufTensor& tensor = *by_offset[i];
    const GgufTensor& next = *by_offset[i + 1];
    const uint64_t span = next.offset - tensor.offset;
    const uint64_t padded = (tensor.bytes + alignment - 1) / alignment * alignment;
    if (tensor.bytes > span || padded < span)
      fail(name, ": tensor '", tensor.name, "' of type ",
           ggml_type_name(static_cast<uint32_t>(tensor.type)), " and shape ",
           shape_text(tensor.shape), " takes ", tensor.bytes, " bytes, but its data spans ", span,
           " bytes (up to tensor '", next.name, "'): the type or shape does not match the data");
  }
}

// Calls `visit` with each element of `array`, decoded (validated when the file was parsed).
template <typename Visit>
void for_each_element(const GgufValue& array, Visit&& visit) {
  static const std::string kName = "GGUF array";
  Reader reader(array.element_bytes, kName);
  for (uint64_t i = 0; i < array.element_count; ++i)
    visit(read_value(reader, array.element_type, 1, ""));
}

const char* type_name(GgufType type) {
  switch (type) {
    case GgufType::String:
      return "string";
    case GgufType::Array:
      return "array";
    case GgufType::Bool:
      return "bool";
    case GgufType::Float32:
    case GgufType::Float64:
      return "float";
    default:
      return "integer";
  }
}

}  // namespace

std::vector<GgufValue> GgufValue::elements() const {
  std::vector<GgufValue> result;
  if (type != GgufType::Array) return result;
  result.reserve(static_cast<size_t>(element_count));  // bounded by the bytes the file holds
  for_each_element(*this, [&](const GgufValue& element) { result.push_back(element); });
  return result;
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::UInt8:
    case GgufType::Int8:
    case GgufType::UInt16:
    case GgufType::Int16:
    case GgufType::UInt32:
    case GgufType::Int32:
    case GgufType::UInt64:
    case GgufType::Int64:
      return true;
    default:
      return false;
  }
}

int64_t GgufTensor::element_count() const {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

GgufFile GgufFile::open(const std::string& path) {
  MappedFile file(path);
  GgufFile parsed = parse(file.bytes(), path);
  parsed.file_ = std::move(file);  // the mapping's address does not change when moved
  return parsed;
}

GgufFile GgufFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
  GgufFile result;
  result.name_ = name;
  Reader reader(bytes, name);
  if (bytes.size() < 4 || std::memcmp(bytes.data(), "GGUF", 4) != 0)
    fail(name, ": not a GGUF file (bad magic)");
  reader.read<uint32_t>("magic");
  result.version_ = reader.read<uint32_t>("version");
  if (result.version_ != 2 && result.version_ != 3)
    fail(name, ": unsupported GGUF version ", result.version_, " (supported: 2, 3)");
  const auto tensor_count = reader.read<uint64_t>("tensor count");
  const auto key_count = reader.read<uint64_t>("metadata count");
  if (tensor_count > kMaxCount) reader.corrupt(cat("implausible tensor count ", tensor_count));
  if (key_count > kMaxCount) reader.corrupt(cat("implausible metadata count ", key_count));

  for (uint64_t i = 0; i < key_count; ++i) {
    std::string key(reader.read_string("metadata key", kMaxKeyBytes));
    const auto type = reader.read<uint32_t>("metadata type");
    if (type > static_cast<uint32_t>(GgufType::Float64))
      reader.corrupt(cat("key '", key, "' has unknown value type ", type));
    GgufValue value = read_value(reader, static_cast<GgufType>(type), 0, key);
    if (!result.metadata_.emplace(key, value).second)
      reader.corrupt(cat("duplicate key '", key, "'"));
  }

  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensor tensor;
    tensor.name = std::string(reader.read_string("tensor name"));
    const auto dimensions = reader.read<uint32_t>("tensor dimensions");
    if (dimensions == 0 || dimensions > kMaxDimensions)
      reader.corrupt(cat("tensor '", tensor.name, "' has ", dimensions, " dimensions"));
    int64_t elements = 1;
    for (uint32_t d = 0; d < dimensions; ++d) {
      const auto extent = reader.read<int64_t>("tensor shape");
      if (extent <= 0 || extent > (int64_t{1} << 40) ||
          elements > std::numeric_limits<int64_t>::max() / extent)
        reader.corrupt(cat("tensor '", tensor.name, "' has a bad extent ", extent));
      elements *= extent;
      tensor.shape.push_back(extent);
    }
    const auto type = reader.read<uint32_t>("tensor type");
    const GgmlTypeTraits traits = ggml_type_traits(type);
    if (traits.name == nullptr) fail(name, ": tensor '", tensor.name, "' has unknown type ", type);
    tensor.type = static_cast<GgmlType>(type);
    if (tensor.shape[0] % traits.block_elements != 0)
      fail(name, ": tensor '", tensor.name, "' row of ", tensor.shape[0],
           " elements is not a whole number of ", traits.name, " blocks");
    if (elements / traits.block_elements > std::numeric_limits<int64_t>::max() / traits.block_bytes)
      fail(name, ": tensor '", tensor.name, "' is too large (", elements, " elements)");
    tensor.bytes = static_cast<uint64_t>(elements / traits.block_elements) *
                   static_cast<uint64_t>(traits.block_bytes);
    tensor.offset = reader.read<uint64_t>("tensor offset");
    if (result.tensor_index_.count(tensor.name) != 0)
      reader.corrupt(cat("duplicate tensor '", tensor.name, "'"));
    result.tensor_index_[tensor.name] = result.tensors_.size();
    result.tensors_.push_back(std::move(tensor));
  }

  uint64_t alignment = 32;
  if (const GgufValue* value = result.find("general.alignment")) {
    // Writers store it as u32, but signed integer types are legal GGUF too.
    const bool is_signed = value->type == GgufType::Int8 || value->type == GgufType::Int16 ||
                           value->type == GgufType::Int32 || value->type == GgufType::Int64;
    const uint64_t requested =
        is_signed ? (value->signed_value > 0 ? static_cast<uint64_t>(value->signed_value) : 0)
                  : value->unsigned_value;
    if (!value->is_integer() || requested == 0 || requested > 65536 ||
        (requested & (requested - 1)) != 0)
      fail(name, ": general.alignment must be a power of two up to 65536");
    alignment = requested;
  }
  const uint64_t data_start = (reader.position() + alignment - 1) / alignment * alignment;
  for (GgufTensor& tensor : result.tensors_) {
    if (tensor.offset % alignment != 0)
      fail(name, ": tensor '", tensor.name, "' offset ", tensor.offset, " is not aligned to ",
           alignment);
    if (data_start > bytes.size() || tensor.offset > bytes.size() - data_start ||
        tensor.bytes > bytes.size() - data_start - tensor.offset)
      fail(name, ": file is truncated: tensor '", tensor.name, "' needs bytes up to ",
           data_start + tensor.offset + tensor.bytes, " but the file has ", bytes.size());
    tensor.data = bytes.data() + data_start + tensor.offset;
  }
  check_tensor_layout(result.tensors_, alignment, name);
  return result;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

namespace {
const GgufValue& require(const GgufFile& file, const std::string& key) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) fail(file.name(), ": missing metadata key '", key, "'");
  return *value;
}
[[noreturn]] void wrong_type(const GgufFile& file, const std::string& key, const char* wanted,
                             const GgufValue& value) {
  fail(file.name(), ": metadata key '", key, "' should be a ", wanted, ", found a ",
       type_name(value.type));
}
int64_t as_int(const GgufFile& file, const std::string& key, const GgufValue& value) {
  if (!value.is_integer()) wrong_type(file, key, "integer", value);
  switch (value.type) {
    case GgufType::Int8:
    case GgufType::Int16:
    case GgufType::Int32:
    case GgufType::Int64:
      return value.signed_value;
    default:
      if (value.unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(file.name(), ": metadata key '", key, "' is out of range");
      return static_cast<int64_t>(value.unsigned_value);
  }
}
double as_float(const GgufFile& file, const std::string& key, const GgufValue& value) {
  if (value.is_float()) return value.float_value;
  return static_cast<double>(as_int(file, key, value));
}
const GgufValue& require_array(const GgufFile& file, const std::string& key) {
  const GgufValue& value = require(file, key);
  if (value.type != GgufType::Array) wrong_type(file, key, "array", value);
  return value;
}
}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& value = require(*this, key);
  if (value.type != GgufType::String) wrong_type(*this, key, "string", value);
  return std::string(value.string_value);
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

int64_t GgufFile::get_int(const std::string& key) const {
  return as_int(*this, key, require(*this, key));
}

int64_t GgufFile::get_int_or(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}

double GgufFile::get_float(const std::string& key) const {
  return as_float(*this, key, require(*this, key));
}

double GgufFile::get_float_or(const std::string& key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}

bool GgufFile::get_bool_or(const std::string& key, bool fallback) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return fallback;
  if (value->type != GgufType::Bool) wrong_type(*this, key, "bool", *value);
  return value->unsigned_value != 0;
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& array = require_array(*this, key);
  if (array.element_type != GgufType::String) wrong_type(*this, key, "string array", array);
  std::vector<std::string> result;
  result.reserve(static_cast<size_t>(array.element_count));
  for_each_element(array,
                   [&](const GgufValue& element) { result.emplace_back(element.string_value); });
  return result;
}

std::vector<float> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue& array = require_array(*this, key);
  std::vector<float> result;
  result.reserve(static_cast<size_t>(array.element_count));
  for_each_element(array, [&](const GgufValue& element) {
    result.push_back(static_cast<float>(as_float(*this, key, element)));
  });
  return result;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& array = require_array(*this, key);
  std::vector<int64_t> result;
  result.reserve(static_cast<size_t>(array.element_count));
  for_each_element(
      array, [&](const GgufValue& element) { result.push_back(as_int(*this, key, element)); });
  return result;
}

const GgufTensor* GgufFile::find_tensor(const std::string& tensor_name) const {
  auto it = tensor_index_.find(tensor_name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(const std::string& tensor_name) const {
  const GgufTensor* found = find_tensor(tensor_name);
  if (found == nullptr) fail(name_, ": missing tensor '", tensor_name, "'");
  return *found;
}

}  // namespace hogwild

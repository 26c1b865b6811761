#include "model/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/float16.h"

namespace hogwild {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian values; a big-endian host needs byte swaps here");

// The reference implementation (huggingface/safetensors) refuses headers above 100 MB; a larger
// length field is corrupt or hostile, and we would otherwise hand it to the JSON parser.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kLengthBytes = 8;

struct DTypeInfo {
  const char* name;
  SafetensorsDType dtype;
  uint64_t bytes;
};

constexpr DTypeInfo kDTypes[] = {
    {"F32", SafetensorsDType::F32, 4},         {"F16", SafetensorsDType::F16, 2},
    {"BF16", SafetensorsDType::BF16, 2},       {"F64", SafetensorsDType::F64, 8},
    {"I64", SafetensorsDType::I64, 8},         {"I32", SafetensorsDType::I32, 4},
    {"I16", SafetensorsDType::I16, 2},         {"I8", SafetensorsDType::I8, 1},
    {"U8", SafetensorsDType::U8, 1},           {"BOOL", SafetensorsDType::Bool, 1},
    {"F8_E4M3", SafetensorsDType::F8_E4M3, 1}, {"F8_E5M2", SafetensorsDType::F8_E5M2, 1},
};

const DTypeInfo* find_dtype(const std::string& name) {
  for (const DTypeInfo& info : kDTypes)
    if (name == info.name) return &info;
  return nullptr;
}

std::string known_dtypes() {
  std::string names;
  for (const DTypeInfo& info : kDTypes) names += cat(names.empty() ? "" : ", ", info.name);
  return names;
}

// nlohmann keeps the last of two equal keys without a word; a header naming a tensor twice is
// ambiguous, so the parser callback records the first duplicate key of any object.
class DuplicateKeyFinder {
 public:
  bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open_objects_.emplace_back();
    } else if (event == Event::object_end) {
      if (!open_objects_.empty()) open_objects_.pop_back();
    } else if (event == Event::key && !open_objects_.empty() && duplicate_.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects_.back().insert(key).second) duplicate_ = key.empty() ? "\"\"" : key;
    }
    return true;
  }
  const std::string& duplicate() const { return duplicate_; }

 private:
  std::vector<std::set<std::string>> open_objects_;
  std::string duplicate_;
};

// A valid header nests three levels deep ({name: {shape: [...]}}); nlohmann parses any depth, but
// its dump() and a naive walk recurse, so a deeply nested hostile header is refused up front.
constexpr int kMaxJsonDepth = 16;

// The deepest nesting of arrays and objects in `text`, counting brackets outside strings.
int json_depth(std::span<const uint8_t> text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// A non-negative JSON integer, or nullopt (floats, negatives, strings, ...).
std::optional<uint64_t> as_unsigned(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0)
    return static_cast<uint64_t>(value.get<int64_t>());
  return std::nullopt;
}

// A JSON value for an error message, cut short: a hostile header may hold a million extents.
std::string json_text(const nlohmann::json& value) {
  constexpr size_t kMaxChars = 120;
  std::string text = value.dump();
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}

SafetensorsTensor parse_entry(const std::string& file, const std::string& tensor_name,
                              const nlohmann::json& entry, std::span<const uint8_t> data) {
  const std::string where = cat(file, ": tensor '", tensor_name, "'");
  if (!entry.is_object()) fail(where, ": entry is not a JSON object");

  SafetensorsTensor tensor;
  tensor.name = tensor_name;
  const auto dtype_field = entry.find("dtype");
  if (dtype_field == entry.end() || !dtype_field->is_string())
    fail(where, ": missing or non-string 'dtype'");
  tensor.dtype_name = dtype_field->get<std::string>();
  const DTypeInfo* dtype = find_dtype(tensor.dtype_name);
  if (dtype == nullptr)
    fail(where, ": unknown dtype '", tensor.dtype_name, "' (known: ", known_dtypes(), ")");
  tensor.dtype = dtype->dtype;

  const auto shape_field = entry.find("shape");
  if (shape_field == entry.end() || !shape_field->is_array())
    fail(where, ": missing or non-array 'shape'");
  // Elements are counted in uint64 and must also fit int64 (element_count()) and, times the
  // dtype size, uint64 bytes; each step is checked before it can overflow.
  uint64_t elements = 1;
  for (const nlohmann::json& extent_json : *shape_field) {
    const auto extent = as_unsigned(extent_json);
    if (!extent || *extent > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(where, ": shape ", json_text(*shape_field),
           " has an extent that is not a non-negative integer");
    if (*extent != 0 &&
        elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / *extent)
      fail(where, ": shape ", json_text(*shape_field), " has too many elements");
    elements *= *extent;
    tensor.shape.push_back(static_cast<int64_t>(*extent));
  }
  if (elements > std::numeric_limits<uint64_t>::max() / dtype->bytes)
    fail(where, ": shape ", json_text(*shape_field), " has too many bytes");
  const uint64_t expected_bytes = elements * dtype->bytes;

  const auto offsets_field = entry.find("data_offsets");
  if (offsets_field == entry.end() || !offsets_field->is_array() || offsets_field->size() != 2)
    fail(where, ": 'data_offsets' must be an array [begin, end]");
  const auto begin = as_unsigned((*offsets_field)[0]);
  const auto end = as_unsigned((*offsets_field)[1]);
  if (!begin || !end)
    fail(where, ": data_offsets ", json_text(*offsets_field), " are not non-negative integers");
  if (*begin > *end)
    fail(where, ": data_offsets ", json_text(*offsets_field), " end before they begin");
  if (*end > data.size())
    fail(where, ": data_offsets ", json_text(*offsets_field),
         " run past the end of the data section (", data.size(), " bytes); is the file truncated?");
  if (*end - *begin != expected_bytes)
    fail(where, ": data_offsets ", json_text(*offsets_field), " span ", *end - *begin,
         " bytes but ", tensor.dtype_name, " shape ", json_text(*shape_field), " needs ",
         expected_bytes);
  tensor.data = data.data() + *begin;
  tensor.bytes = expected_bytes;
  return tensor;
}

}  // namespace

int64_t SafetensorsTensor::element_count() const {
  int64_t count = 1;
  for (int64_t extent : shape) count *= extent;
  return count;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  MappedFile file(path);
  SafetensorsFile parsed = parse(file.bytes(), path);
  parsed.file_ =
      std::move(file);  // moving the mapping keeps its address: tensor pointers stay valid
  return parsed;
}

SafetensorsFile SafetensorsFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
  SafetensorsFile result;
  result.name_ = name;
  if (bytes.size() < kLengthBytes)
    fail(name, ": not a safetensors file: ", bytes.size(),
         " bytes is too short for the 8-byte header length");
  uint64_t header_bytes = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) header_bytes |= uint64_t{bytes[i]} << (8 * i);
  if (header_bytes > kMaxHeaderBytes)
    fail(name, ": header length ", header_bytes, " exceeds the ", kMaxHeaderBytes,
         "-byte limit (not a safetensors file?)");
  if (header_bytes > bytes.size() - kLengthBytes)
    fail(name, ": header length ", header_bytes, " exceeds the file size ", bytes.size(),
         " (file truncated?)");
  const auto header_begin = bytes.begin() + kLengthBytes;
  const auto header_end = header_begin + static_cast<std::ptrdiff_t>(header_bytes);
  const std::span<const uint8_t> data = bytes.subspan(kLengthBytes + header_bytes);

  // nlohmann stops at a NUL byte as if the input ended there; the header must be all JSON.
  if (const void* nul = std::memchr(bytes.data() + kLengthBytes, 0, header_bytes))
    fail(name, ": header is not valid JSON: NUL byte at offset ",
         static_cast<const uint8_t*>(nul) - bytes.data());
  if (json_depth(bytes.subspan(kLengthBytes, header_bytes)) > kMaxJsonDepth)
    fail(name, ": header nests JSON more than ", kMaxJsonDepth, " levels deep");
  nlohmann::json header;
  DuplicateKeyFinder duplicates;
  try {
    header = nlohmann::json::parse(header_begin, header_end, std::ref(duplicates));
  } catch (const nlohmann::json::exception& error) {
    fail(name, ": header is not valid JSON: ", error.what());
  }
  if (!duplicates.duplicate().empty())
    fail(name, ": header has the key '", duplicates.duplicate(), "' twice");
  if (!header.is_object())
    fail(name, ": header is a JSON ", header.type_name(), ", expected an object");

  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object()) fail(name, ": __metadata__ is not a JSON object");
      for (const auto& [meta_key, meta_value] : entry.items()) {
        if (!meta_value.is_string())
          fail(name, ": __metadata__ value of '", meta_key, "' is a ", meta_value.type_name(),
               ", expected a string");
        result.metadata_.emplace(meta_key, meta_value.get<std::string>());
      }
      continue;
    }
    result.tensors_.emplace(key, parse_entry(name, key, entry, data));
  }

  // Tensors must not share bytes: an overlap means a corrupt header (or one crafted to alias).
  std::vector<const SafetensorsTensor*> by_offset;
  for (const auto& [key, tensor] : result.tensors_)
    if (tensor.bytes != 0) by_offset.push_back(&tensor);
  std::sort(
      by_offset.begin(), by_offset.end(),
      [](const SafetensorsTensor* a, const SafetensorsTensor* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const SafetensorsTensor& previous = *by_offset[i - 1];
    if (by_offset[i]->data < previous.data + previous.bytes)
      fail(name, ": tensors '", previous.name, "' and '", by_offset[i]->name,
           "' overlap in the data section");
  }
  return result;
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& tensor_name) const {
  auto it = tensors_.find(tensor_name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<float> safetensors_to_float(const SafetensorsTensor& tensor, const std::string& file) {
  std::vector<float> result(static_cast<size_t>(tensor.element_count()));
  safetensors_to_float(tensor, file, 0, tensor.element_count(), result.data());
  return result;
}

void safetensors_to_float(const SafetensorsTensor& tensor, const std::string& file, int64_t first,
                          int64_t count, float* out) {
  HOGWILD_ASSERT(first >= 0 && count >= 0 && first + count <= tensor.element_count());
  const auto begin = static_cast<size_t>(first);
  const auto size = static_cast<size_t>(count);
  // Offsets in a safetensors file need not be aligned: copy element by element.
  switch (tensor.dtype) {
    case SafetensorsDType::F32:
      HOGWILD_ASSERT(tensor.bytes == static_cast<uint64_t>(tensor.element_count()) * sizeof(float));
      if (size != 0) std::memcpy(out, tensor.data + begin * sizeof(float), size * sizeof(float));
      break;
    case SafetensorsDType::F16:
    case SafetensorsDType::BF16: {
      HOGWILD_ASSERT(tensor.bytes ==
                     static_cast<uint64_t>(tensor.element_count()) * sizeof(uint16_t));
      const bool half = tensor.dtype == SafetensorsDType::F16;
      const uint8_t* source = tensor.data + begin * sizeof(uint16_t);
      for (size_t i = 0; i < size; ++i) {
        uint16_t bits;
        std::memcpy(&bits, source + i * sizeof bits, sizeof bits);
        out[i] = half ? half_to_float(bits) : bf16_to_float(bits);
      }
      break;
    }
    default:
      fail(file, ": tensor '", tensor.name, "' has dtype ", tensor.dtype_name,
           "; only F32, F16 and BF16 convert to fp32");
  }
}

}  // namespace hogwild

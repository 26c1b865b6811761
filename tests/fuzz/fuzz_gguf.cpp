// libFuzzer entry point for the GGUF parser: any bytes must parse or throw hogwild::Error. Other
// exceptions, crashes and sanitizer reports are findings. After a successful parse the typed
// getters run on every key and every tensor's bytes are read, so that a bounds check the parser
// got wrong shows up as an out-of-bounds read (under AddressSanitizer) here, not in the engine.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/gguf.h"

namespace {

template <typename Call>
void ignore_errors(Call&& call) {
  try {
    call();
  } catch (const hogwild::Error&) {
  }
}

constexpr int64_t kMaxDequantizedElements = 1 << 16;

void exercise(const hogwild::GgufFile& file) {
  for (const auto& entry : file.metadata()) {
    const std::string& key = entry.first;  // clang 14 cannot capture structured bindings
    ignore_errors([&] { file.get_string(key); });
    ignore_errors([&] { file.get_int(key); });
    ignore_errors([&] { file.get_float(key); });
    ignore_errors([&] { file.get_bool_or(key, false); });
    ignore_errors([&] { file.get_string_array(key); });
    ignore_errors([&] { file.get_float_array(key); });
    ignore_errors([&] { file.get_int_array(key); });
  }
  volatile uint8_t sink = 0;
  for (const hogwild::GgufTensor& tensor : file.tensors()) {
    if (tensor.bytes != 0) sink = sink + tensor.data[0] + tensor.data[tensor.bytes - 1];
    const auto traits = hogwild::ggml_type_traits(static_cast<uint32_t>(tensor.type));
    if (traits.can_dequantize && tensor.element_count() <= kMaxDequantizedElements) {
      std::vector<float> values(static_cast<size_t>(tensor.element_count()));
      ignore_errors([&] {
        hogwild::dequantize(tensor.type, tensor.data, values.data(), tensor.element_count());
      });
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const hogwild::GgufFile file = hogwild::GgufFile::parse({data, size}, "fuzz.gguf");
    exercise(file);
  } catch (const hogwild::Error&) {
  }
  return 0;
}

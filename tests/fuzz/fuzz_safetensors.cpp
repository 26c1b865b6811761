// libFuzzer entry point for the safetensors parser: any bytes must parse or throw hogwild::Error.
// After a successful parse every tensor's first and last bytes are read and small float tensors
// are converted, so a wrong bounds check shows up under AddressSanitizer here.
#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "model/safetensors.h"

namespace {

constexpr int64_t kMaxConvertedElements = 1 << 16;

void exercise(const hogwild::SafetensorsFile& file) {
  volatile uint8_t sink = 0;
  for (const auto& [name, tensor] : file.tensors()) {
    if (tensor.bytes != 0) sink = sink + tensor.data[0] + tensor.data[tensor.bytes - 1];
    if (tensor.element_count() <= kMaxConvertedElements) {
      try {
        hogwild::safetensors_to_float(tensor, file.name());
      } catch (const hogwild::Error&) {  // dtypes other than F32/F16/BF16
      }
    }
  }
  for (const auto& [key, value] : file.metadata())
    sink = sink + static_cast<uint8_t>(key.size() + value.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const hogwild::SafetensorsFile file =
        hogwild::SafetensorsFile::parse({data, size}, "fuzz.safetensors");
    exercise(file);
  } catch (const hogwild::Error&) {
  }
  return 0;
}

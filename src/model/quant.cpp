#include "model/quant.h"

#include <cstring>

#include "common/error.h"
#include "common/float16.h"
#include "model/quant_blocks.h"

namespace hogwild {
namespace {

using ggml_blocks::k_scale_min;
using ggml_blocks::load_u16;

float load_half(const uint8_t* p) { return half_to_float(load_u16(p)); }

// Q4_0 / Q4_1: 32 values; low nibbles hold elements 0..15, high nibbles 16..31.
void dequantize_q4(const uint8_t* block, float* out, bool has_min) {
  const float scale = load_half(block);
  const float minimum = has_min ? load_half(block + 2) : 0.0f;
  const uint8_t* nibbles = block + (has_min ? 4 : 2);
  const float offset = has_min ? 0.0f : -8.0f;
  // Adding a zero minimum would turn -0 into +0: keep the formulas of the two formats apart.
  for (int i = 0; i < 16; ++i) {
    const float low = (static_cast<float>(nibbles[i] & 0x0f) + offset) * scale;
    const float high = (static_cast<float>(nibbles[i] >> 4) + offset) * scale;
    out[i] = has_min ? low + minimum : low;
    out[i + 16] = has_min ? high + minimum : high;
  }
}

// Q5_0 / Q5_1: like Q4 plus a fifth bit per element packed in a 32-bit word.
void dequantize_q5(const uint8_t* block, float* out, bool has_min) {
  const float scale = load_half(block);
  const float minimum = has_min ? load_half(block + 2) : 0.0f;
  uint32_t high_bits;
  std::memcpy(&high_bits, block + (has_min ? 4 : 2), 4);
  const uint8_t* nibbles = block + (has_min ? 8 : 6);
  const float offset = has_min ? 0.0f : -16.0f;
  for (int i = 0; i < 16; ++i) {
    const uint32_t low = (nibbles[i] & 0x0f) | (((high_bits >> i) & 1u) << 4);
    const uint32_t high = (nibbles[i] >> 4) | (((high_bits >> (i + 16)) & 1u) << 4);
    const float first = (static_cast<float>(low) + offset) * scale;
    const float second = (static_cast<float>(high) + offset) * scale;
    out[i] = has_min ? first + minimum : first;
    out[i + 16] = has_min ? second + minimum : second;
  }
}

void dequantize_q8_0(const uint8_t* block, float* out) {
  const float scale = load_half(block);
  const auto* values = reinterpret_cast<const int8_t*>(block + 2);
  for (int i = 0; i < 32; ++i) out[i] = static_cast<float>(values[i]) * scale;
}

// K-quants: 256-value super-blocks with 6-bit sub-block scales and minimums.
void dequantize_q4_k(const uint8_t* block, float* out) {
  const float d = load_half(block);
  const float dmin = load_half(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* q = block + 16;
  int sub = 0;
  for (int j = 0; j < 256; j += 64) {
    int sc, m;
    k_scale_min(sub, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    k_scale_min(sub + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *out++ = d1 * static_cast<float>(q[l] & 0x0f) - m1;
    for (int l = 0; l < 32; ++l) *out++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
    sub += 2;
  }
}

void dequantize_q5_k(const uint8_t* block, float* out) {
  const float d = load_half(block);
  const float dmin = load_half(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* high = block + 16;
  const uint8_t* q = block + 48;
  int sub = 0;
  uint8_t bit1 = 1, bit2 = 2;
  for (int j = 0; j < 256; j += 64) {
    int sc, m;
    k_scale_min(sub, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    k_scale_min(sub + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l)
      *out++ = d1 * static_cast<float>((q[l] & 0x0f) + ((high[l] & bit1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l)
      *out++ = d2 * static_cast<float>((q[l] >> 4) + ((high[l] & bit2) ? 16 : 0)) - m2;
    q += 32;
    sub += 2;
    bit1 = static_cast<uint8_t>(bit1 << 2);
    bit2 = static_cast<uint8_t>(bit2 << 2);
  }
}

void dequantize_q6_k(const uint8_t* block, float* out) {
  const uint8_t* low = block;
  const uint8_t* high = block + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
  const float d = load_half(block + 208);
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      const int s = l / 16;
      const int q1 = ((low[l] & 0x0f) | (((high[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((low[l + 32] & 0x0f) | (((high[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((low[l] >> 4) | (((high[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((low[l + 32] >> 4) | (((high[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * scales[s + 0] * static_cast<float>(q1);
      out[l + 32] = d * scales[s + 2] * static_cast<float>(q2);
      out[l + 64] = d * scales[s + 4] * static_cast<float>(q3);
      out[l + 96] = d * scales[s + 6] * static_cast<float>(q4);
    }
    out += 128;
    low += 64;
    high += 32;
    scales += 8;
  }
}

}  // namespace

GgmlTypeTraits ggml_type_traits(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32:
      return {"F32", 1, 4, true};
    case GgmlType::F16:
      return {"F16", 1, 2, true};
    case GgmlType::BF16:
      return {"BF16", 1, 2, true};
    case GgmlType::Q4_0:
      return {"Q4_0", 32, 18, true};
    case GgmlType::Q4_1:
      return {"Q4_1", 32, 20, true};
    case GgmlType::Q5_0:
      return {"Q5_0", 32, 22, true};
    case GgmlType::Q5_1:
      return {"Q5_1", 32, 24, true};
    case GgmlType::Q8_0:
      return {"Q8_0", 32, 34, true};
    case GgmlType::Q8_1:
      return {"Q8_1", 32, 36, false};
    case GgmlType::Q2_K:
      return {"Q2_K", 256, 84, false};
    case GgmlType::Q3_K:
      return {"Q3_K", 256, 110, false};
    case GgmlType::Q4_K:
      return {"Q4_K", 256, 144, true};
    case GgmlType::Q5_K:
      return {"Q5_K", 256, 176, true};
    case GgmlType::Q6_K:
      return {"Q6_K", 256, 210, true};
    case GgmlType::Q8_K:
      return {"Q8_K", 256, 292, false};
    case GgmlType::I8:
      return {"I8", 1, 1, false};
    case GgmlType::I16:
      return {"I16", 1, 2, false};
    case GgmlType::I32:
      return {"I32", 1, 4, false};
    case GgmlType::I64:
      return {"I64", 1, 8, false};
    case GgmlType::F64:
      return {"F64", 1, 8, false};
  }
  return {};
}

std::string ggml_type_name(uint32_t type) {
  const GgmlTypeTraits traits = ggml_type_traits(type);
  return traits.name != nullptr ? traits.name : cat("unknown type ", type);
}

uint64_t ggml_row_bytes(GgmlType type, int64_t elements) {
  const GgmlTypeTraits traits = ggml_type_traits(static_cast<uint32_t>(type));
  HOGWILD_CHECK(traits.name != nullptr, "unknown tensor type ", static_cast<uint32_t>(type));
  HOGWILD_CHECK(elements % traits.block_elements == 0, traits.name, " needs a multiple of ",
                traits.block_elements, " elements, got ", elements);
  return static_cast<uint64_t>(elements / traits.block_elements) *
         static_cast<uint64_t>(traits.block_bytes);
}

void dequantize(GgmlType type, const void* src, float* dst, int64_t elements) {
  const GgmlTypeTraits traits = ggml_type_traits(static_cast<uint32_t>(type));
  HOGWILD_CHECK(traits.can_dequantize, "tensor type ", ggml_type_name(static_cast<uint32_t>(type)),
                " is not supported");
  HOGWILD_CHECK(elements % traits.block_elements == 0, traits.name, " needs a multiple of ",
                traits.block_elements, " elements, got ", elements);
  const auto* bytes = static_cast<const uint8_t*>(src);
  if (type == GgmlType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(elements) * sizeof(float));
    return;
  }
  const int64_t blocks = elements / traits.block_elements;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = bytes + b * traits.block_bytes;
    float* out = dst + b * traits.block_elements;
    switch (type) {
      case GgmlType::F32:
        std::memcpy(out, block, 4);
        break;
      case GgmlType::F16:
        *out = half_to_float(load_u16(block));
        break;
      case GgmlType::BF16:
        *out = bf16_to_float(load_u16(block));
        break;
      case GgmlType::Q4_0:
        dequantize_q4(block, out, false);
        break;
      case GgmlType::Q4_1:
        dequantize_q4(block, out, true);
        break;
      case GgmlType::Q5_0:
        dequantize_q5(block, out, false);
        break;
      case GgmlType::Q5_1:
        dequantize_q5(block, out, true);
        break;
      case GgmlType::Q8_0:
        dequantize_q8_0(block, out);
        break;
      case GgmlType::Q4_K:
        dequantize_q4_k(block, out);
        break;
      case GgmlType::Q5_K:
        dequantize_q5_k(block, out);
        break;
      case GgmlType::Q6_K:
        dequantize_q6_k(block, out);
        break;
      default:
        fail("tensor type ", traits.name, " is not supported");
    }
  }
}

}  // namespace hogwild

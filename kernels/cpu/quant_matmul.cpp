// Dispatch, activation quantization and the portable scalar kernels of quant_matmul.h. The
// AVX2 and AVX-512 kernels are in quant_matmul_avx2.cpp and quant_matmul_avx512.cpp. Block layouts:
// the GGUF specification, as decoded by model/quant.cpp's dequantize() (the tests' reference).
#include "kernels/cpu/quant_matmul.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/float16.h"
#include "kernels/cpu/quant_kernels.h"

#if HOGWILD_QUANT_AVX2
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace hogwild::cpu {
namespace quant {
namespace {

using ggml_blocks::load_u16;

float load_half(const uint8_t* p) { return half_to_float(load_u16(p)); }

// Input rows handled per pass over a weight row: their sums stay in a local array while the
// row's blocks (already in cache after the first row) are decoded once per block.
constexpr int64_t kScalarRows = 16;

// ---- 32-element formats: each block decodes to value = d * q + m with small integers q. ----

template <Format F>
struct Block32;

template <>
struct Block32<kQ4_0> {
  static constexpr int64_t bytes = 18;
  static void decode(const uint8_t* b, int* q, float& d, float& m) {
    d = load_half(b);
    m = 0.0f;
    for (int64_t i = 0; i < 16; ++i) {
      q[i] = (b[2 + i] & 0x0f) - 8;
      q[i + 16] = (b[2 + i] >> 4) - 8;
    }
  }
};

template <>
struct Block32<kQ4_1> {
  static constexpr int64_t bytes = 20;
  static void decode(const uint8_t* b, int* q, float& d, float& m) {
    d = load_half(b);
    m = load_half(b + 2);
    for (int64_t i = 0; i < 16; ++i) {
      q[i] = b[4 + i] & 0x0f;
      q[i + 16] = b[4 + i] >> 4;
    }
  }
};

// Q5: the fifth bit of element i is bit i of a 32-bit word after the scale(s).
inline void decode_q5_bits(const uint8_t* high_word, const uint8_t* nibbles, int offset, int* q) {
  uint32_t high;
  std::memcpy(&high, high_word, 4);
  for (int64_t i = 0; i < 16; ++i) {
    q[i] = static_cast<int>((nibbles[i] & 0x0f) | (((high >> i) & 1u) << 4)) + offset;
    q[i + 16] = static_cast<int>((nibbles[i] >> 4) | (((high >> (i + 16)) & 1u) << 4)) + offset;
  }
}

template <>
struct Block32<kQ5_0> {
  static constexpr int64_t bytes = 22;
  static void decode(const uint8_t* b, int* q, float& d, float& m) {
    d = load_half(b);
    m = 0.0f;
    decode_q5_bits(b + 2, b + 6, -16, q);
  }
};

template <>
struct Block32<kQ5_1> {
  static constexpr int64_t bytes = 24;
  static void decode(const uint8_t* b, int* q, float& d, float& m) {
    d = load_half(b);
    m = load_half(b + 2);
    decode_q5_bits(b + 4, b + 8, 0, q);
  }
};

template <>
struct Block32<kQ8_0> {
  static constexpr int64_t bytes = 34;
  static void decode(const uint8_t* b, int* q, float& d, float& m) {
    d = load_half(b);
    m = 0.0f;
    for (int64_t i = 0; i < 32; ++i) q[i] = static_cast<int8_t>(b[2 + i]);
  }
};

template <Format F>
void rows32_scalar(const uint8_t* w, int64_t k, const void* act, int64_t n, int64_t row_begin,
                   int64_t row_end, float* out, int64_t out_stride) {
  const int64_t blocks = k / 32;
  for (int64_t j = row_begin; j < row_end; ++j) {
    const uint8_t* row = w + j * blocks * Block32<F>::bytes;
    for (int64_t i0 = 0; i0 < n; i0 += kScalarRows) {
      const int64_t count = std::min(kScalarRows, n - i0);
      Act32Row rows[kScalarRows];
      for (int64_t r = 0; r < count; ++r) rows[r] = act32_row(act, blocks, i0 + r);
      float sums[kScalarRows] = {};
      for (int64_t b = 0; b < blocks; ++b) {
        int q[32];
        float d, m;
        Block32<F>::decode(row + b * Block32<F>::bytes, q, d, m);
        for (int64_t r = 0; r < count; ++r) {
          const Act32Row& x = rows[r];
          const int8_t* xq = x.q + 32 * b;
          int dot = 0;
          for (int64_t l = 0; l < 32; ++l) dot += q[l] * xq[l];
          sums[r] += d * x.scales[2 * b] * static_cast<float>(dot) + m * x.scales[2 * b + 1];
        }
      }
      for (int64_t r = 0; r < count; ++r) out[(i0 + r) * out_stride + j] = sums[r];
    }
  }
}

// ---- K-quants: 256-element super-blocks, decoded to value = d * scale[g] * q - dmin * min[g]
// for the sixteen groups g of 16 elements. ----

struct SuperBlock {
  int q[256];
  int scale[16];
  int min[16];
  float d;
  float dmin;
};

// Q4_K: d, dmin, 12 bytes of scales, then four chunks of 32 bytes: the low nibbles are sub-block
// 2c, the high nibbles sub-block 2c+1. Q5_K adds 32 bytes of fifth bits (bit 2c / 2c+1 of byte l).
void decode_k4_k5(const uint8_t* b, bool five, SuperBlock& s) {
  s.d = load_half(b);
  s.dmin = load_half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* high = b + 16;
  const uint8_t* q = b + (five ? 48 : 16);
  for (int64_t j = 0; j < 8; ++j) {
    int sc, mn;
    k_scale_min(j, scales, sc, mn);
    s.scale[2 * j] = s.scale[2 * j + 1] = sc;
    s.min[2 * j] = s.min[2 * j + 1] = mn;
  }
  for (int64_t c = 0; c < 4; ++c) {
    for (int64_t l = 0; l < 32; ++l) {
      int lo = q[32 * c + l] & 0x0f, hi = q[32 * c + l] >> 4;
      if (five) {
        lo |= ((high[l] >> (2 * c)) & 1) << 4;
        hi |= ((high[l] >> (2 * c + 1)) & 1) << 4;
      }
      s.q[64 * c + l] = lo;
      s.q[64 * c + 32 + l] = hi;
    }
  }
}

// Q6_K: 128 bytes of low nibbles, 64 of 2-bit highs, 16 signed scales, d. In each half of 128
// elements, element l + 32t (l < 32) takes its nibble from byte l or l+32 (t odd) of the half's
// 64, low nibble for t < 2, and bits 2t..2t+1 of high byte l.
void decode_q6_k(const uint8_t* b, SuperBlock& s) {
  s.d = load_half(b + 208);
  s.dmin = 0.0f;
  for (int64_t g = 0; g < 16; ++g) {
    s.scale[g] = static_cast<int8_t>(b[192 + g]);
    s.min[g] = 0;
  }
  for (int64_t half = 0; half < 2; ++half) {
    const uint8_t* low = b + 64 * half;
    const uint8_t* high = b + 128 + 32 * half;
    int* q = s.q + 128 * half;
    for (int64_t t = 0; t < 4; ++t) {
      for (int64_t l = 0; l < 32; ++l) {
        const uint8_t nibble_byte = low[l + (t & 1) * 32];
        const int nibble = t < 2 ? nibble_byte & 0x0f : nibble_byte >> 4;
        q[32 * t + l] = (nibble | (((high[l] >> (2 * t)) & 3) << 4)) - 32;
      }
    }
  }
}

template <Format F>
void rows256_scalar(const uint8_t* w, int64_t k, const void* act, int64_t n, int64_t row_begin,
                    int64_t row_end, float* out, int64_t out_stride) {
  constexpr int64_t bytes = k_quant_block_bytes(F);
  const int64_t blocks = k / 256;
  const auto* a = static_cast<const Act256*>(act);
  for (int64_t j = row_begin; j < row_end; ++j) {
    const uint8_t* row = w + j * blocks * bytes;
    for (int64_t i0 = 0; i0 < n; i0 += kScalarRows) {
      const int64_t count = std::min(kScalarRows, n - i0);
      float sums[kScalarRows] = {};
      for (int64_t b = 0; b < blocks; ++b) {
        SuperBlock s;
        if constexpr (F == kQ6_K)
          decode_q6_k(row + b * bytes, s);
        else
          decode_k4_k5(row + b * bytes, F == kQ5_K, s);
        for (int64_t r = 0; r < count; ++r) {
          const Act256& x = a[(i0 + r) * blocks + b];
          int dot = 0, mins = 0;
          for (int64_t g = 0; g < 16; ++g) {
            int group = 0;
            for (int64_t l = 16 * g; l < 16 * g + 16; ++l) group += s.q[l] * x.q[l];
            dot += s.scale[g] * group;
            mins += s.min[g] * x.sums[g];
          }
          sums[r] += s.d * x.d * static_cast<float>(dot) - s.dmin * x.d * static_cast<float>(mins);
        }
      }
      for (int64_t r = 0; r < count; ++r) out[(i0 + r) * out_stride + j] = sums[r];
    }
  }
}

// ---- F32 / F16 / BF16 weights against fp32 activations. ----

template <Format F>
float load_weight(const uint8_t* row, int64_t l) {
  if constexpr (F == kF32) {
    float v;
    std::memcpy(&v, row + 4 * l, 4);
    return v;
  } else if constexpr (F == kF16) {
    return load_half(row + 2 * l);
  } else {
    return bf16_to_float(load_u16(row + 2 * l));
  }
}

template <Format F>
void rows_float_scalar(const uint8_t* w, int64_t k, const void* act, int64_t n, int64_t row_begin,
                       int64_t row_end, float* out, int64_t out_stride) {
  constexpr int64_t element = F == kF32 ? 4 : 2;
  constexpr int64_t chunk = 64;  // weights converted once per chunk for all rows
  const auto* x = static_cast<const float*>(act);
  for (int64_t j = row_begin; j < row_end; ++j) {
    const uint8_t* row = w + j * k * element;
    for (int64_t i0 = 0; i0 < n; i0 += kScalarRows) {
      const int64_t count = std::min(kScalarRows, n - i0);
      float sums[kScalarRows] = {};
      for (int64_t c = 0; c < k; c += chunk) {
        const int64_t len = std::min(chunk, k - c);
        float wf[chunk];
        for (int64_t l = 0; l < len; ++l) wf[l] = load_weight<F>(row, c + l);
        for (int64_t r = 0; r < count; ++r) {
          const float* xr = x + (i0 + r) * k + c;
          float part = 0.0f;  // per-chunk partial sums: shorter fp32 rounding chains
          for (int64_t l = 0; l < len; ++l) part += wf[l] * xr[l];
          sums[r] += part;
        }
      }
      for (int64_t r = 0; r < count; ++r) out[(i0 + r) * out_stride + j] = sums[r];
    }
  }
}

}  // namespace

const RowsKernel kScalarKernels[kFormats] = {
    rows_float_scalar<kF32>, rows_float_scalar<kF16>, rows_float_scalar<kBF16>,
    rows32_scalar<kQ4_0>,    rows32_scalar<kQ4_1>,    rows32_scalar<kQ5_0>,
    rows32_scalar<kQ5_1>,    rows32_scalar<kQ8_0>,    rows256_scalar<kQ4_K>,
    rows256_scalar<kQ5_K>,   rows256_scalar<kQ6_K>};

#if !HOGWILD_QUANT_AVX2
const RowsKernel kAvx2Kernels[kFormats] = {};
const LaneGroupsKernel kAvx2LaneGroups[2] = {};
const Row32Quantizer kAvx2QuantizeRow32 = nullptr;
#endif
#if !HOGWILD_QUANT_AVX512
const RowsKernel kAvx512Kernels[kFormats] = {};
const LaneGroupsKernel kAvx512LaneGroups[2] = {};
const LaneGroupsKernel kAmxLaneGroups[2] = {};
const Row32Quantizer kAvx512QuantizeRow32 = nullptr;
#endif

}  // namespace quant

namespace {

using quant::Act256;
using quant::Format;

// The kernel table index of a weight type; fails for types without a kernel.
Format format_of(DType weight) {
  switch (weight) {
    case DType::F32:
      return quant::kF32;
    case DType::F16:
      return quant::kF16;
    case DType::BF16:
      return quant::kBF16;
    case DType::Q4_0:
      return quant::kQ4_0;
    case DType::Q4_1:
      return quant::kQ4_1;
    case DType::Q5_0:
      return quant::kQ5_0;
    case DType::Q5_1:
      return quant::kQ5_1;
    case DType::Q8_0:
      return quant::kQ8_0;
    case DType::Q4_K:
      return quant::kQ4_K;
    case DType::Q5_K:
      return quant::kQ5_K;
    case DType::Q6_K:
      return quant::kQ6_K;
    case DType::I32:
      break;
  }
  fail("quantized matmul: no kernel for ", dtype_name(weight), " weights");
}

// What the activations of a weight type look like: 8-bit blocks of 32 or 256, or fp32.
int64_t activation_block(DType weight) {
  if (!dtype_is_block(weight)) return 1;
  return dtype_block_elements(weight);
}

void check_k(DType weight, int64_t k) {
  HOGWILD_CHECK(k > 0 && k % dtype_block_elements(weight) == 0,
                "quantized matmul: ", dtype_name(weight),
                " weights need rows of a positive multiple of ", dtype_block_elements(weight),
                " elements, got ", k);
}

// Nearest integer of x / d, within [-127, 127] (so that the sign trick of the AVX2 Q8_0 dot
// product, which negates activations, cannot overflow).
int8_t quantize_value(float x, float inverse) {
  const float q = std::nearbyint(x * inverse);
  return static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
}

// The scale of a block: its largest magnitude maps to 127; an all-zero block gets scale 0.
float block_scale(const float* x, int64_t count, float& inverse) {
  float amax = 0.0f;
  for (int64_t l = 0; l < count; ++l) amax = std::max(amax, std::fabs(x[l]));
  const float d = amax / 127.0f;
  inverse = d > 0.0f ? 127.0f / amax : 0.0f;
  return d;
}

// One row in the layout of quant_kernels.h's Act32Row.
void quantize_row32(const float* x, int64_t k, uint8_t* out) {
  const int64_t blocks = k / 32;
  auto* scales = reinterpret_cast<float*>(out);
  auto* q = reinterpret_cast<int8_t*>(out + 8 * blocks);
  for (int64_t b = 0; b < blocks; ++b, x += 32, q += 32) {
    float inverse;
    const float d = block_scale(x, 32, inverse);
    int sum = 0;
    for (int64_t l = 0; l < 32; ++l) {
      q[l] = quantize_value(x[l], inverse);
      sum += q[l];
    }
    scales[2 * b] = d;
    scales[2 * b + 1] = d * static_cast<float>(sum);
  }
}

void quantize_row256(const float* x, int64_t k, Act256* out) {
  for (int64_t b = 0; b < k / 256; ++b, x += 256, ++out) {
    float inverse;
    out->d = block_scale(x, 256, inverse);
    for (int64_t g = 0; g < 16; ++g) {
      int sum = 0;
      for (int64_t l = 16 * g; l < 16 * g + 16; ++l) {
        out->q[l] = quantize_value(x[l], inverse);
        sum += out->q[l];
      }
      out->sums[g] = static_cast<int16_t>(sum);
    }
  }
}

// -1 until chosen, then a QuantIsa.
std::atomic<int> chosen_isa{-1};

}  // namespace

const char* quant_isa_name(QuantIsa isa) {
  switch (isa) {
    case QuantIsa::Scalar:
      return "scalar";
    case QuantIsa::Avx2:
      return "avx2";
    case QuantIsa::Avx512:
      return "avx512";
    case QuantIsa::Amx:
      return "amx";
  }
  return "unknown";
}

bool quant_isa_available(QuantIsa isa) {
  if (isa == QuantIsa::Scalar) return true;
#if HOGWILD_QUANT_AVX2
  // F16C from CPUID leaf 1 (ECX bit 29): not every compiler's __builtin_cpu_supports knows it.
  // __builtin_cpu_supports checks that the OS saves the AVX / AVX-512 registers too.
  static const bool avx2 = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
    return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  if (isa == QuantIsa::Avx2) return avx2;
#if HOGWILD_QUANT_AVX512
  static const bool avx512 =
      avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vnni");
  if (isa == QuantIsa::Avx512) return avx512;
  // AMX-TILE and AMX-INT8 (CPUID leaf 7, EDX bits 24 and 25), and Linux's leave to use the tile
  // data (asked once, for the whole process, before any pool thread runs a kernel).
  static const bool amx = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!avx512 || __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
    if ((edx & (1u << 24)) == 0 || (edx & (1u << 25)) == 0) return false;
#if defined(__linux__)
    constexpr long kRequestPermission = 0x1023, kTileData = 18;  // ARCH_REQ_XCOMP_PERM
    return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
#else
    return false;
#endif
  }();
  if (isa == QuantIsa::Amx) return amx;
#endif
#endif
  return false;
}

QuantIsa quant_isa_for(const char* features) {
  constexpr QuantIsa kAll[] = {QuantIsa::Scalar, QuantIsa::Avx2, QuantIsa::Avx512, QuantIsa::Amx};
  if (features == nullptr || *features == '\0') {
    QuantIsa best = QuantIsa::Scalar;
    for (QuantIsa isa : kAll)
      if (quant_isa_available(isa)) best = isa;
    return best;
  }
  const std::string name = features;
  for (QuantIsa isa : kAll) {
    if (name != quant_isa_name(isa)) continue;
    HOGWILD_CHECK(quant_isa_available(isa), "HOGWILD_CPU_FEATURES=", name,
                  ": this CPU or build has no ", name);
    return isa;
  }
  fail("HOGWILD_CPU_FEATURES=", name,
       ": unknown instruction set (known: scalar, avx2, avx512, amx)");
}

QuantIsa quant_isa() {
  int isa = chosen_isa.load(std::memory_order_acquire);
  if (isa < 0) {
    isa = static_cast<int>(quant_isa_for(std::getenv("HOGWILD_CPU_FEATURES")));
    chosen_isa.store(isa, std::memory_order_release);
  }
  return static_cast<QuantIsa>(isa);
}

void set_quant_isa(QuantIsa isa) {
  HOGWILD_CHECK(quant_isa_available(isa), "quantized matmul: this CPU or build has no ",
                quant_isa_name(isa));
  chosen_isa.store(static_cast<int>(isa), std::memory_order_release);
}

bool quant_matmul_supports(DType weight) { return weight != DType::I32; }

size_t activation_bytes(DType weight, int64_t n, int64_t k) {
  format_of(weight);
  check_k(weight, k);
  HOGWILD_CHECK(n >= 0, "quantized matmul: negative row count ", n);
  const int64_t block = activation_block(weight);
  const size_t per_block = block == 1    ? sizeof(float)
                           : block == 32 ? static_cast<size_t>(quant::kAct32BlockBytes)
                                         : sizeof(Act256);
  return static_cast<size_t>(n) * static_cast<size_t>(k / block) * per_block;
}

void quantize_activations(DType weight, const float* x, int64_t n, int64_t k, int64_t x_stride,
                          void* act) {
  format_of(weight);
  check_k(weight, k);
  HOGWILD_CHECK(n >= 0 && x_stride >= k, "quantized matmul: activations of ", n, " rows of ", k,
                " need a row stride >= ", k, ", got ", x_stride);
  const int64_t block = activation_block(weight);
  // The same bytes from each (tested): the widest this CPU runs.
  const QuantIsa isa = quant_isa();
  quant::Row32Quantizer row32 = quantize_row32;
  if (isa >= QuantIsa::Avx512 && quant::kAvx512QuantizeRow32 != nullptr)
    row32 = quant::kAvx512QuantizeRow32;
  else if (isa >= QuantIsa::Avx2 && quant::kAvx2QuantizeRow32 != nullptr)
    row32 = quant::kAvx2QuantizeRow32;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * x_stride;
    if (block == 1) {
      std::memcpy(static_cast<float*>(act) + i * k, row, static_cast<size_t>(k) * sizeof(float));
    } else if (block == 32) {
      row32(row, k, static_cast<uint8_t*>(act) + i * (k / 32) * quant::kAct32BlockBytes);
    } else {
      quantize_row256(row, k, static_cast<Act256*>(act) + i * (k / 256));
    }
  }
}

void quant_matmul_rows(DType weight, const void* w, int64_t k, const void* act, int64_t n,
                       int64_t row_begin, int64_t row_end, float* out, int64_t out_stride) {
  const Format format = format_of(weight);
  check_k(weight, k);
  HOGWILD_CHECK(n >= 0 && row_begin >= 0 && row_begin <= row_end,
                "quantized matmul: bad rows: n=", n, ", weight rows [", row_begin, ", ", row_end,
                ")");
  if (n == 0 || row_begin == row_end) return;
  HOGWILD_CHECK(n == 1 || out_stride >= row_end, "quantized matmul: out_stride ", out_stride,
                " is less than the ", row_end, " output columns");
  // The chosen instruction set's kernel, or the next one down where it has none.
  quant::RowsKernel kernel = nullptr;
  const QuantIsa isa = quant_isa();
  if (isa >= QuantIsa::Avx512) kernel = quant::kAvx512Kernels[format];
  if (kernel == nullptr && isa != QuantIsa::Scalar) kernel = quant::kAvx2Kernels[format];
  if (kernel == nullptr) kernel = quant::kScalarKernels[format];
  kernel(static_cast<const uint8_t*>(w), k, act, n, row_begin, row_end, out, out_stride);
}

// ---- The lane layout (quant_kernels.h has the byte map).

namespace {

struct LaneShape {
  int64_t block_bytes, quants, blocks;  // per block of one row; the nibbles' offset in a group
  int64_t group_bytes() const { return kLaneGroupRows * block_bytes * blocks; }
};

bool lane_format(DType weight) { return weight == DType::Q4_0 || weight == DType::Q4_1; }

LaneShape lane_shape(DType weight, int64_t k) {
  HOGWILD_CHECK(lane_format(weight), "the lane layout holds Q4_0 and Q4_1 weights, not ",
                dtype_name(weight));
  check_k(weight, k);
  const bool has_min = weight == DType::Q4_1;
  return {has_min ? 20 : 18, quant::lane_group_quants(has_min), k / 32};
}

// Calls visit(row_offset, group_offset, bytes) for each piece of row `row`'s block b: its fp16
// scale (and minimum) and its four nibble dwords.
template <class Visit>
void lane_pieces(const LaneShape& s, int64_t row, int64_t b, Visit visit) {
  const int64_t lane = row % kLaneGroupRows;
  const int64_t block =
      (row / kLaneGroupRows) * s.group_bytes() + b * kLaneGroupRows * s.block_bytes;
  const int64_t at = b * s.block_bytes;
  visit(at, block + 2 * lane, 2);                               // d
  if (s.quants == 64) visit(at + 2, block + 32 + 2 * lane, 2);  // Q4_1's m
  const int64_t nibbles = at + s.block_bytes - 16;
  for (int64_t j = 0; j < 4; ++j) visit(nibbles + 4 * j, block + s.quants + 64 * j + 4 * lane, 4);
}

}  // namespace

bool lane_layout_fits(DType weight, int64_t rows) {
  return lane_format(weight) && rows > 0 && rows % kLaneGroupRows == 0;
}

void to_lane_layout(DType weight, const void* plain, int64_t k, int64_t rows, void* base,
                    int64_t first) {
  const LaneShape s = lane_shape(weight, k);
  const auto* in = static_cast<const uint8_t*>(plain);
  auto* out = static_cast<uint8_t*>(base);
  for (int64_t r = 0; r < rows; ++r, in += s.blocks * s.block_bytes)
    for (int64_t b = 0; b < s.blocks; ++b)
      lane_pieces(s, first + r, b, [&](int64_t from, int64_t to, int64_t bytes) {
        std::memcpy(out + to, in + from, static_cast<size_t>(bytes));
      });
}

void from_lane_layout(DType weight, const void* base, int64_t k, int64_t row, void* plain) {
  const LaneShape s = lane_shape(weight, k);
  const auto* in = static_cast<const uint8_t*>(base);
  auto* out = static_cast<uint8_t*>(plain);
  for (int64_t b = 0; b < s.blocks; ++b)
    lane_pieces(s, row, b, [&](int64_t to, int64_t from, int64_t bytes) {
      std::memcpy(out + to, in + from, static_cast<size_t>(bytes));
    });
}

void quant_matmul_lane_rows(DType weight, const void* base, int64_t first, int64_t k,
                            const void* act, int64_t n, int64_t row_begin, int64_t row_end,
                            float* out, int64_t out_stride) {
  const LaneShape s = lane_shape(weight, k);
  HOGWILD_CHECK(n >= 0 && first >= 0 && row_begin >= 0 && row_begin <= row_end,
                "quantized matmul: bad rows: n=", n, ", weight rows ", first, " + [", row_begin,
                ", ", row_end, ")");
  if (n == 0 || row_begin == row_end) return;
  HOGWILD_CHECK(n == 1 || out_stride >= row_end, "quantized matmul: out_stride ", out_stride,
                " is less than the ", row_end, " output columns");
  const QuantIsa isa = quant_isa();
  if (isa >= QuantIsa::Avx512) {
    const int index = weight == DType::Q4_1 ? 1 : 0;
    // Tiles of 16 input rows through AMX, the rest of a batch through AVX-512 (the same bits).
    const int64_t tiled = isa == QuantIsa::Amx ? n / 16 * 16 : 0;
    const auto* w = static_cast<const uint8_t*>(base);
    if (tiled > 0)
      quant::kAmxLaneGroups[index](w, first, k, act, tiled, row_begin, row_end, out, out_stride);
    if (tiled < n)
      quant::kAvx512LaneGroups[index](
          w, first, k,
          static_cast<const uint8_t*>(act) + tiled * s.blocks * quant::kAct32BlockBytes, n - tiled,
          row_begin, row_end, out + tiled * out_stride, out_stride);
    return;
  }
  if (isa == QuantIsa::Avx2 && quant::kAvx2LaneGroups[0] != nullptr) {
    quant::kAvx2LaneGroups[weight == DType::Q4_1 ? 1 : 0](
        static_cast<const uint8_t*>(base), first, k, act, n, row_begin, row_end, out, out_stride);
    return;
  }
  // The scalar kernels: the rows back in plain form, a group at a time (the CPU backend keeps
  // the layout only where a SIMD kernel reads it).
  thread_local std::vector<uint8_t> plain;
  const int64_t row_bytes = s.blocks * s.block_bytes;
  plain.resize(static_cast<size_t>(kLaneGroupRows * row_bytes));
  for (int64_t j = row_begin; j < row_end; j += kLaneGroupRows) {
    const int64_t count = std::min(kLaneGroupRows, row_end - j);
    for (int64_t r = 0; r < count; ++r)
      from_lane_layout(weight, base, k, first + j + r, plain.data() + r * row_bytes);
    quant_matmul_rows(weight, plain.data(), k, act, n, 0, count, out + j, out_stride);
  }
}

}  // namespace hogwild::cpu

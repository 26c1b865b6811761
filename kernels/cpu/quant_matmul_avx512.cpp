// AVX-512 kernels of quant_matmul.h (F, BW, VL, DQ and VNNI: Ice Lake, Sapphire Rapids, Zen 4 and
// later), compiled with those flags and called only when the CPU has them (quant_matmul.cpp
// checks). No standard library headers beyond <cstdint> and <cstring>: see quant_kernels.h.
//
// Q4_0 and Q4_1 put 16 weight rows in the lanes (gathered from plain rows, or loaded from the
// lane layout; see "weight rows in the lanes" below), and with AMX-INT8, 16 input rows against a
// group's 16 weight rows per tile multiply (functions marked target("amx-tile,amx-int8"), called
// only where quant_isa() is Amx). The other 32-element formats go four blocks at a time, two per
// 512-bit register: VNNI's vpdpbusd (unsigned x signed bytes, summed in fours into 32-bit lanes)
// does what AVX2's maddubs + madd pair does, in one instruction for two blocks; the activations'
// quants are contiguous (quant_kernels.h), so one load takes two blocks of them, and their [d, sum]
// pairs, so one multiply makes the scale products of four blocks, which one permute spreads over
// the lanes of each pair. Signed weights (Q5_0, Q8_0) give vpdpbusd their magnitudes and move their
// signs onto the activations
// (|a| <= 127, so the negation cannot overflow). Accumulation is fp32, as in the AVX2 kernels.
//
// Batch invariance, as in quant_matmul_avx2.cpp: every tile size runs the same operations on a
// row's own accumulators (the same chains over the same blocks, summed in one fixed order), so a
// row's bits do not depend on its batch.

// GCC 12's AVX-512 casts (_mm512_castsi512_si256, ...) read an "undefined" register that
// -Wuninitialized reports at every use (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/quant_kernels.h"
#include "kernels/cpu/quant_tiles.h"

namespace hogwild::cpu::quant {
namespace {

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

using ggml_blocks::load_u16;  // model/quant_blocks.h (internal linkage: safe under -mavx512*)

// The sum of 16 lanes in one fixed order.
inline float hsum(__m512 v) {
  const __m256 eight = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(eight), _mm256_extractf128_ps(eight, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 32 bytes of two blocks (or one, the high half zero) as one register.
inline __m512i join(__m256i low, __m256i high) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
}

// The Q4 / Q5 element order of two blocks' 16 nibble bytes (at p and q): per block, the low
// nibbles (elements 0..15), then the high nibbles (16..31).
inline __m512i nibbles(const uint8_t* p, const uint8_t* q) {
  const __m512i both =
      join(_mm256_broadcastsi128_si256(load16(p)), _mm256_broadcastsi128_si256(load16(q)));
  const __m512i shifted = _mm512_srlv_epi64(both, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
  return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0f));
}

// Plus 16 in the bytes whose bit is set in the two blocks' 32-bit fifth-bit words (element i of a
// block is byte i of its half, and bit i of its word).
inline __m512i add_fifth_bits(__m512i q, uint32_t low, uint32_t high) {
  const __mmask64 bits = static_cast<__mmask64>(low) | (static_cast<__mmask64>(high) << 32);
  return _mm512_mask_add_epi8(q, bits, q, _mm512_set1_epi8(0x10));
}

// ---- 32-element formats, in groups of four blocks (a quad; the row's last one may hold 1-3).
// W32<F>::quants(b, next) gives two blocks' integers (next = b for a lone block, whose high half
// the caller clears) and scale_bits the halves of a block's scale (and minimum) in 32 bits. ----

template <Format F>
struct W32;

template <>
struct W32<kQ5_0> {
  static constexpr int64_t bytes = 22;
  static constexpr bool has_min = false;
  static __m512i quants(const uint8_t* b, const uint8_t* next) {
    return _mm512_sub_epi8(
        add_fifth_bits(nibbles(b + 6, next + 6), load_u32(b + 2), load_u32(next + 2)),
        _mm512_set1_epi8(16));
  }
};

template <>
struct W32<kQ5_1> {
  static constexpr int64_t bytes = 24;
  static constexpr bool has_min = true;
  static __m512i quants(const uint8_t* b, const uint8_t* next) {
    return add_fifth_bits(nibbles(b + 8, next + 8), load_u32(b + 4), load_u32(next + 4));
  }
};

template <>
struct W32<kQ8_0> {
  static constexpr int64_t bytes = 34;
  static constexpr bool has_min = false;
  static __m512i quants(const uint8_t* b, const uint8_t* next) {
    return join(load32(b + 2), load32(next + 2));
  }
};

// The scale (and minimum) halves of a block in 32 bits: [d, m], or [d, 0] without a minimum.
template <bool HasMin>
inline int scale_bits(const uint8_t* b) {
  return HasMin ? static_cast<int>(load_u32(b)) : static_cast<int>(load_u16(b));
}

// Two blocks' integers as vpdpbusd's unsigned operand: the magnitudes of signed weights, whose
// signs (`negative`) the activations take instead.
struct Operand {
  __m512i magnitude;
  __mmask64 negative;
};

template <bool HasMin>
inline Operand operand(__m512i q) {
  if (HasMin) return {q, 0};
  return {_mm512_abs_epi8(q), _mm512_movepi8_mask(q)};
}

// Two blocks' integer dot products with one row's quants (8 partial sums per block).
template <bool HasMin>
inline __m512i dot_pair(const Operand& w, __m512i aq) {
  if (!HasMin) aq = _mm512_mask_sub_epi8(aq, w.negative, _mm512_setzero_si512(), aq);
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.magnitude, aq);
}

// Two blocks' activation quants, or one (the high half zero, nothing past it read).
template <bool Two>
inline __m512i load_quants(const int8_t* q) {
  if (Two) return _mm512_loadu_si512(q);
  return _mm512_zextsi256_si512(load32(q));
}

// One quad of Count blocks against R input rows. product = ws * [a.d, a.sum] per block gives
// [d*a.d, m*a.sum] in lanes 2c, 2c+1: the even lanes scale the blocks' integer sums (spread to 8
// lanes each), the odd ones are the minimum's terms (summed in `mins`). acc0 takes the first
// pair of blocks, acc1 the second: two independent fma chains per row.
template <Format F, int R, int Count>
inline void quad32(const uint8_t* block, const Act32Row* x, int64_t b, __m512* acc0, __m512* acc1,
                   __m256* mins) {
  using W = W32<F>;
  constexpr int64_t bytes = W::bytes;
  __m512i low = W::quants(block, block + (Count >= 2 ? bytes : 0));
  if (Count == 1) low = _mm512_zextsi256_si512(_mm512_castsi512_si256(low));
  __m512i high = _mm512_setzero_si512();
  if (Count == 4) high = W::quants(block + 2 * bytes, block + 3 * bytes);
  if (Count == 3) {
    high = W::quants(block + 2 * bytes, block + 2 * bytes);
    high = _mm512_zextsi256_si512(_mm512_castsi512_si256(high));
  }
  const Operand w_low = operand<W::has_min>(low), w_high = operand<W::has_min>(high);
  const __m256 ws = _mm256_cvtph_ps(_mm_setr_epi32(
      scale_bits<W::has_min>(block), Count >= 2 ? scale_bits<W::has_min>(block + bytes) : 0,
      Count >= 3 ? scale_bits<W::has_min>(block + 2 * bytes) : 0,
      Count >= 4 ? scale_bits<W::has_min>(block + 3 * bytes) : 0));
  const __m512i spread_low = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
  const __m512i spread_high = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6);
  constexpr __mmask8 present = static_cast<__mmask8>((1u << (2 * Count)) - 1u);
  for (int64_t r = 0; r < R; ++r) {
    const int8_t* q = x[r].q + 32 * b;
    const __m256 as = Count == 4 ? _mm256_loadu_ps(x[r].scales + 2 * b)
                                 : _mm256_maskz_loadu_ps(present, x[r].scales + 2 * b);
    const __m256 product = _mm256_mul_ps(ws, as);
    const __m512 wide = _mm512_castps256_ps512(product);
    const __m512i p_low = dot_pair<W::has_min>(w_low, load_quants<Count >= 2>(q));
    acc0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p_low), _mm512_permutexvar_ps(spread_low, wide),
                              acc0[r]);
    if (Count >= 3) {
      const __m512i p_high = dot_pair<W::has_min>(w_high, load_quants<Count == 4>(q + 64));
      acc1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p_high),
                                _mm512_permutexvar_ps(spread_high, wide), acc1[r]);
    }
    if (W::has_min) mins[r] = _mm256_add_ps(mins[r], product);
  }
}

template <Format F, int R>
void tile32(const uint8_t* row, int64_t blocks, const Act32Row* x, float* result) {
  using W = W32<F>;
  __m512 acc0[R], acc1[R];
  __m256 mins[R];
  for (int64_t r = 0; r < R; ++r) {
    acc0[r] = acc1[r] = _mm512_setzero_ps();
    mins[r] = _mm256_setzero_ps();
  }
  int64_t b = 0;
  for (; b + 4 <= blocks; b += 4) {
    prefetch_ahead<4 * W::bytes>(row + b * W::bytes);
    quad32<F, R, 4>(row + b * W::bytes, x, b, acc0, acc1, mins);
  }
  const uint8_t* last = row + b * W::bytes;
  switch (blocks - b) {
    case 3:
      quad32<F, R, 3>(last, x, b, acc0, acc1, mins);
      break;
    case 2:
      quad32<F, R, 2>(last, x, b, acc0, acc1, mins);
      break;
    case 1:
      quad32<F, R, 1>(last, x, b, acc0, acc1, mins);
      break;
    default:
      break;
  }
  for (int64_t r = 0; r < R; ++r) {
    float sum = hsum(_mm512_add_ps(acc0[r], acc1[r]));
    if (W::has_min) {  // the odd lanes: 1 + 5, 3 + 7, then those two
      const __m128 m =
          _mm_add_ps(_mm256_castps256_ps128(mins[r]), _mm256_extractf128_ps(mins[r], 1));
      const __m128 odd = _mm_movehdup_ps(m);
      sum += _mm_cvtss_f32(_mm_add_ss(odd, _mm_movehl_ps(odd, odd)));
    }
    result[r] = sum;
  }
}

// ---- K-quants: 256-element super-blocks, 64 elements (two sub-blocks of 32, or four groups of
// 16) per register, as in the AVX2 kernels otherwise: maddubs makes 16-bit pair sums (< 2^15 for
// these weights' 4-6 bits), madd multiplies them by the sub-block scales and widens them. ----

// A 256-bit value in both halves.
inline __m512i both_halves(__m256i v) { return _mm512_broadcast_i64x4(v); }

// Q4_K / Q5_K: chunk c (32 bytes) holds sub-block 2c in its low nibbles and 2c+1 in its high
// nibbles, elements 64c..64c+63: [low | high] is that range in order. Q5_K's fifth bits: bits 2c
// and 2c+1 of the 32 bytes after the scales.
template <bool Five, int R>
void tile_k4_k5(const uint8_t* row, int64_t blocks, const Act256* x, float* result) {
  constexpr int64_t bytes = Five ? 176 : 144;
  __m512 acc[R];
  float mins[R];
  for (int64_t r = 0; r < R; ++r) {
    acc[r] = _mm512_setzero_ps();
    mins[r] = 0.0f;
  }
  const __m512i low_mask = _mm512_set1_epi8(0x0f);
  const __m512i nibble_shift = _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = row + b * bytes;
    prefetch_ahead<bytes>(block);
    uint16_t halves[2];
    std::memcpy(halves, block, 4);
    const __m128 d_dmin =
        _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(halves[0] | (halves[1] << 16))));
    const float d = _mm_cvtss_f32(d_dmin);
    const float dmin = _mm_cvtss_f32(_mm_movehdup_ps(d_dmin));
    int scale[8], minimum[8];
    for (int64_t j = 0; j < 8; ++j) k_scale_min(j, block + 4, scale[j], minimum[j]);
    const uint8_t* q = block + (Five ? 48 : 16);
    __m512i high = _mm512_setzero_si512();
    if (Five) high = both_halves(load32(block + 16));
    __m512i isum[R];
    for (int64_t r = 0; r < R; ++r) isum[r] = _mm512_setzero_si512();
    for (int64_t c = 0; c < 4; ++c) {
      __m512i w = _mm512_and_si512(_mm512_srlv_epi64(both_halves(load32(q + 32 * c)), nibble_shift),
                                   low_mask);
      if (Five) {
        const __m512i bit = join(_mm256_set1_epi8(static_cast<char>(1 << (2 * c))),
                                 _mm256_set1_epi8(static_cast<char>(1 << (2 * c + 1))));
        w = _mm512_mask_add_epi8(w, _mm512_test_epi8_mask(high, bit), w, _mm512_set1_epi8(0x10));
      }
      const __m512i sc = join(_mm256_set1_epi16(static_cast<short>(scale[2 * c])),
                              _mm256_set1_epi16(static_cast<short>(scale[2 * c + 1])));
      for (int64_t r = 0; r < R; ++r) {
        const __m512i a = _mm512_loadu_si512(x[r * blocks + b].q + 64 * c);
        isum[r] = _mm512_add_epi32(isum[r], _mm512_madd_epi16(_mm512_maddubs_epi16(w, a), sc));
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      const Act256& a = x[r * blocks + b];
      int min_dot = 0;
      for (int64_t j = 0; j < 8; ++j) min_dot += minimum[j] * (a.sums[2 * j] + a.sums[2 * j + 1]);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r]), _mm512_set1_ps(d * a.d), acc[r]);
      mins[r] -= dmin * a.d * static_cast<float>(min_dot);
    }
  }
  for (int64_t r = 0; r < R; ++r) result[r] = hsum(acc[r]) + mins[r];
}

// Q6_K: per half of 128 elements, 64 bytes of nibbles ql = [l0 | l1] and 32 bytes of 2-bit highs h.
// Elements 0..63 of the half are the low nibbles of [l0 | l1] with bits (h << 4, h << 2) & 0x30,
// elements 64..127 the high nibbles with bits (h, h >> 2) & 0x30. Values are q - 32 with a signed
// scale per 16 elements (8 lanes of 16-bit pair sums); the -32 goes through the activations' sums.
template <int R>
void tile_q6_k(const uint8_t* row, int64_t blocks, const Act256* x, float* result) {
  constexpr int64_t bytes = 210;
  __m512 acc[R];
  float offsets[R];
  for (int64_t r = 0; r < R; ++r) {
    acc[r] = _mm512_setzero_ps();
    offsets[r] = 0.0f;
  }
  const __m512i low_mask = _mm512_set1_epi8(0x0f);
  const __m512i high_mask = _mm512_set1_epi8(0x30);
  const __m512i first_shift = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2);   // left
  const __m512i second_shift = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);  // right
  // Lane l of a 64-element register's pair sums belongs to group l / 8 of its four.
  const __m512i group_of_lane =
      _mm512_cvtepu8_epi16(_mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = row + b * bytes;
    prefetch_ahead<bytes>(block);
    const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
    uint16_t half_d;
    std::memcpy(&half_d, block + 208, 2);
    const float d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(half_d)));
    const __m512i scales16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(load16(scales)));
    __m512i isum[R];
    for (int64_t r = 0; r < R; ++r) isum[r] = _mm512_setzero_si512();
    for (int64_t half = 0; half < 2; ++half) {
      const __m512i ql = _mm512_loadu_si512(block + 64 * half);
      const __m512i h = both_halves(load32(block + 128 + 32 * half));
      const __m512i first =
          _mm512_or_si512(_mm512_and_si512(ql, low_mask),
                          _mm512_and_si512(_mm512_sllv_epi64(h, first_shift), high_mask));
      const __m512i second =
          _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low_mask),
                          _mm512_and_si512(_mm512_srlv_epi64(h, second_shift), high_mask));
      const __m512i first_scale = _mm512_permutexvar_epi16(
          _mm512_add_epi16(group_of_lane, _mm512_set1_epi16(static_cast<short>(8 * half))),
          scales16);
      const __m512i second_scale = _mm512_permutexvar_epi16(
          _mm512_add_epi16(group_of_lane, _mm512_set1_epi16(static_cast<short>(8 * half + 4))),
          scales16);
      for (int64_t r = 0; r < R; ++r) {
        const int8_t* a = x[r * blocks + b].q + 128 * half;
        const __m512i p_first =
            _mm512_madd_epi16(_mm512_maddubs_epi16(first, _mm512_loadu_si512(a)), first_scale);
        const __m512i p_second = _mm512_madd_epi16(
            _mm512_maddubs_epi16(second, _mm512_loadu_si512(a + 64)), second_scale);
        isum[r] = _mm512_add_epi32(isum[r], _mm512_add_epi32(p_first, p_second));
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      const Act256& a = x[r * blocks + b];
      int offset = 0;
      for (int64_t g = 0; g < 16; ++g) offset += scales[g] * a.sums[g];
      const float da = d * a.d;
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r]), _mm512_set1_ps(da), acc[r]);
      offsets[r] -= 32.0f * da * static_cast<float>(offset);
    }
  }
  for (int64_t r = 0; r < R; ++r) result[r] = hsum(acc[r]) + offsets[r];
}

// Accumulator sets per row of the float kernels, over alternate groups of 16 floats: they hide
// the fma latency at one row. The same for every tile size, so that a row rounds alike in any
// batch.
constexpr int64_t kSets = 2;

// ---- F32 / F16 / BF16 weights against fp32 activations, 16 at a time; the last k % 16 through
// masked loads (the masked-off lanes are zero and add nothing). ----

template <Format F>
struct WFloat;

template <>
struct WFloat<kF32> {
  static constexpr int64_t element = 4;
  static __m512 load16(const uint8_t* p, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(p));
  }
};

template <>
struct WFloat<kF16> {
  static constexpr int64_t element = 2;
  static __m512 load16(const uint8_t* p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  }
};

template <>
struct WFloat<kBF16> {
  static constexpr int64_t element = 2;
  static __m512 load16(const uint8_t* p, __mmask16 m) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
};

template <Format F, int R>
void tile_float(const uint8_t* row, int64_t k, const float* x, float* result) {
  using W = WFloat<F>;
  constexpr __mmask16 all = 0xffff;
  __m512 acc[kSets][R];
  for (int64_t u = 0; u < kSets; ++u)
    for (int64_t r = 0; r < R; ++r) acc[u][r] = _mm512_setzero_ps();
  constexpr int64_t step = int64_t{16} * kSets;
  int64_t l = 0;
  for (; l + step <= k; l += step) {
    prefetch_ahead<step * W::element>(row + l * W::element);
    for (int64_t u = 0; u < kSets; ++u) {
      const __m512 wv = W::load16(row + (l + 16 * u) * W::element, all);
      for (int64_t r = 0; r < R; ++r)
        acc[u][r] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + r * k + l + 16 * u), acc[u][r]);
    }
  }
  for (; l < k; l += 16) {
    const __mmask16 m = k - l >= 16 ? all : static_cast<__mmask16>((1u << (k - l)) - 1u);
    const __m512 wv = W::load16(row + l * W::element, m);
    for (int64_t r = 0; r < R; ++r)
      acc[0][r] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + r * k + l), acc[0][r]);
  }
  for (int64_t r = 0; r < R; ++r) {
    __m512 total = acc[0][r];
    for (int64_t u = 1; u < kSets; ++u) total = _mm512_add_ps(total, acc[u][r]);
    result[r] = hsum(total);
  }
}

// ---- Q4_0 / Q4_1 with weight rows in the lanes: 16 weight rows at a time, lane l holding row
// l's four consecutive elements (gathered), so that one vpdpbusd serves 16 rows and a block's
// integer dot stays in its lane until its one scale product. Against the quad kernel's two
// conversions, permute and fma per row and pair of blocks, a block costs 8 vpdpbusd and three
// float ops for all 16 weight rows of one input row: the prefill (large batch) side is
// compute-bound, and these are about a third of the vector operations. The gathered weight block
// is decoded once for up to kLaneRows input rows. Q4_0's value d·(q - 8) is Q4_1's d·q + m with
// m = -8d (exact), so one kernel does both. Every output lane runs the same chain whatever its
// row range or batch: batch-invariant, as the other kernels. ----

constexpr int kLaneRows = 8;  // input rows per decoded block: 2 accumulators each (28 zmm in all)

// Where a tile's 16 weight rows come from, block by block: d (and Q4_1's m) of each lane's row
// as floats, and its 16 nibble bytes as four dwords (elements 4j..4j+3 and 16+4j..16+4j+3 in
// dword j's low and high nibbles).
struct LaneBlock {
  __m512 d, m;
  __m512i quants[4];
};

// Plain GGML rows, row_bytes apart, gathered. `ahead`: the next 16 rows, prefetched a block's
// share per block while these are computed (the gathers' sixteen interleaved streams defeat the
// hardware prefetcher); nullptr when another tile of input rows already did.
template <Format F>
struct GatheredRows {
  using L = Q4Block<F>;
  const uint8_t* rows;
  __m512i offsets;
  __mmask16 lanes;
  const uint8_t* ahead;

  LaneBlock load(int64_t b) const {
    const uint8_t* block = rows + b * L::bytes;
    if (ahead != nullptr)
      for (int64_t at = 0; at < 16 * L::bytes; at += 64)
        __builtin_prefetch(ahead + 16 * L::bytes * b + at, 0, 3);
    LaneBlock out;
    // [d | m] halves of each lane's block (Q4_0: d and two quant bytes).
    const __m512i dm =
        _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, offsets, block, 1);
    out.d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
    out.m = F == kQ4_1 ? _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)))
                       : _mm512_mul_ps(out.d, _mm512_set1_ps(-8.0f));
    for (int64_t j = 0; j < 4; ++j)
      out.quants[j] = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, offsets,
                                                  block + L::quants + 4 * j, 1);
    return out;
  }
};

// A group of the lane layout (quant_matmul.h): each block's 16 rows already in the lanes, so
// five plain loads replace the five gathers and the group is one sequential stream. `ahead`
// as above: the prefetch distance for the first tile, nullptr for the others.
template <Format F>
struct LaneGroup {
  using L = Q4Block<F>;
  const uint8_t* group;
  const uint8_t* ahead;

  LaneBlock load(int64_t b) const {
    const uint8_t* block = group + 16 * L::bytes * b;
    if (ahead != nullptr)
      for (int64_t at = 0; at < 16 * L::bytes; at += 64)
        __builtin_prefetch(ahead + 16 * L::bytes * b + at, 0, 3);
    LaneBlock out;
    out.d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block)));
    out.m = F == kQ4_1
                ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 32)))
                : _mm512_mul_ps(out.d, _mm512_set1_ps(-8.0f));
    const uint8_t* quants = block + lane_group_quants(F == kQ4_1);
    for (int64_t j = 0; j < 4; ++j) out.quants[j] = _mm512_loadu_si512(quants + 64 * j);
    return out;
  }
};

// A block's nibbles as vpdpbusd / tdpbssd operands: low[j] elements 4j..4j+3 of each lane's row,
// high[j] elements 16+4j..16+4j+3.
inline void split_nibbles(const LaneBlock& w, __m512i* low, __m512i* high) {
  const __m512i low_mask = _mm512_set1_epi8(0x0f);
  for (int64_t j = 0; j < 4; ++j) {
    low[j] = _mm512_and_si512(w.quants[j], low_mask);
    high[j] = _mm512_and_si512(_mm512_srli_epi32(w.quants[j], 4), low_mask);
  }
}

// The float steps of one block for one input row x, from its 16 lanes' integer dots: the one
// sequence both the VNNI and the AMX kernels run, so their bits agree.
inline __m512 add_block(__m512 acc, __m512i dot, const LaneBlock& w, const Act32Row& x, int64_t b) {
  const __m512 scale = _mm512_mul_ps(w.d, _mm512_set1_ps(x.scales[2 * b]));
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc);
  return _mm512_fmadd_ps(w.m, _mm512_set1_ps(x.scales[2 * b + 1]), acc);
}

// Stores the wanted lanes of R rows' accumulators in order from out + i * out_stride
// (compressed: a tile may start or end inside the wanted range).
template <int R>
inline void store_lanes(const __m512* acc, __mmask16 lanes, float* out, int64_t i,
                        int64_t out_stride) {
  const auto count = static_cast<unsigned>(__builtin_popcount(lanes));
  const auto first = static_cast<__mmask16>((1u << count) - 1u);
  for (int r = 0; r < R; ++r)
    _mm512_mask_storeu_ps(out + (i + r) * out_stride, first,
                          _mm512_maskz_compress_ps(lanes, acc[r]));
}

// The lanes of group g (rows 16g..16g+15) inside rows [begin, end); `low`: the first of them.
inline __mmask16 group_lanes(int64_t g, int64_t begin, int64_t end, int64_t& low) {
  int64_t high = 0;
  group_lane_range(g, begin, end, low, high);
  return static_cast<__mmask16>(((1u << high) - 1u) & ~((1u << low) - 1u));
}

// R input rows against one tile of 16 weight rows. `lanes`: the rows of the tile wanted, stored
// in order from `out`.
template <int R, class Source>
void lanes32_tile(const Source& source, int64_t blocks, const void* act, int64_t i, __mmask16 lanes,
                  float* out, int64_t out_stride) {
  Act32Row x[R];
  for (int r = 0; r < R; ++r) x[r] = act32_row(act, blocks, i + r);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const LaneBlock w = source.load(b);
    __m512i low[4], high[4];
    split_nibbles(w, low, high);
    for (int r = 0; r < R; ++r) {
      const auto* q = reinterpret_cast<const uint8_t*>(x[r].q + 32 * b);
      __m512i dot = _mm512_setzero_si512();
      for (int64_t j = 0; j < 4; ++j)
        dot = _mm512_dpbusd_epi32(dot, low[j],
                                  _mm512_set1_epi32(static_cast<int>(load_u32(q + 4 * j))));
      for (int64_t j = 0; j < 4; ++j)
        dot = _mm512_dpbusd_epi32(dot, high[j],
                                  _mm512_set1_epi32(static_cast<int>(load_u32(q + 16 + 4 * j))));
      acc[r] = add_block(acc[r], dot, w, x[r], b);
    }
  }
  store_lanes<R>(acc, lanes, out, i, out_stride);
}

// Every input row against one tile, kLaneRows rows per pass (then 4, then 1); the tile's
// prefetch runs with the first pass only.
template <class Source>
void lanes32_all_rows(Source source, int64_t blocks, const void* act, int64_t n, __mmask16 lanes,
                      float* out, int64_t out_stride) {
  int64_t i = 0;
  for (; i + kLaneRows <= n; i += kLaneRows, source.ahead = nullptr)
    lanes32_tile<kLaneRows>(source, blocks, act, i, lanes, out, out_stride);
  for (; i + 4 <= n; i += 4, source.ahead = nullptr)
    lanes32_tile<4>(source, blocks, act, i, lanes, out, out_stride);
  for (; i < n; ++i, source.ahead = nullptr)
    lanes32_tile<1>(source, blocks, act, i, lanes, out, out_stride);
}

template <Format F>
void rows32_lanes(const uint8_t* w, int64_t k, const void* act, int64_t n, int64_t row_begin,
                  int64_t row_end, float* out, int64_t out_stride) {
  const int64_t blocks = k / 32, row_bytes = blocks * Q4Block<F>::bytes;
  const __m512i offsets =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(row_bytes)));
  for (int64_t j = row_begin; j < row_end; j += 16) {
    const int64_t count = row_end - j < 16 ? row_end - j : 16;
    const auto lanes = static_cast<__mmask16>((1u << count) - 1u);
    const uint8_t* rows = w + j * row_bytes;
    lanes32_all_rows(GatheredRows<F>{rows, offsets, lanes, rows + 16 * row_bytes}, blocks, act, n,
                     lanes, out + j, out_stride);
  }
}

// The lane layout's groups over rows [first + row_begin, first + row_end) of `base`; output
// column j is row first + j.
template <Format F>
void lane_groups(const uint8_t* base, int64_t first, int64_t k, const void* act, int64_t n,
                 int64_t row_begin, int64_t row_end, float* out, int64_t out_stride) {
  const int64_t blocks = k / 32, group_bytes = 16 * blocks * Q4Block<F>::bytes;
  const int64_t begin = first + row_begin, end = first + row_end;
  for (int64_t g = begin / 16; g * 16 < end; ++g) {
    int64_t low = 0;
    const __mmask16 lanes = group_lanes(g, begin, end, low);
    const uint8_t* group = base + g * group_bytes;
    // A group (at most 16 KiB) ahead in the stream: the hardware prefetcher alone reads 1.2x
    // slower at batch 1 (bench_quant_matmul, lanes:1; 2 KiB ahead is within noise of this).
    const int64_t distance = group_bytes < 16384 ? group_bytes : 16384;
    lanes32_all_rows(LaneGroup<F>{group, group + distance}, blocks, act, n, lanes,
                     out + (16 * g + low - first), out_stride);
  }
}

// ---- AMX-INT8: the lane layout's groups against 16 input rows per tile multiply. Tile C (16
// input rows x 16 weight rows, int32) += A (16 input rows x one block's 32 activation quants, read
// in place) . B (the block's weight nibbles as 8 rows of 16 weights x 4 elements: exactly the
// lane kernel's low[0..3] and high[0..3] registers). tdpbssd (signed x signed: the nibbles 0..15
// fit) gives the same integer dots as the lane kernel's vpdpbusd, row i of C the lane kernel's
// `dot` for input row i, and the same float steps follow: the same bits, 4x fewer vector
// operations per block. ----

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};  // bytes per row of each tile
  uint8_t rows[16] = {};
};

// Two blocks in flight: tiles 0, 1, 2 (C, A, B) for the first and 3, 4, 5 for the second, so
// that one block's multiply overlaps the other's store and float steps. (GCC's _tile_* macros
// paste the tile number into the instruction: the calls spell them out.)
__attribute__((target("amx-tile,amx-int8"))) inline void load_tile_config() {
  TileConfig config;
  for (int pair = 0; pair < 2; ++pair) {
    const int c = 3 * pair;
    config.colsb[c] = 64;  // C: 16 x 16 int32
    config.rows[c] = 16;
    config.colsb[c + 1] = 32;  // A: 16 input rows x one block of quants
    config.rows[c + 1] = 16;
    config.colsb[c + 2] = 64;  // B: 8 rows of 16 weights x 4 elements
    config.rows[c + 2] = 8;
  }
  _tile_loadconfig(&config);
}

constexpr int64_t kWeightTileBytes = int64_t{8} * 64;
// Blocks per row the AMX kernel takes (its B tiles for one group, 256 KiB, are on the stack);
// longer rows go through the AVX-512 kernel (the same bits).
constexpr int64_t kAmxMaxBlocks = 512;

// The block's weight nibbles as tile B: low[0..3], then high[0..3].
inline void store_weight_tile(const LaneBlock& w, uint8_t* tile) {
  __m512i low[4], high[4];
  split_nibbles(w, low, high);
  for (int64_t j = 0; j < 4; ++j) {
    _mm512_store_si512(tile + 64 * j, low[j]);
    _mm512_store_si512(tile + 64 * (4 + j), high[j]);
  }
}

// The lane kernel's float steps for one block, from its 16 x 16 integer dots.
inline void scale_block(const LaneBlock& w, const int32_t* dots, const Act32Row* x, int64_t b,
                        __m512* acc) {
  for (int64_t r = 0; r < 16; ++r)
    acc[r] = add_block(acc[r], _mm512_load_si512(dots + 16 * r), w, x[r], b);
}

// 16 input rows from i against one group, whose B tiles (`tiles`, kWeightTileBytes a block)
// were written beforehand: a tile load right after the vector stores that wrote it waits for them.
template <Format F>
__attribute__((target("amx-tile,amx-int8"))) void amx_group_tile(const LaneGroup<F>& source,
                                                                 const uint8_t* tiles,
                                                                 int64_t blocks, const void* act,
                                                                 int64_t i, __mmask16 lanes,
                                                                 float* out, int64_t out_stride) {
  Act32Row x[16];
  for (int r = 0; r < 16; ++r) x[r] = act32_row(act, blocks, i + r);
  const int64_t act_stride = blocks * kAct32BlockBytes;
  __m512 acc[16];
  for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
  alignas(64) int32_t dots[2][16 * 16];
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    const LaneBlock w0 = source.load(b), w1 = source.load(b + 1);
    _tile_zero(0);
    _tile_zero(3);
    _tile_loadd(1, x[0].q + 32 * b, act_stride);
    _tile_loadd(2, tiles + kWeightTileBytes * b, 64);
    _tile_loadd(4, x[0].q + 32 * (b + 1), act_stride);
    _tile_loadd(5, tiles + kWeightTileBytes * (b + 1), 64);
    _tile_dpbssd(0, 1, 2);
    _tile_dpbssd(3, 4, 5);
    _tile_stored(0, dots[0], 64);
    _tile_stored(3, dots[1], 64);
    scale_block(w0, dots[0], x, b, acc);
    scale_block(w1, dots[1], x, b + 1, acc);
  }
  if (b < blocks) {
    const LaneBlock w = source.load(b);
    _tile_zero(0);
    _tile_loadd(1, x[0].q + 32 * b, act_stride);
    _tile_loadd(2, tiles + kWeightTileBytes * b, 64);
    _tile_dpbssd(0, 1, 2);
    _tile_stored(0, dots[0], 64);
    scale_block(w, dots[0], x, b, acc);
  }
  store_lanes<16>(acc, lanes, out, i, out_stride);
}

// lane_groups for n a multiple of 16.
template <Format F>
__attribute__((target("amx-tile,amx-int8"))) void lane_groups_amx(
    const uint8_t* base, int64_t first, int64_t k, const void* act, int64_t n, int64_t row_begin,
    int64_t row_end, float* out, int64_t out_stride) {
  const int64_t blocks = k / 32, group_bytes = 16 * blocks * Q4Block<F>::bytes;
  const int64_t begin = first + row_begin, end = first + row_end;
  if (blocks > kAmxMaxBlocks) {
    lane_groups<F>(base, first, k, act, n, row_begin, row_end, out, out_stride);
    return;
  }
  alignas(64) uint8_t tiles[kAmxMaxBlocks * kWeightTileBytes];
  load_tile_config();
  for (int64_t g = begin / 16; g * 16 < end; ++g) {
    int64_t low = 0;
    const __mmask16 lanes = group_lanes(g, begin, end, low);
    const LaneGroup<F> source{base + g * group_bytes, nullptr};
    for (int64_t b = 0; b < blocks; ++b)
      store_weight_tile(source.load(b), tiles + kWeightTileBytes * b);
    for (int64_t i = 0; i + 16 <= n; i += 16)
      amx_group_tile(source, tiles, blocks, act, i, lanes, out + (16 * g + low - first),
                     out_stride);
  }
  _tile_release();
}

// ---- Activations: quantize_row32 (quant_matmul.cpp) 32 values at a time, the same operations
// in the same order per value: |x| maxima (exact in any order; a NaN is skipped as std::max skips
// it), the scalar d = amax / 127 and 127 / amax, x * inverse rounded to nearest-even and clamped
// to +-127, the integer sum (the scalar code took ~4% of a prefill). ----

void quantize_row32_avx512(const float* x, int64_t k, uint8_t* out) {
  const int64_t blocks = k / 32;
  auto* scales = reinterpret_cast<float*>(out);
  auto* q = reinterpret_cast<int8_t*>(out + 8 * blocks);
  const __m512 limit = _mm512_set1_ps(127.0f), negative_limit = _mm512_set1_ps(-127.0f);
  for (int64_t b = 0; b < blocks; ++b, x += 32, q += 32) {
    const __m512 a = _mm512_loadu_ps(x), c = _mm512_loadu_ps(x + 16);
    // max_ps returns its second operand when either is NaN: the running maximum survives.
    const __m512 amax16 =
        _mm512_max_ps(_mm512_abs_ps(c), _mm512_max_ps(_mm512_abs_ps(a), _mm512_setzero_ps()));
    const float amax = _mm512_reduce_max_ps(amax16);
    const float d = amax / 127.0f;
    const float inverse = d > 0.0f ? 127.0f / amax : 0.0f;
    const __m512 scale = _mm512_set1_ps(inverse);
    const auto quantize = [&](__m512 v) {
      const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(v, scale),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r, negative_limit), limit));
    };
    const __m512i low = quantize(a), high = quantize(c);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(low));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(high));
    const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(low, high));
    scales[2 * b] = d;
    scales[2 * b + 1] = d * static_cast<float>(sum);
  }
}

// ---- Drivers (quant_tiles.h). ----

template <Format F>
void rows32(const uint8_t* w, int64_t k, const void* act, int64_t n, int64_t row_begin,
            int64_t row_end, float* out, int64_t out_stride) {
  const int64_t blocks = k / 32;
  // Tiles of 8 rows: a decoded quad of weight blocks serves twice the rows (32 zmm registers).
  over_rows<8>(w, blocks * W32<F>::bytes, n, row_begin, row_end, out, out_stride,
               [&]<int R>(const uint8_t* row, int64_t i, float* result) {
                 Act32Row x[R];
                 for (int64_t r = 0; r < R; ++r) x[r] = act32_row(act, blocks, i + r);
                 tile32<F, R>(row, blocks, x, result);
               });
}

template <Format F>
void rows256(const uint8_t* w, int64_t k, const void* act, int64_t n, int64_t row_begin,
             int64_t row_end, float* out, int64_t out_stride) {
  const auto* x = static_cast<const Act256*>(act);
  const int64_t blocks = k / 256;
  constexpr int64_t bytes = k_quant_block_bytes(F);
  over_rows(w, blocks * bytes, n, row_begin, row_end, out, out_stride,
            [&]<int R>(const uint8_t* row, int64_t i, float* result) {
              if constexpr (F == kQ6_K)
                tile_q6_k<R>(row, blocks, x + i * blocks, result);
              else
                tile_k4_k5<F == kQ5_K, R>(row, blocks, x + i * blocks, result);
            });
}

template <Format F>
void rows_float(const uint8_t* w, int64_t k, const void* act, int64_t n, int64_t row_begin,
                int64_t row_end, float* out, int64_t out_stride) {
  const auto* x = static_cast<const float*>(act);
  over_rows(w, k * WFloat<F>::element, n, row_begin, row_end, out, out_stride,
            [&]<int R>(const uint8_t* row, int64_t i, float* result) {
              tile_float<F, R>(row, k, x + i * k, result);
            });
}

}  // namespace

const Row32Quantizer kAvx512QuantizeRow32 = quantize_row32_avx512;

const LaneGroupsKernel kAvx512LaneGroups[2] = {lane_groups<kQ4_0>, lane_groups<kQ4_1>};
const LaneGroupsKernel kAmxLaneGroups[2] = {lane_groups_amx<kQ4_0>, lane_groups_amx<kQ4_1>};

const RowsKernel kAvx512Kernels[kFormats] = {
    rows_float<kF32>,    rows_float<kF16>, rows_float<kBF16>, rows32_lanes<kQ4_0>,
    rows32_lanes<kQ4_1>, rows32<kQ5_0>,    rows32<kQ5_1>,     rows32<kQ8_0>,
    rows256<kQ4_K>,      rows256<kQ5_K>,   rows256<kQ6_K>};

}  // namespace hogwild::cpu::quant

#pragma GCC diagnostic pop

// AVX2+FMA+F16C kernels of quant_matmul.h, compiled with -mavx2 -mfma -mf16c and called only
// when the CPU has them (quant_matmul.cpp checks). No standard library headers beyond <cstdint>
// and <cstring>: see quant_kernels.h. Everything here has internal linkage except the table.
//
// A weight block is decoded once into 32 bytes of small integers and multiplied with the 8-bit
// activations of up to four input rows held in registers: maddubs (unsigned x signed bytes) makes
// 16-bit pair sums, madd widens them to 32 bits (times a sub-block scale for the K-quants), and one
// fma per block applies the product of the weight and activation scales.
//
// Batch invariance: a row's result is the same bits whatever the row count n and wherever the row
// falls in the tiles of 4, 2 and 1. Each row has its own accumulators, and every tile size runs the
// same sequence of operations on them (the same number of accumulator sets, kSets, over the same
// blocks, summed in the same order), so tiling only decides which rows share a decoded weight
// block. The CPU backend relies on this to run a whole batch in one call (design §7).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/quant_kernels.h"
#include "kernels/cpu/quant_tiles.h"

namespace hogwild::cpu::quant {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float load_half(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return _cvtsh_ss(v);
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Sum of products of unsigned weight bytes and signed activation bytes, as 8 int32 lanes.
inline __m256i dot_unsigned(__m256i w, __m256i a) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1));
}

// The same for signed weights: |w| times a with w's sign (|a| <= 127, so no overflow).
inline __m256i dot_signed(__m256i w, __m256i a) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w)),
                           _mm256_set1_epi16(1));
}

// Low nibbles of 16 bytes in bytes 0..15, high nibbles in 16..31 (the Q4/Q5 element order).
inline __m256i nibbles(const uint8_t* p) {
  const __m256i both =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i shifted = _mm256_srlv_epi32(both, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
  return _mm256_and_si256(shifted, _mm256_set1_epi8(0x0f));
}

// Bit i of the 32-bit word at p as 0x10 in byte i (Q5's fifth bits).
inline __m256i fifth_bits(const uint8_t* p) {
  uint32_t word;
  std::memcpy(&word, p, 4);
  // Byte i takes byte i/8 of the word (set1 puts the word in every 4 bytes of both lanes) ...
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(word)),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                           2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  // ... and keeps bit i % 8 of it.
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// ---- 32-element formats (Q4_0 / Q4_1 have the lane kernels below). Q5_1: value = d * q + m with
// q unsigned; Q5_0 / Q8_0: value = d * q with q signed (Q5_0's offset subtracted from the
// bytes). ----

// The block's half-precision scale (and minimum, when it follows) as floats in lanes 0 (and 1);
// the other lanes are 0.
inline __m128 scale_pair(const uint8_t* b) {
  uint32_t halves;
  std::memcpy(&halves, b, 4);
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(halves)));
}

inline __m128 scale_only(const uint8_t* b) {
  uint16_t half;
  std::memcpy(&half, b, 2);
  return _mm_cvtph_ps(_mm_cvtsi32_si128(half));
}

template <Format F>
struct W32;

template <>
struct W32<kQ5_0> {
  static constexpr int64_t bytes = 22;
  static constexpr bool has_min = false;
  static __m256i quants(const uint8_t* b) {
    return _mm256_sub_epi8(_mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)),
                           _mm256_set1_epi8(16));
  }
  static __m128 scales(const uint8_t* b) { return scale_only(b); }
};

template <>
struct W32<kQ5_1> {
  static constexpr int64_t bytes = 24;
  static constexpr bool has_min = true;
  static __m256i quants(const uint8_t* b) {
    return _mm256_or_si256(nibbles(b + 8), fifth_bits(b + 4));
  }
  static __m128 scales(const uint8_t* b) { return scale_pair(b); }
};

template <>
struct W32<kQ8_0> {
  static constexpr int64_t bytes = 34;
  static constexpr bool has_min = false;
  static __m256i quants(const uint8_t* b) { return load32(b + 2); }
  static __m128 scales(const uint8_t* b) { return scale_only(b); }
};

// One block of R input rows: [d, m] * [a.d, a.sum] gives in one multiply the scale of the integer
// dot product (lane 0) and the minimum's term (lane 1, summed in `mins`).
template <Format F, int R>
inline void block32(const uint8_t* block, const Act32Row* x, int64_t b, __m256* acc, __m128* mins) {
  using W = W32<F>;
  const __m256i wq = W::quants(block);
  const __m128 ws = W::scales(block);
  for (int64_t r = 0; r < R; ++r) {
    const __m256i aq = load32(x[r].q + 32 * b);
    const __m256i p = W::has_min ? dot_unsigned(wq, aq) : dot_signed(wq, aq);
    const __m128 as =
        _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(x[r].scales + 2 * b)));
    const __m128 product = _mm_mul_ps(ws, as);
    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_broadcastss_ps(product), acc[r]);
    if (W::has_min) mins[r] = _mm_add_ps(mins[r], product);
  }
}

// Accumulator sets per row over alternate blocks (or groups of 8 floats): they hide the fma
// latency at one row. The same for every tile size, so that a row rounds alike in any batch.
constexpr int64_t kSets = 2;

// R input rows (x) against one weight row. The minimum's terms are one sum per row in block order.
template <Format F, int R>
void tile32(const uint8_t* row, int64_t blocks, const Act32Row* x, float* result) {
  using W = W32<F>;
  __m256 acc[kSets][R];
  __m128 mins[R];
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t u = 0; u < kSets; ++u) acc[u][r] = _mm256_setzero_ps();
    mins[r] = _mm_setzero_ps();
  }
  int64_t b = 0;
  for (; b + kSets <= blocks; b += kSets) {
    prefetch_ahead<kSets * W::bytes>(row + b * W::bytes);
    for (int64_t u = 0; u < kSets; ++u)
      block32<F, R>(row + (b + u) * W::bytes, x, b + u, acc[u], mins);
  }
  for (; b < blocks; ++b) block32<F, R>(row + b * W::bytes, x, b, acc[0], mins);
  for (int64_t r = 0; r < R; ++r) {
    __m256 total = acc[0][r];
    for (int64_t u = 1; u < kSets; ++u) total = _mm256_add_ps(total, acc[u][r]);
    result[r] = hsum(total) + (W::has_min ? _mm_cvtss_f32(_mm_movehdup_ps(mins[r])) : 0.0f);
  }
}

// ---- Q4_0 / Q4_1 with weight rows in the lanes: the AVX-512 lane kernel's arithmetic
// (quant_matmul_avx512.cpp) on two halves of 8 lanes. A block of a 16-row group is read in the
// lane layout (quant_kernels.h): lane l of nibble dword j holds row l's elements 4j..4j+3 (low
// nibbles) and 16+4j..16+4j+3 (high), so a maddubs against the activation dword broadcast to
// every lane serves 8 weight rows, where the row kernel decodes, multiplies and reduces each row
// on its own (a Zen 3 core: 4.2 cycles per row and block at batch 1, the matmul compute-bound
// below the memory's rate). AVX2 has no vpdpbusd: maddubs makes the pair sums, 8 of them are added
// as int16 (|sum| <= 8 * 2 * 15 * 127 = 30480, no saturation) and one madd widens them, the same
// integer dot; the float steps are add_block's, so a row gets the AVX-512 kernel's bits. Plain
// rows are transposed into that layout a block at a time. ----

// One block of a 16-row tile as the kernel reads it: the rows' d and m as floats, lanes 0..7 and
// 8..15, and their nibble dwords in the lane layout at `quants` (dword j of lane l at 64 j + 4 l).
struct LaneBlock {
  __m256 d[2], m[2];
  const uint8_t* quants;
};

// Q4_0's value d (q - 8) is d q + m with m = -8 d (exact), so one kernel does both formats.
template <Format F>
inline __m256 minimum(__m256 d, const uint8_t* m) {
  if constexpr (Q4Block<F>::has_min)
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(m)));
  else
    return _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
}

// A group of the lane layout: block b of its 16 rows is one contiguous run. `ahead`: where to
// prefetch this block's share of the stream (the first tile of input rows only; nullptr after).
template <Format F>
struct LaneGroupSource {
  static constexpr int64_t kBlockBytes = 16 * Q4Block<F>::bytes;
  const uint8_t* group;
  const uint8_t* ahead;

  LaneBlock block(int64_t b, uint8_t* /*scratch*/) const {
    if (ahead != nullptr)
      for (int64_t at = 0; at < kBlockBytes; at += 64)
        __builtin_prefetch(ahead + kBlockBytes * b + at, 0, 3);
    const uint8_t* at = group + kBlockBytes * b;
    LaneBlock out;
    for (int64_t h = 0; h < 2; ++h) {
      out.d[h] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 16 * h)));
      out.m[h] = minimum<F>(out.d[h], at + 32 + 16 * h);
    }
    out.quants = at + lane_group_quants(Q4Block<F>::has_min);
    return out;
  }
};

// Up to 16 plain GGML rows, row_bytes apart, whose block b is transposed into `scratch` (its
// nibble dwords; the scales go straight to registers: a 16-byte load of eight 2-byte stores
// would wait for them) in the lane layout; lanes from `count` on read a zero block. `ahead`: the
// next 16 rows, prefetched a block's share per block (nullptr once another tile of input rows
// did).
template <Format F>
struct PlainRowsSource {
  using L = Q4Block<F>;
  const uint8_t* rows;
  int64_t row_bytes;
  int64_t count;
  const uint8_t* ahead;

  LaneBlock block(int64_t b, uint8_t* scratch) const {
    static constexpr uint8_t kZeroBlock[L::bytes] = {};
    if (ahead != nullptr)
      for (int64_t at = 0; at < 16 * L::bytes; at += 64)
        __builtin_prefetch(ahead + 16 * L::bytes * b + at, 0, 3);
    const uint8_t* src[16];
    for (int64_t l = 0; l < 16; ++l)
      src[l] = l < count ? rows + l * row_bytes + b * L::bytes : kZeroBlock;
    LaneBlock out;
    for (int64_t h = 0; h < 2; ++h) {
      const uint8_t* const* r = src + 8 * h;
      // [d | m] of each row (Q4_0: d and two nibble bytes) in its 32-bit lane, then the d and
      // the m halves packed into 8 halves each for the conversion.
      const __m256i dm =
          _mm256_setr_epi32(static_cast<int>(load_u32(r[0])), static_cast<int>(load_u32(r[1])),
                            static_cast<int>(load_u32(r[2])), static_cast<int>(load_u32(r[3])),
                            static_cast<int>(load_u32(r[4])), static_cast<int>(load_u32(r[5])),
                            static_cast<int>(load_u32(r[6])), static_cast<int>(load_u32(r[7])));
      const __m256i packed = _mm256_permute4x64_epi64(
          _mm256_packus_epi32(_mm256_and_si256(dm, _mm256_set1_epi32(0xffff)),
                              _mm256_srli_epi32(dm, 16)),
          0xd8);  // [d of rows 0..7 | m of rows 0..7]
      out.d[h] = _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
      out.m[h] = L::has_min ? _mm256_cvtph_ps(_mm256_extracti128_si256(packed, 1))
                            : _mm256_mul_ps(out.d[h], _mm256_set1_ps(-8.0f));
      // Rows 8h..8h+7 as four dwords each: a 4x4 dword transpose in each 128-bit half.
      __m256i t[4];
      for (int64_t i = 0; i < 4; ++i)
        t[i] = _mm256_set_m128i(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(r[i + 4] + L::quants)),
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(r[i] + L::quants)));
      const __m256i u0 = _mm256_unpacklo_epi32(t[0], t[1]), u1 = _mm256_unpackhi_epi32(t[0], t[1]);
      const __m256i u2 = _mm256_unpacklo_epi32(t[2], t[3]), u3 = _mm256_unpackhi_epi32(t[2], t[3]);
      const __m256i dwords[4] = {_mm256_unpacklo_epi64(u0, u2), _mm256_unpackhi_epi64(u0, u2),
                                 _mm256_unpacklo_epi64(u1, u3), _mm256_unpackhi_epi64(u1, u3)};
      for (int64_t j = 0; j < 4; ++j)
        _mm256_store_si256(reinterpret_cast<__m256i*>(scratch + 64 * j + 32 * h), dwords[j]);
    }
    out.quants = scratch;
    return out;
  }
};

// The AVX-512 kernel's float steps for one block of one input row (its add_block, on 8 lanes).
inline __m256 add_block(__m256 acc, __m256i dot, __m256 d, __m256 m, const Act32Row& x, int64_t b) {
  const __m256 scale = _mm256_mul_ps(d, _mm256_set1_ps(x.scales[2 * b]));
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc);
  return _mm256_fmadd_ps(m, _mm256_set1_ps(x.scales[2 * b + 1]), acc);
}

// R input rows from i against one tile of 16 weight rows; lanes [low, high) are stored in order
// from `out`.
template <int R, class Source>
void lane_tile(const Source& source, int64_t blocks, const void* act, int64_t i, int64_t low,
               int64_t high, float* out, int64_t out_stride) {
  Act32Row x[R];
  for (int r = 0; r < R; ++r) x[r] = act32_row(act, blocks, i + r);
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  alignas(32) uint8_t scratch[4 * 64];
  const __m256i low_mask = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < blocks; ++b) {
    const LaneBlock w = source.block(b, scratch);
    __m256i pairs[R][2];
    for (int r = 0; r < R; ++r) pairs[r][0] = pairs[r][1] = _mm256_setzero_si256();
    for (int64_t j = 0; j < 4; ++j) {
      // Each activation dword broadcast once, for both halves.
      __m256i a_lo[R], a_hi[R];
      for (int r = 0; r < R; ++r) {
        const auto* a = reinterpret_cast<const uint8_t*>(x[r].q + 32 * b);
        a_lo[r] = _mm256_set1_epi32(static_cast<int>(load_u32(a + 4 * j)));
        a_hi[r] = _mm256_set1_epi32(static_cast<int>(load_u32(a + 16 + 4 * j)));
      }
      for (int64_t h = 0; h < 2; ++h) {
        const __m256i q = load32(w.quants + 64 * j + 32 * h);
        const __m256i lo = _mm256_and_si256(q, low_mask);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low_mask);
        for (int r = 0; r < R; ++r) {
          pairs[r][h] = _mm256_add_epi16(pairs[r][h], _mm256_maddubs_epi16(lo, a_lo[r]));
          pairs[r][h] = _mm256_add_epi16(pairs[r][h], _mm256_maddubs_epi16(hi, a_hi[r]));
        }
      }
    }
    for (int64_t h = 0; h < 2; ++h)
      for (int r = 0; r < R; ++r)
        acc[r][h] =
            add_block(acc[r][h], _mm256_madd_epi16(pairs[r][h], ones), w.d[h], w.m[h], x[r], b);
  }
  for (int r = 0; r < R; ++r) {
    alignas(32) float lanes[16];
    _mm256_store_ps(lanes, acc[r][0]);
    _mm256_store_ps(lanes + 8, acc[r][1]);
    for (int64_t l = low; l < high; ++l) out[(i + r) * out_stride + (l - low)] = lanes[l];
  }
}

// Every input row against one tile, two rows per pass (they share the decoded nibbles), then one.
template <class Source>
void lane_all_rows(Source source, int64_t blocks, const void* act, int64_t n, int64_t low,
                   int64_t high, float* out, int64_t out_stride) {
  int64_t i = 0;
  for (; i + 2 <= n; i += 2, source.ahead = nullptr)
    lane_tile<2>(source, blocks, act, i, low, high, out, out_stride);
  for (; i < n; ++i, source.ahead = nullptr)
    lane_tile<1>(source, blocks, act, i, low, high, out, out_stride);
}

template <Format F>
void rows32_lanes(const uint8_t* w, int64_t k, const void* act, int64_t n, int64_t row_begin,
                  int64_t row_end, float* out, int64_t out_stride) {
  const int64_t blocks = k / 32, row_bytes = blocks * Q4Block<F>::bytes;
  for (int64_t j = row_begin; j < row_end; j += 16) {
    const int64_t count = row_end - j < 16 ? row_end - j : 16;
    const uint8_t* rows = w + j * row_bytes;
    lane_all_rows(PlainRowsSource<F>{rows, row_bytes, count, rows + 16 * row_bytes}, blocks, act, n,
                  0, count, out + j, out_stride);
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
    int64_t low = 0, high = 0;
    group_lane_range(g, begin, end, low, high);
    const uint8_t* group = base + g * group_bytes;
    // A group (at most 16 KiB) ahead in the stream, as the AVX-512 kernel.
    const int64_t distance = group_bytes < 16384 ? group_bytes : 16384;
    lane_all_rows(LaneGroupSource<F>{group, group + distance}, blocks, act, n, low, high,
                  out + (16 * g + low - first), out_stride);
  }
}

// ---- K-quants: 256-element super-blocks. ----

// Q4_K / Q5_K: four chunks of 32 bytes of nibbles; chunk c's low nibbles are sub-block 2c
// (elements 64c..64c+31), its high nibbles sub-block 2c+1. Q5_K's fifth bits: bits 2c and 2c+1 of
// the 32 bytes after the scales.
template <bool Five, int R>
void tile_k4_k5(const uint8_t* row, int64_t blocks, const Act256* x, float* result) {
  constexpr int64_t bytes = Five ? 176 : 144;
  __m256 acc[R];
  float mins[R];
  for (int64_t r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    mins[r] = 0.0f;
  }
  const __m256i low_mask = _mm256_set1_epi8(0x0f);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = row + b * bytes;
    prefetch_ahead<bytes>(block);
    const float d = load_half(block);
    const float dmin = load_half(block + 2);
    int scale[8], minimum[8];
    for (int64_t j = 0; j < 8; ++j) k_scale_min(j, block + 4, scale[j], minimum[j]);
    const uint8_t* q = block + (Five ? 48 : 16);
    __m256i high = _mm256_setzero_si256();
    if (Five) high = load32(block + 16);
    __m256i isum[R];
    for (int64_t r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
    for (int64_t c = 0; c < 4; ++c) {
      const __m256i raw = load32(q + 32 * c);
      __m256i lo = _mm256_and_si256(raw, low_mask);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low_mask);
      if (Five) {
        const __m256i bit_lo = _mm256_set1_epi8(static_cast<char>(1 << (2 * c)));
        const __m256i bit_hi = _mm256_set1_epi8(static_cast<char>(1 << (2 * c + 1)));
        const __m256i sixteen = _mm256_set1_epi8(0x10);
        lo = _mm256_or_si256(
            lo,
            _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(high, bit_lo), bit_lo), sixteen));
        hi = _mm256_or_si256(
            hi,
            _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(high, bit_hi), bit_hi), sixteen));
      }
      const __m256i scale_lo = _mm256_set1_epi16(static_cast<short>(scale[2 * c]));
      const __m256i scale_hi = _mm256_set1_epi16(static_cast<short>(scale[2 * c + 1]));
      for (int64_t r = 0; r < R; ++r) {
        const int8_t* a = x[r * blocks + b].q + 64 * c;
        const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(a)), scale_lo);
        const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(a + 32)), scale_hi);
        isum[r] = _mm256_add_epi32(isum[r], _mm256_add_epi32(p_lo, p_hi));
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      const Act256& a = x[r * blocks + b];
      int min_dot = 0;
      for (int64_t j = 0; j < 8; ++j) min_dot += minimum[j] * (a.sums[2 * j] + a.sums[2 * j + 1]);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_set1_ps(d * a.d), acc[r]);
      mins[r] -= dmin * a.d * static_cast<float>(min_dot);
    }
  }
  for (int64_t r = 0; r < R; ++r) result[r] = hsum(acc[r]) + mins[r];
}

// Q6_K: per half of 128 elements, 64 bytes of nibbles (ql), 32 bytes of 2-bit highs (qh); the
// piece t (elements 32t..32t+31 of the half) takes the low (t < 2) or high nibbles of ql bytes
// 0..31 (t even) or 32..63 (t odd) and bits 2t..2t+1 of qh. Values are q - 32, with a signed scale
// per 16 elements; the -32 is applied through the activations' sums.
template <int R>
void tile_q6_k(const uint8_t* row, int64_t blocks, const Act256* x, float* result) {
  constexpr int64_t bytes = 210;
  __m256 acc[R];
  float offsets[R];
  for (int64_t r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    offsets[r] = 0.0f;
  }
  const __m256i low_mask = _mm256_set1_epi8(0x0f);
  const __m256i high_mask = _mm256_set1_epi8(0x30);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = row + b * bytes;
    prefetch_ahead<bytes>(block);
    const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
    const float d = load_half(block + 208);
    __m256i isum[R];
    for (int64_t r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
    for (int64_t half = 0; half < 2; ++half) {
      const __m256i l0 = load32(block + 64 * half);
      const __m256i l1 = load32(block + 64 * half + 32);
      const __m256i h = load32(block + 128 + 32 * half);
      const __m256i pieces[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, low_mask),
                          _mm256_and_si256(_mm256_slli_epi16(h, 4), high_mask)),
          _mm256_or_si256(_mm256_and_si256(l1, low_mask),
                          _mm256_and_si256(_mm256_slli_epi16(h, 2), high_mask)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low_mask),
                          _mm256_and_si256(h, high_mask)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low_mask),
                          _mm256_and_si256(_mm256_srli_epi16(h, 2), high_mask))};
      for (int64_t t = 0; t < 4; ++t) {
        const int g = 8 * half + 2 * t;  // scale of the piece's first 16 elements
        const __m256i scale =
            _mm256_set_m128i(_mm_set1_epi16(scales[g + 1]), _mm_set1_epi16(scales[g]));
        for (int64_t r = 0; r < R; ++r) {
          const int8_t* a = x[r * blocks + b].q + 128 * half + 32 * t;
          isum[r] = _mm256_add_epi32(
              isum[r], _mm256_madd_epi16(_mm256_maddubs_epi16(pieces[t], load32(a)), scale));
        }
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      const Act256& a = x[r * blocks + b];
      int offset = 0;
      for (int64_t g = 0; g < 16; ++g) offset += scales[g] * a.sums[g];
      const float da = d * a.d;
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_set1_ps(da), acc[r]);
      offsets[r] -= 32.0f * da * static_cast<float>(offset);
    }
  }
  for (int64_t r = 0; r < R; ++r) result[r] = hsum(acc[r]) + offsets[r];
}

// ---- F32 / F16 / BF16 weights against fp32 activations. ----

template <Format F>
struct WFloat;

template <>
struct WFloat<kF32> {
  static constexpr int64_t element = 4;
  static __m256 load8(const uint8_t* p) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  }
  static float load1(const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
};

template <>
struct WFloat<kF16> {
  static constexpr int64_t element = 2;
  static __m256 load8(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float load1(const uint8_t* p) { return load_half(p); }
};

template <>
struct WFloat<kBF16> {
  static constexpr int64_t element = 2;
  static __m256 load8(const uint8_t* p) {
    const __m256i wide =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float load1(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    const uint32_t bits = static_cast<uint32_t>(v) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
};

template <Format F, int R>
void tile_float(const uint8_t* row, int64_t k, const float* x, float* result) {
  using W = WFloat<F>;
  __m256 acc[kSets][R];
  for (int64_t u = 0; u < kSets; ++u)
    for (int64_t r = 0; r < R; ++r) acc[u][r] = _mm256_setzero_ps();
  constexpr int64_t step = int64_t{8} * kSets;
  int64_t l = 0;
  for (; l + step <= k; l += step) {
    prefetch_ahead<step * W::element>(row + l * W::element);
    for (int64_t u = 0; u < kSets; ++u) {
      const __m256 wv = W::load8(row + (l + 8 * u) * W::element);
      for (int64_t r = 0; r < R; ++r)
        acc[u][r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + r * k + l + 8 * u), acc[u][r]);
    }
  }
  for (; l + 8 <= k; l += 8) {
    const __m256 wv = W::load8(row + l * W::element);
    for (int64_t r = 0; r < R; ++r)
      acc[0][r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + r * k + l), acc[0][r]);
  }
  for (int64_t r = 0; r < R; ++r) {
    __m256 total = acc[0][r];
    for (int64_t u = 1; u < kSets; ++u) total = _mm256_add_ps(total, acc[u][r]);
    float sum = hsum(total);
    for (int64_t t = l; t < k; ++t) sum += W::load1(row + t * W::element) * x[r * k + t];
    result[r] = sum;
  }
}

// ---- Activations: quantize_row32 (quant_matmul.cpp) 8 values at a time, the same operations in
// the same order per value, as the AVX-512 quantizer: |x| maxima (exact in any order; max_ps
// keeps the running maximum when |x| is NaN, as std::max does), the scalar d = amax / 127 and
// 127 / amax, x * inverse rounded to nearest-even and clamped to +-127, the integer sum. A decode
// step quantizes each matmul's one input row on the calling thread while the others wait. ----

void quantize_row32_avx2(const float* x, int64_t k, uint8_t* out) {
  const int64_t blocks = k / 32;
  auto* scales = reinterpret_cast<float*>(out);
  auto* q = reinterpret_cast<int8_t*>(out + 8 * blocks);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 limit = _mm256_set1_ps(127.0f), negative_limit = _mm256_set1_ps(-127.0f);
  for (int64_t b = 0; b < blocks; ++b, x += 32, q += 32) {
    __m256 v[4];
    __m256 amax8 = _mm256_setzero_ps();
    for (int64_t j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 8 * j);
      amax8 = _mm256_max_ps(_mm256_andnot_ps(sign, v[j]), amax8);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const float inverse = d > 0.0f ? 127.0f / amax : 0.0f;
    const __m256 scale = _mm256_set1_ps(inverse);
    __m256i ints[4];
    __m256i sum8 = _mm256_setzero_si256();
    for (int64_t j = 0; j < 4; ++j) {
      const __m256 r = _mm256_round_ps(_mm256_mul_ps(v[j], scale),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      ints[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, negative_limit), limit));
      sum8 = _mm256_add_epi32(sum8, ints[j]);
    }
    // int32 -> int8 (no saturation: |q| <= 127); packs work per 128-bit half, the permute puts
    // the values back in order.
    const __m256i words = _mm256_packs_epi32(ints[0], ints[1]);
    const __m256i words2 = _mm256_packs_epi32(ints[2], ints[3]);
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(words, words2),
                                                      _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), bytes);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum8), _mm256_extracti128_si256(sum8, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    scales[2 * b] = d;
    scales[2 * b + 1] = d * static_cast<float>(_mm_cvtsi128_si32(s4));
  }
}

// ---- Drivers (quant_tiles.h). ----

template <Format F>
void rows32(const uint8_t* w, int64_t k, const void* act, int64_t n, int64_t row_begin,
            int64_t row_end, float* out, int64_t out_stride) {
  const int64_t blocks = k / 32;
  over_rows(w, blocks * W32<F>::bytes, n, row_begin, row_end, out, out_stride,
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

const RowsKernel kAvx2Kernels[kFormats] = {
    rows_float<kF32>,    rows_float<kF16>, rows_float<kBF16>, rows32_lanes<kQ4_0>,
    rows32_lanes<kQ4_1>, rows32<kQ5_0>,    rows32<kQ5_1>,     rows32<kQ8_0>,
    rows256<kQ4_K>,      rows256<kQ5_K>,   rows256<kQ6_K>};
const LaneGroupsKernel kAvx2LaneGroups[2] = {lane_groups<kQ4_0>, lane_groups<kQ4_1>};
const Row32Quantizer kAvx2QuantizeRow32 = quantize_row32_avx2;

}  // namespace hogwild::cpu::quant

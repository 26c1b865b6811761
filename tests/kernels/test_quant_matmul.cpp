// The quantized matmul kernels (kernels/cpu/quant_matmul.h) against model/quant.cpp's
// dequantize() and a double-precision dot product, for every weight format and every instruction
// set (the AVX2 and AVX-512 cases skip on CPUs without them).
//
// Weights are random *blocks* (random scale/minimum halves in a sane range, random quant bits, so
// every bit pattern of the format occurs), not quantized floats: the kernels must read any block.
//
// Tolerances, with G_l = the largest |w| of the 16 weights around element l (for F32/F16/BF16
// G_l = |w_l|), so that a block whose scale and minimum nearly cancel is not held to its own
// tiny values:
// - against the activations *as quantized* (what the kernel multiplies, decoded from its buffer):
//   |out - ref| <= 1e-5 * sum_l G_l |xq_l|. The integer block sums are exact; what differs is the
//   fp32 rounding of scale products and of the sums over blocks (~1e-7 per term, < 100 blocks).
// - against the fp32 activations: plus the activation quantization error, at most half a step
//   per element: sum_l |w_l| * d_l / 2 with d_l = max|x| of l's block / 127 (zero for the float
//   formats, whose activations stay fp32).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/float16.h"
#include "kernels/cpu/quant_kernels.h"
#include "kernels/cpu/quant_matmul.h"
#include "model/gguf.h"
#include "model/quant.h"
#include "test_paths.h"

namespace hogwild {
namespace {

using cpu::QuantIsa;

constexpr double kTolerance = 1e-5;

// A random half: random sign (if signed), exponent field in [lo, hi] (biased by 15), random
// mantissa; so values lie in [2^(lo-15), 2^(hi-14)).
uint16_t random_half(std::mt19937& rng, int lo, int hi, bool is_signed) {
  const auto exponent = static_cast<uint16_t>(std::uniform_int_distribution<int>(lo, hi)(rng));
  const auto mantissa = static_cast<uint16_t>(rng() & 0x3ffu);
  const uint16_t sign = is_signed && (rng() & 1u) ? 0x8000 : 0;
  return static_cast<uint16_t>(sign | (exponent << 10) | mantissa);
}

void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

struct Format {
  DType dtype;
  GgmlType ggml;
  // Writes the scale fields (or, for element types, the value) of one block whose other bytes
  // are already random.
  void (*patch)(uint8_t* block, std::mt19937& rng);
};

// Scales d ~ 2^-10..2^-4; minimums of either sign up to ~ 2^-1.
void patch_d(uint8_t* b, std::mt19937& rng) { put_u16(b, random_half(rng, 5, 10, false)); }
void patch_d_min(uint8_t* b, std::mt19937& rng) {
  put_u16(b, random_half(rng, 5, 10, false));
  put_u16(b + 2, random_half(rng, 7, 13, true));
}
void patch_q6_k(uint8_t* b, std::mt19937& rng) { put_u16(b + 208, random_half(rng, 5, 10, false)); }
void patch_f32(uint8_t* b, std::mt19937& rng) {
  const float v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  std::memcpy(b, &v, 4);
}
void patch_f16(uint8_t* b, std::mt19937& rng) { put_u16(b, random_half(rng, 7, 15, true)); }
void patch_bf16(uint8_t* b, std::mt19937& rng) {
  put_u16(b, float_to_bf16(std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng)));
}

struct F32Format {
  static Format get() { return {DType::F32, GgmlType::F32, patch_f32}; }
};
struct F16Format {
  static Format get() { return {DType::F16, GgmlType::F16, patch_f16}; }
};
struct BF16Format {
  static Format get() { return {DType::BF16, GgmlType::BF16, patch_bf16}; }
};
struct Q4_0Format {
  static Format get() { return {DType::Q4_0, GgmlType::Q4_0, patch_d}; }
};
struct Q4_1Format {
  static Format get() { return {DType::Q4_1, GgmlType::Q4_1, patch_d_min}; }
};
struct Q5_0Format {
  static Format get() { return {DType::Q5_0, GgmlType::Q5_0, patch_d}; }
};
struct Q5_1Format {
  static Format get() { return {DType::Q5_1, GgmlType::Q5_1, patch_d_min}; }
};
struct Q8_0Format {
  static Format get() { return {DType::Q8_0, GgmlType::Q8_0, patch_d}; }
};
// K-quants: d and dmin both positive (dmin multiplies a subtracted minimum).
struct Q4_KFormat {
  static Format get() {
    return {DType::Q4_K, GgmlType::Q4_K, [](uint8_t* b, std::mt19937& rng) {
              put_u16(b, random_half(rng, 3, 8, false));
              put_u16(b + 2, random_half(rng, 3, 8, false));
            }};
  }
};
struct Q5_KFormat {
  static Format get() {
    Format f = Q4_KFormat::get();
    f.dtype = DType::Q5_K;
    f.ggml = GgmlType::Q5_K;
    return f;
  }
};
struct Q6_KFormat {
  static Format get() { return {DType::Q6_K, GgmlType::Q6_K, patch_q6_k}; }
};

std::vector<QuantIsa> available_isas() {
  std::vector<QuantIsa> isas;
  for (QuantIsa isa : {QuantIsa::Scalar, QuantIsa::Avx2, QuantIsa::Avx512, QuantIsa::Amx})
    if (cpu::quant_isa_available(isa)) isas.push_back(isa);
  return isas;
}

// Restores the instruction set in use when a test ends.
class IsaGuard {
 public:
  IsaGuard() : saved_(cpu::quant_isa()) {}
  ~IsaGuard() { cpu::set_quant_isa(saved_); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;

 private:
  QuantIsa saved_;
};

// `rows` random weight rows of k elements of `format`.
std::vector<uint8_t> random_weights(const Format& format, int64_t rows, int64_t k,
                                    std::mt19937& rng) {
  const size_t row_bytes = dtype_row_bytes(format.dtype, k);
  std::vector<uint8_t> w(row_bytes * static_cast<size_t>(rows));
  for (uint8_t& byte : w) byte = static_cast<uint8_t>(rng());
  const size_t block_bytes = dtype_block_bytes(format.dtype);
  for (size_t at = 0; at < w.size(); at += block_bytes) format.patch(w.data() + at, rng);
  return w;
}

std::vector<float> dequantized(const Format& format, const std::vector<uint8_t>& w, int64_t rows,
                               int64_t k) {
  std::vector<float> out(static_cast<size_t>(rows * k));
  dequantize(format.ggml, w.data(), out.data(), rows * k);
  return out;
}

// Activations with varied magnitudes per block (and one all-zero block when k allows it).
std::vector<float> random_activations(int64_t n, int64_t k, int64_t stride, std::mt19937& rng) {
  std::vector<float> x(static_cast<size_t>(n * stride), std::numeric_limits<float>::quiet_NaN());
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t l = 0; l < k; ++l) {
      const float magnitude = std::ldexp(1.0f, static_cast<int>((l / 32 + i) % 7) - 3);
      x[static_cast<size_t>(i * stride + l)] = unit(rng) * magnitude;
    }
  }
  if (n > 1 && k >= 64)
    std::fill_n(x.begin() + stride, 32, 0.0f);  // row 1's first 32: a zero block
  return x;
}

// The activations as the kernel reads them (decoded from the buffer), and per element the
// quantization step d of its block (0 for fp32 activations). Checks the buffer's invariants.
struct DecodedActivations {
  std::vector<float> values;  // n x k
  std::vector<float> step;    // n x k
};

DecodedActivations decode_activations(DType weight, const std::vector<uint8_t>& act,
                                      const std::vector<float>& x, int64_t n, int64_t k,
                                      int64_t stride) {
  DecodedActivations out{std::vector<float>(static_cast<size_t>(n * k)),
                         std::vector<float>(static_cast<size_t>(n * k), 0.0f)};
  const int64_t block = dtype_block_elements(weight);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t b = 0; b < k / block; ++b) {
      const float* xb = x.data() + i * stride + b * block;
      float* values = out.values.data() + i * k + b * block;
      float* step = out.step.data() + i * k + b * block;
      if (block == 1) {
        std::memcpy(values, act.data() + (i * k + b) * 4, 4);
        EXPECT_EQ(values[0], xb[0]);
        continue;
      }
      float d;
      const int8_t* q;
      if (block == 32) {
        const cpu::quant::Act32Row a = cpu::quant::act32_row(act.data(), k / 32, i);
        d = a.scales[2 * b];
        q = a.q + 32 * b;
        int sum = 0;
        for (int l = 0; l < 32; ++l) sum += q[l];
        EXPECT_FLOAT_EQ(a.scales[2 * b + 1], d * static_cast<float>(sum));
      } else {
        const auto* a = reinterpret_cast<const cpu::quant::Act256*>(act.data()) + i * (k / 256) + b;
        d = a->d;
        q = a->q;
        for (int g = 0; g < 16; ++g) {
          int sum = 0;
          for (int l = 16 * g; l < 16 * g + 16; ++l) sum += q[l];
          EXPECT_EQ(a->sums[g], sum) << "row " << i << " block " << b << " group " << g;
        }
      }
      float amax = 0.0f;
      for (int64_t l = 0; l < block; ++l) amax = std::max(amax, std::fabs(xb[l]));
      EXPECT_FLOAT_EQ(d, amax / 127.0f);
      for (int64_t l = 0; l < block; ++l) {
        values[l] = d * static_cast<float>(q[l]);
        step[l] = d;
        EXPECT_LE(std::abs(q[l]), 127);
        EXPECT_LE(std::fabs(values[l] - xb[l]), 0.5f * d * (1.0f + 1e-5f) + 1e-30f)
            << "row " << i << " element " << b * block + l;
      }
    }
  }
  return out;
}

struct Shape {
  int64_t n, k, rows, begin, end, out_stride;
};

template <typename T>
class QuantMatmulTest : public ::testing::Test {
 protected:
  Format format_ = T::get();

  // Runs one shape on every available instruction set and checks both references.
  void check(const Shape& s, uint32_t seed) {
    SCOPED_TRACE(::testing::Message()
                 << dtype_name(format_.dtype) << " n=" << s.n << " k=" << s.k << " rows ["
                 << s.begin << "," << s.end << ") of " << s.rows << " out_stride=" << s.out_stride);
    std::mt19937 rng(seed);
    const std::vector<uint8_t> w = random_weights(format_, s.rows, s.k, rng);
    const std::vector<float> wf = dequantized(format_, w, s.rows, s.k);
    const int64_t x_stride = s.k + 3;
    const std::vector<float> x = random_activations(s.n, s.k, x_stride, rng);
    std::vector<uint8_t> act(cpu::activation_bytes(format_.dtype, s.n, s.k));
    cpu::quantize_activations(format_.dtype, x.data(), s.n, s.k, x_stride, act.data());
    const DecodedActivations xq = decode_activations(format_.dtype, act, x, s.n, s.k, x_stride);

    // G_l: the largest |w| among the 16 weights around l.
    std::vector<float> group_max(wf.size());
    for (size_t at = 0; at < wf.size(); ++at) {
      if (!dtype_is_block(format_.dtype)) {
        group_max[at] = std::fabs(wf[at]);
        continue;
      }
      const size_t first = at / 16 * 16;
      float m = 0.0f;
      for (size_t l = first; l < first + 16; ++l) m = std::max(m, std::fabs(wf[l]));
      group_max[at] = m;
    }

    IsaGuard guard;
    for (QuantIsa isa : available_isas()) {
      SCOPED_TRACE(cpu::quant_isa_name(isa));
      cpu::set_quant_isa(isa);
      const float poison = std::numeric_limits<float>::quiet_NaN();
      std::vector<float> out(static_cast<size_t>((s.n - 1) * s.out_stride + s.rows), poison);
      cpu::quant_matmul_rows(format_.dtype, w.data(), s.k, act.data(), s.n, s.begin, s.end,
                             out.data(), s.out_stride);
      double worst_q = 0.0, worst_x = 0.0;
      for (int64_t i = 0; i < s.n; ++i) {
        for (int64_t j = 0; j < s.rows; ++j) {
          const float got = out[static_cast<size_t>(i * s.out_stride + j)];
          if (j < s.begin || j >= s.end) {
            EXPECT_TRUE(std::isnan(got)) << "wrote outside its rows: out[" << i << "][" << j << "]";
            continue;
          }
          double ref_q = 0.0, ref_x = 0.0, scale_q = 0.0, act_error = 0.0;
          for (int64_t l = 0; l < s.k; ++l) {
            const size_t wl = static_cast<size_t>(j * s.k + l),
                         al = static_cast<size_t>(i * s.k + l);
            const double wv = wf[wl];
            ref_q += wv * xq.values[al];
            ref_x += wv * x[static_cast<size_t>(i * x_stride + l)];
            scale_q += static_cast<double>(group_max[wl]) * std::fabs(xq.values[al]);
            act_error += std::fabs(wv) * 0.5 * xq.step[al];
          }
          const double tolerance = kTolerance * scale_q + 1e-30;
          EXPECT_NEAR(got, ref_q, tolerance)
              << "out[" << i << "][" << j << "] vs quantized activations";
          EXPECT_NEAR(got, ref_x, tolerance + act_error * (1.0 + 1e-6))
              << "out[" << i << "][" << j << "] vs fp32 activations";
          worst_q = std::max(worst_q, std::fabs(got - ref_q) / (scale_q + 1e-30));
          worst_x = std::max(worst_x, std::fabs(got - ref_x) / (tolerance + act_error + 1e-30));
        }
      }
      char worst[32];
      std::snprintf(worst, sizeof worst, "%.3g", worst_q);
      RecordProperty(std::string("worst_") + cpu::quant_isa_name(isa), worst);
      EXPECT_LT(worst_q, kTolerance);
      EXPECT_LE(worst_x, 1.0);
    }
  }

  // One block per row for the block formats; an odd length (a SIMD tail) for the others.
  int64_t one_block() const {
    return dtype_is_block(format_.dtype) ? dtype_block_elements(format_.dtype) : 13;
  }
  // Block counts and lengths that take each path of the SIMD kernels: 1 block (a lone one), 6
  // (whole pairs of pairs and one pair), 23 (all three); fp32 lengths 13, 53, 1007 (masked tails
  // after no, one and many full vectors).
  int64_t few_blocks() const {
    return dtype_is_block(format_.dtype) ? dtype_block_elements(format_.dtype) *
                                               (dtype_block_elements(format_.dtype) == 256 ? 2 : 6)
                                         : 53;
  }
  int64_t many_blocks() const {
    return dtype_is_block(format_.dtype) ? dtype_block_elements(format_.dtype) *
                                               (dtype_block_elements(format_.dtype) == 256 ? 5 : 23)
                                         : 1000 + 7;
  }
};

using Formats =
    ::testing::Types<Q4_1Format, Q8_0Format, Q4_0Format, F16Format, BF16Format, F32Format,
                     Q5_0Format, Q5_1Format, Q6_KFormat, Q4_KFormat, Q5_KFormat>;
TYPED_TEST_SUITE(QuantMatmulTest, Formats);

TYPED_TEST(QuantMatmulTest, OneBlockRows) {
  uint32_t seed = 1;
  for (int64_t n : {1, 3, 8, 17}) this->check({n, this->one_block(), 13, 0, 13, 13}, seed++);
}

TYPED_TEST(QuantMatmulTest, ManyBlockRows) {
  uint32_t seed = 100;
  for (int64_t n : {1, 3, 8, 17}) this->check({n, this->many_blocks(), 9, 0, 9, 9}, seed++);
  for (int64_t n : {1, 5}) this->check({n, this->few_blocks(), 9, 0, 9, 9}, seed++);
}

// A range that starts inside the matrix, written into a wider, odd-strided output (a thread's
// share of a fused projection): nothing outside [begin, end) may change.
TYPED_TEST(QuantMatmulTest, RowRangeIntoStridedOutput) {
  uint32_t seed = 200;
  for (int64_t n : {1, 3, 8, 17}) this->check({n, this->many_blocks(), 11, 3, 10, 11 + 6}, seed++);
  this->check({5, this->one_block(), 11, 4, 5, 11}, seed++);  // a single row
  this->check({5, this->one_block(), 11, 6, 6, 11}, seed++);  // an empty range
}

// More weight rows than one 16-row group of the lane kernels (Q4_0 / Q4_1 on AVX-512), in ranges
// that start and end inside a group; and a row's bits do not depend on how the pool splits the
// rows (its lane in a group), as they do not depend on the batch.
TYPED_TEST(QuantMatmulTest, RowsAcrossLaneGroupsAndSplits) {
  uint32_t seed = 300;
  for (int64_t n : {1, 9, 17}) {
    this->check({n, this->many_blocks(), 37, 0, 37, 37}, seed++);
    this->check({n, this->few_blocks(), 37, 5, 35, 40}, seed++);
  }
  std::mt19937 rng(13);
  const int64_t n = 9, k = this->many_blocks(), rows = 37;
  const std::vector<uint8_t> w = random_weights(this->format_, rows, k, rng);
  const std::vector<float> x = random_activations(n, k, k, rng);
  std::vector<uint8_t> act(cpu::activation_bytes(this->format_.dtype, n, k));
  cpu::quantize_activations(this->format_.dtype, x.data(), n, k, k, act.data());
  IsaGuard guard;
  for (QuantIsa isa : available_isas()) {
    SCOPED_TRACE(cpu::quant_isa_name(isa));
    cpu::set_quant_isa(isa);
    std::vector<float> whole(static_cast<size_t>(n * rows)), split(whole.size());
    cpu::quant_matmul_rows(this->format_.dtype, w.data(), k, act.data(), n, 0, rows, whole.data(),
                           rows);
    for (const auto& [begin, end] :
         std::vector<std::pair<int64_t, int64_t>>{{0, 7}, {7, 23}, {23, 37}})
      cpu::quant_matmul_rows(this->format_.dtype, w.data(), k, act.data(), n, begin, end,
                             split.data(), rows);
    for (size_t at = 0; at < whole.size(); ++at)
      ASSERT_EQ(std::memcmp(&whole[at], &split[at], sizeof(float)), 0)
          << "out[" << at / rows << "][" << at % rows << "]: " << split[at] << " split vs "
          << whole[at] << " whole";
  }
}

TYPED_TEST(QuantMatmulTest, ScalarAndSimdAgree) {
  const std::vector<QuantIsa> isas = available_isas();
  if (isas.size() < 2) GTEST_SKIP() << "this CPU has only the scalar kernels";
  std::mt19937 rng(7);
  const int64_t n = 6, k = this->many_blocks(), rows = 8;
  const std::vector<uint8_t> w = random_weights(this->format_, rows, k, rng);
  const std::vector<float> wf = dequantized(this->format_, w, rows, k);
  const std::vector<float> x = random_activations(n, k, k, rng);
  std::vector<uint8_t> act(cpu::activation_bytes(this->format_.dtype, n, k));
  cpu::quantize_activations(this->format_.dtype, x.data(), n, k, k, act.data());
  IsaGuard guard;
  std::vector<std::vector<float>> outs;
  for (QuantIsa isa : isas) {
    cpu::set_quant_isa(isa);
    outs.emplace_back(static_cast<size_t>(n * rows));
    cpu::quant_matmul_rows(this->format_.dtype, w.data(), k, act.data(), n, 0, rows,
                           outs.back().data(), rows);
  }
  // Each is within kTolerance * sum |w x| of the exact value (up to the 16-weight group maxima
  // of the check above): so within twice that of each other.
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < rows; ++j) {
      double scale = 0.0;
      for (int64_t l = 0; l < k; ++l)
        scale += std::fabs(static_cast<double>(wf[static_cast<size_t>(j * k + l)]) *
                           x[static_cast<size_t>(i * k + l)]);
      const size_t at = static_cast<size_t>(i * rows + j);
      for (size_t s = 1; s < outs.size(); ++s)
        EXPECT_NEAR(outs[0][at], outs[s][at], 2 * kTolerance * scale)
            << cpu::quant_isa_name(isas[s]) << " out[" << i << "][" << j << "]";
    }
  }
}

// Batch invariance (quant_matmul.h): each row of a batch of n rows gives the same bits as that row
// alone, for every n (tiles of 4, 2 and 1, groups of 16, odd block counts) and instruction set.
// The CPU backend runs whole batches through one call and relies on this for results that do not
// depend on which problems shared a batch.
TYPED_TEST(QuantMatmulTest, EachRowRoundsAsItWouldAlone) {
  std::mt19937 rng(11);
  const int64_t max_n = 37, rows = 5;
  for (int64_t k : {this->one_block(), this->few_blocks(), this->many_blocks()}) {
    SCOPED_TRACE(::testing::Message() << dtype_name(this->format_.dtype) << " k=" << k);
    const std::vector<uint8_t> w = random_weights(this->format_, rows, k, rng);
    const std::vector<float> x = random_activations(max_n, k, k, rng);
    std::vector<uint8_t> act(cpu::activation_bytes(this->format_.dtype, max_n, k));
    cpu::quantize_activations(this->format_.dtype, x.data(), max_n, k, k, act.data());
    const size_t act_row = cpu::activation_bytes(this->format_.dtype, 1, k);
    IsaGuard guard;
    for (QuantIsa isa : available_isas()) {
      SCOPED_TRACE(cpu::quant_isa_name(isa));
      cpu::set_quant_isa(isa);
      std::vector<float> alone(static_cast<size_t>(max_n * rows));
      for (int64_t i = 0; i < max_n; ++i)
        cpu::quant_matmul_rows(this->format_.dtype, w.data(), k, act.data() + i * act_row, 1, 0,
                               rows, alone.data() + i * rows, rows);
      // Batches starting at every offset, so that a row meets every tile position.
      for (int64_t n : {2, 3, 4, 5, 7, 16, 17, 37}) {
        for (int64_t first = 0; first + n <= max_n; first += (n > 8 ? max_n : 1)) {
          std::vector<float> batch(static_cast<size_t>(n * rows));
          cpu::quant_matmul_rows(this->format_.dtype, w.data(), k, act.data() + first * act_row, n,
                                 0, rows, batch.data(), rows);
          for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < rows; ++j) {
              const float a = alone[static_cast<size_t>((first + i) * rows + j)];
              const float b = batch[static_cast<size_t>(i * rows + j)];
              ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0)
                  << "row " << first + i << " in a batch of " << n << " from " << first
                  << ", output " << j << ": " << b << " vs " << a << " alone";
            }
        }
      }
    }
  }
}

// The AVX2 lane kernels run the AVX-512 ones' integer dots and float steps on 8 lanes: a Q4_0 /
// Q4_1 product in the lane layout has the same bits with either (and with AMX at 16 rows), so
// a model's Q4 logits do not depend on which of these CPUs ran it.
TEST(QuantMatmul, LaneKernelsGiveTheSameBitsOnAvx2AndAvx512) {
  if (!cpu::quant_isa_available(QuantIsa::Avx512)) GTEST_SKIP() << "this CPU has no AVX-512";
  IsaGuard guard;
  std::mt19937 rng(77);
  for (const Format& format : {Q4_0Format::get(), Q4_1Format::get()}) {
    SCOPED_TRACE(dtype_name(format.dtype));
    const int64_t rows = 48, k = 320;
    const std::vector<uint8_t> w = random_weights(format, rows, k, rng);
    std::vector<uint8_t> lanes(w.size());
    cpu::to_lane_layout(format.dtype, w.data(), k, rows, lanes.data(), 0);
    for (const int64_t n : {1, 2, 5, 16, 19}) {
      const std::vector<float> x = random_activations(n, k, k, rng);
      std::vector<uint8_t> act(cpu::activation_bytes(format.dtype, n, k));
      cpu::quantize_activations(format.dtype, x.data(), n, k, k, act.data());
      std::vector<std::vector<float>> outs;
      for (QuantIsa isa : available_isas()) {
        if (isa == QuantIsa::Scalar) continue;
        cpu::set_quant_isa(isa);
        outs.emplace_back(static_cast<size_t>(n * rows));
        cpu::quant_matmul_lane_rows(format.dtype, lanes.data(), 0, k, act.data(), n, 3, rows,
                                    outs.back().data(), rows);
      }
      for (size_t s = 1; s < outs.size(); ++s)
        for (size_t at = 0; at < outs[0].size(); ++at)
          ASSERT_EQ(0, std::memcmp(&outs[0][at], &outs[s][at], sizeof(float)))
              << "n=" << n << " out[" << at / rows << "][" << at % rows << "]: " << outs[s][at]
              << " vs AVX2 " << outs[0][at];
    }
  }
}

// The lane layout (Q4_0 / Q4_1 as the CPU backend keeps them): each row comes back as the same
// bytes, and a product over any rows of it, from any first row (a view of a fused matrix, which
// may start or end inside a 16-row group), has the plain kernel's bits on every instruction set.
TEST(QuantMatmul, LaneLayoutKeepsEveryRowAndEveryProductBit) {
  IsaGuard guard;
  uint32_t seed = 500;
  for (const Format& format : {Q4_0Format::get(), Q4_1Format::get()}) {
    SCOPED_TRACE(dtype_name(format.dtype));
    const int64_t rows = 64, k = 96;
    ASSERT_TRUE(cpu::lane_layout_fits(format.dtype, rows));
    ASSERT_FALSE(cpu::lane_layout_fits(format.dtype, 40));
    ASSERT_FALSE(cpu::lane_layout_fits(DType::Q8_0, rows));
    std::mt19937 rng(seed++);
    const std::vector<uint8_t> w = random_weights(format, rows, k, rng);
    const size_t row_bytes = dtype_row_bytes(format.dtype, k);
    // Written in two uneven pieces (rows 0..20, then 21..63), as views of a fused matrix are.
    std::vector<uint8_t> lanes(w.size(), 0xee);
    cpu::to_lane_layout(format.dtype, w.data(), k, 21, lanes.data(), 0);
    cpu::to_lane_layout(format.dtype, w.data() + 21 * row_bytes, k, rows - 21, lanes.data(), 21);
    ASSERT_NE(lanes, w);  // interleaved: not the plain bytes
    std::vector<uint8_t> back(row_bytes);
    for (int64_t r = 0; r < rows; ++r) {
      cpu::from_lane_layout(format.dtype, lanes.data(), k, r, back.data());
      ASSERT_EQ(0, std::memcmp(back.data(), w.data() + r * row_bytes, row_bytes)) << "row " << r;
    }
    for (QuantIsa isa : available_isas()) {
      SCOPED_TRACE(cpu::quant_isa_name(isa));
      cpu::set_quant_isa(isa);
      // 16, 17 and 33 rows: AMX tiles of 16 rows, and the rest through AVX-512.
      for (const int64_t n : {1, 3, 9, 16, 17, 33}) {
        const std::vector<float> x = random_activations(n, k, k, rng);
        std::vector<uint8_t> act(cpu::activation_bytes(format.dtype, n, k));
        cpu::quantize_activations(format.dtype, x.data(), n, k, k, act.data());
        // (first, begin, end): whole groups, a view from row 5, ranges that cut groups.
        for (const auto& [first, begin, end] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
                 {0, 0, 64}, {16, 0, 48}, {5, 0, 59}, {5, 3, 30}, {40, 1, 2}, {0, 17, 47}}) {
          const int64_t width = end;
          std::vector<float> plain(static_cast<size_t>(n * width), -1.0f), got = plain;
          cpu::quant_matmul_rows(format.dtype, w.data() + first * row_bytes, k, act.data(), n,
                                 begin, end, plain.data(), width);
          cpu::quant_matmul_lane_rows(format.dtype, lanes.data(), first, k, act.data(), n, begin,
                                      end, got.data(), width);
          for (size_t at = 0; at < got.size(); ++at)
            ASSERT_EQ(0, std::memcmp(&got[at], &plain[at], sizeof(float)))
                << "n=" << n << " first=" << first << " [" << begin << ", " << end << ") out["
                << at / width << "][" << at % width << "]: " << got[at] << " vs " << plain[at];
        }
      }
    }
  }
  EXPECT_THROW(cpu::to_lane_layout(DType::Q8_0, nullptr, 32, 0, nullptr, 0), Error);
}

// The 32-element formats' activation blocks are the same bytes from every instruction set: the
// AVX2 and AVX-512 quantizers against the scalar one, on blocks of every magnitude, an all-zero
// block, and values that fall exactly halfway between two steps (rounded to even).
TEST(QuantMatmul, ActivationBlocksAreTheSameBytesOnEveryInstructionSet) {
  if (available_isas().size() < 2) GTEST_SKIP() << "this CPU has only the scalar kernels";
  std::mt19937 rng(17);
  const int64_t n = 5, k = 32 * 24;
  std::vector<float> x = random_activations(n, k, k, rng);
  for (int64_t l = 0; l < 32; ++l) x[static_cast<size_t>(32 + l)] = 0.0f;  // row 0, block 1
  for (int64_t b = 2; b < 24; b += 3)
    for (int64_t l = 0; l < 32; ++l)  // magnitudes from 2^-20 to 2^15
      x[static_cast<size_t>(b * 32 + l)] *= std::ldexp(1.0f, static_cast<int>(b) - 20);
  // Block 0 of row 1: amax 127 gives inverse 1, so k + 0.5 lies halfway.
  for (int64_t l = 0; l < 32; ++l)
    x[static_cast<size_t>(k + l)] = l == 0 ? 127.0f : static_cast<float>(l % 9) - 4.5f;
  IsaGuard guard;
  for (DType dtype : {DType::Q4_1, DType::Q4_0, DType::Q8_0}) {
    std::vector<std::vector<uint8_t>> acts;
    for (QuantIsa isa : available_isas()) {
      cpu::set_quant_isa(isa);
      acts.emplace_back(cpu::activation_bytes(dtype, n, k));
      cpu::quantize_activations(dtype, x.data(), n, k, k, acts.back().data());
    }
    for (size_t s = 1; s < acts.size(); ++s)
      EXPECT_EQ(acts[0], acts[s]) << dtype_name(dtype) << " "
                                  << cpu::quant_isa_name(available_isas()[s]);
  }
}

TEST(QuantMatmul, RejectsBadShapesWithOneLine) {
  std::vector<float> x(64, 1.0f);
  std::vector<uint8_t> act(4096);
  std::vector<float> out(64);
  std::vector<uint8_t> w(4096);
  try {
    cpu::quantize_activations(DType::Q4_1, x.data(), 1, 48, 48, act.data());
    FAIL() << "k=48 accepted for q4_1";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q4_1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("48"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cpu::activation_bytes(DType::Q6_K, 1, 32), Error);
  EXPECT_THROW(cpu::quant_matmul_rows(DType::I32, w.data(), 32, act.data(), 1, 0, 1, out.data(), 1),
               Error);
  EXPECT_THROW(
      cpu::quant_matmul_rows(DType::Q8_0, w.data(), 32, act.data(), 2, 0, 4, out.data(), 3), Error);
  EXPECT_THROW(
      cpu::quant_matmul_rows(DType::Q8_0, w.data(), 32, act.data(), 1, 3, 2, out.data(), 4), Error);
  EXPECT_THROW(dtype_row_bytes(DType::Q4_K, 100), Error);
  EXPECT_THROW(dtype_size(DType::Q4_0), Error);
}

TEST(QuantMatmul, FeaturesNameTheInstructionSet) {
  EXPECT_EQ(cpu::quant_isa_for("scalar"), QuantIsa::Scalar);
  const QuantIsa best = cpu::quant_isa_available(QuantIsa::Amx)      ? QuantIsa::Amx
                        : cpu::quant_isa_available(QuantIsa::Avx512) ? QuantIsa::Avx512
                        : cpu::quant_isa_available(QuantIsa::Avx2)   ? QuantIsa::Avx2
                                                                     : QuantIsa::Scalar;
  EXPECT_EQ(cpu::quant_isa_for(nullptr), best);
  EXPECT_EQ(cpu::quant_isa_for(""), best);
  try {
    cpu::quant_isa_for("avx9000");
    FAIL() << "an unknown instruction set was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HOGWILD_CPU_FEATURES=avx9000"), std::string::npos)
        << e.what();
  }
}

// Run by ctest a second time with HOGWILD_CPU_FEATURES=scalar (tests/kernels/CMakeLists.txt).
TEST(QuantMatmul, EnvironmentChoosesTheInstructionSet) {
  EXPECT_EQ(cpu::quant_isa(), cpu::quant_isa_for(std::getenv("HOGWILD_CPU_FEATURES")));
}

TEST(QuantMatmul, DTypeBlockSizesMatchTheGgufTable) {
  const std::pair<DType, GgmlType> pairs[] = {
      {DType::F32, GgmlType::F32},   {DType::F16, GgmlType::F16},   {DType::BF16, GgmlType::BF16},
      {DType::Q4_0, GgmlType::Q4_0}, {DType::Q4_1, GgmlType::Q4_1}, {DType::Q5_0, GgmlType::Q5_0},
      {DType::Q5_1, GgmlType::Q5_1}, {DType::Q8_0, GgmlType::Q8_0}, {DType::Q4_K, GgmlType::Q4_K},
      {DType::Q5_K, GgmlType::Q5_K}, {DType::Q6_K, GgmlType::Q6_K}};
  for (const auto& [dtype, ggml] : pairs) {
    const GgmlTypeTraits traits = ggml_type_traits(static_cast<uint32_t>(ggml));
    EXPECT_EQ(dtype_block_elements(dtype), traits.block_elements) << dtype_name(dtype);
    EXPECT_EQ(dtype_block_bytes(dtype), static_cast<size_t>(traits.block_bytes))
        << dtype_name(dtype);
    EXPECT_EQ(dtype_row_bytes(dtype, 512), ggml_row_bytes(ggml, 512)) << dtype_name(dtype);
    std::string lower = traits.name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(dtype_name(dtype), lower);
  }
}

// The demo model's own tensors (Q4_1 and its Q8_0 one), some rows of each, against dequantize().
TEST(QuantMatmul, DemoModelTensors) {
  HOGWILD_REQUIRE_DEMO_MODEL();
  const GgufFile file = GgufFile::open(testing::demo_model_path());
  IsaGuard guard;
  int checked = 0;
  bool seen_q4_1 = false, seen_q8_0 = false;
  for (const GgufTensor& tensor : file.tensors()) {
    DType dtype;
    if (tensor.type == GgmlType::Q4_1 && !seen_q4_1) {
      dtype = DType::Q4_1;
    } else if (tensor.type == GgmlType::Q8_0 && !seen_q8_0) {
      dtype = DType::Q8_0;
    } else {
      continue;
    }
    (dtype == DType::Q4_1 ? seen_q4_1 : seen_q8_0) = true;
    SCOPED_TRACE(tensor.name);
    const int64_t k = tensor.shape[0];
    const int64_t rows = std::min<int64_t>(tensor.element_count() / k, 64);
    const int64_t n = 3;
    std::mt19937 rng(11);
    const std::vector<float> x = random_activations(n, k, k, rng);
    std::vector<uint8_t> act(cpu::activation_bytes(dtype, n, k));
    cpu::quantize_activations(dtype, x.data(), n, k, k, act.data());
    const std::vector<uint8_t> w(
        tensor.data, tensor.data + dtype_row_bytes(dtype, k) * static_cast<size_t>(rows));
    const Format format{dtype, tensor.type, nullptr};
    const std::vector<float> wf = dequantized(format, w, rows, k);
    const DecodedActivations xq = decode_activations(dtype, act, x, n, k, k);
    for (QuantIsa isa : available_isas()) {
      SCOPED_TRACE(cpu::quant_isa_name(isa));
      cpu::set_quant_isa(isa);
      std::vector<float> out(static_cast<size_t>(n * rows));
      cpu::quant_matmul_rows(dtype, w.data(), k, act.data(), n, 0, rows, out.data(), rows);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < rows; ++j) {
          double ref = 0.0, scale = 0.0;
          for (int64_t l = 0; l < k; ++l) {
            const double wv = wf[static_cast<size_t>(j * k + l)];
            ref += wv * xq.values[static_cast<size_t>(i * k + l)];
            scale += std::fabs(wv * xq.values[static_cast<size_t>(i * k + l)]);
          }
          // Real blocks span their range (the quantizer's scale fits the block's values), so
          // sum |w x| is the scale here.
          EXPECT_NEAR(out[static_cast<size_t>(i * rows + j)], ref, kTolerance * scale)
              << i << "," << j;
        }
      }
      ++checked;
    }
  }
  EXPECT_TRUE(seen_q4_1 && seen_q8_0) << "the demo model should have Q4_1 and Q8_0 tensors";
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace hogwild

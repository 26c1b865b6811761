// The CPU backend's matmul and embedding over weights kept in their stored formats, through the
// Backend interface, against plain references: the kernels called directly on each row alone
// (the backend splits the weight rows across its pool: the same numbers, bit for bit), and
// the fp32 product of the dequantized weights (within the 8-bit activations' quantization error).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/quant_matmul.h"
#include "model/quant.h"

namespace hogwild {
namespace {

struct Format {
  DType dtype;
  GgmlType ggml;
};

// Random blocks with sane scales: random quants, then every block's fp16 scale (and minimum)
// set to small finite values.
std::vector<uint8_t> random_weights(const Format& f, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> bytes(static_cast<size_t>(rows) * dtype_row_bytes(f.dtype, cols));
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(byte(rng));
  const size_t block = dtype_block_bytes(f.dtype);
  for (size_t at = 0; at < bytes.size(); at += block) {
    bytes[at] = static_cast<uint8_t>(byte(rng));
    bytes[at + 1] = 0x20;  // fp16 exponent of ~0.01
    if (f.dtype == DType::Q4_1) {
      bytes[at + 2] = static_cast<uint8_t>(byte(rng));
      bytes[at + 3] = 0xa0;  // a small negative minimum
    }
  }
  return bytes;
}

class StoredWeights : public ::testing::TestWithParam<int> {};

TEST_P(StoredWeights, MatmulEqualsTheKernelsOnTheWholeBatchAndTheDequantizedProduct) {
  const auto backend = make_cpu_backend(GetParam());
  ASSERT_TRUE(backend->reads_stored_weights());
  // 203 rows: uneven chunks; 208 (13 groups of 16): Q4_1 in the lane layout (quant_matmul.h)
  // where the kernels are AVX-512's.
  for (const auto& [f, m] :
       std::vector<std::pair<Format, int64_t>>{{{DType::Q4_1, GgmlType::Q4_1}, 203},
                                               {{DType::Q4_1, GgmlType::Q4_1}, 208},
                                               {{DType::Q4_0, GgmlType::Q4_0}, 208},
                                               {{DType::Q8_0, GgmlType::Q8_0}, 203}}) {
    SCOPED_TRACE(std::string(dtype_name(f.dtype)) + " x " + std::to_string(m) + " rows");
    const int64_t k = 576;
    const std::vector<uint8_t> w = random_weights(f, m, k, 7);
    std::vector<float> dequantized(static_cast<size_t>(m * k));
    dequantize(f.ggml, w.data(), dequantized.data(), m * k);
    Tensor weight = backend->allocate(m, k, f.dtype);
    backend->upload_stored(weight, w.data());
    std::vector<float> bias_values(static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j)
      bias_values[static_cast<size_t>(j)] = 0.01f * static_cast<float>(j % 7);
    Tensor bias = backend->allocate(1, m, DType::F32);
    backend->upload_f32(bias, bias_values.data());
    std::mt19937 rng(3);
    std::normal_distribution<float> normal;
    for (const int64_t n : {1, 2, 5, 17, 48}) {
      std::vector<float> x(static_cast<size_t>(n * k));
      for (float& v : x) v = normal(rng);
      Tensor xt = backend->allocate(n, k, DType::F32), out = backend->allocate(n, m, DType::F32);
      backend->upload_f32(xt, x.data());
      backend->matmul(xt, weight, bias, out);
      std::vector<float> got(static_cast<size_t>(n * m));
      backend->download_f32(out, got.data());
      // The kernels on each row alone: the backend's result for a row does not depend on the
      // other rows of the batch or on how its pool splits the weight rows.
      std::vector<float> direct(static_cast<size_t>(n * m));
      for (int64_t i = 0; i < n; ++i) {
        std::vector<float> act((cpu::activation_bytes(f.dtype, 1, k) + 3) / 4);
        cpu::quantize_activations(f.dtype, x.data() + i * k, 1, k, k, act.data());
        cpu::quant_matmul_rows(f.dtype, w.data(), k, act.data(), 1, 0, m, direct.data() + i * m, m);
      }
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
          const size_t at = static_cast<size_t>(i * m + j);
          ASSERT_EQ(got[at], direct[at] + bias_values[static_cast<size_t>(j)])
              << dtype_name(f.dtype) << " n=" << n << " row " << i << " col " << j;
          // fp32 reference: the activations' 8-bit rounding moves each product by at most half a
          // step (amax/127/2 per element of the block) times |w|.
          double exact = bias_values[static_cast<size_t>(j)], bound = 1e-5;
          for (int64_t b = 0; b < k; b += 32) {
            float amax = 0;
            for (int64_t e = b; e < b + 32; ++e)
              amax = std::max(amax, std::fabs(x[static_cast<size_t>(i * k + e)]));
            for (int64_t e = b; e < b + 32; ++e) {
              const double wv = dequantized[static_cast<size_t>(j * k + e)];
              exact += wv * x[static_cast<size_t>(i * k + e)];
              bound += std::fabs(wv) * amax / 127.0 * 0.5 * 1.001;
            }
          }
          ASSERT_NEAR(got[at], exact, bound) << dtype_name(f.dtype) << " n=" << n;
        }
      backend->release(xt);
      backend->release(out);
    }
    // Embedding rows of the stored table are its dequantized rows.
    const std::vector<int32_t> ids = {0, 202, 57, 57};
    Tensor id_tensor = backend->allocate(4, 1, DType::I32),
           rows = backend->allocate(4, k, DType::F32);
    backend->upload_i32(id_tensor, ids.data());
    backend->embedding(weight, id_tensor, rows);
    std::vector<float> got(static_cast<size_t>(4 * k));
    backend->download_f32(rows, got.data());
    for (size_t i = 0; i < ids.size(); ++i)
      ASSERT_EQ(
          0, std::memcmp(got.data() + i * static_cast<size_t>(k),
                         dequantized.data() + static_cast<size_t>(ids[i]) * static_cast<size_t>(k),
                         static_cast<size_t>(k) * sizeof(float)));
    backend->release(id_tensor);
    backend->release(rows);
    backend->release(weight);
    backend->release(bias);
  }
}

// Views of one stored matrix, as the engine fuses projections (q|k|v in one allocation): uploaded
// piece by piece and multiplied piece by piece, with pieces that start and end inside 16-row
// groups, the numbers are those of the kernels on the plain rows.
TEST_P(StoredWeights, ViewsOfOneMatrixUploadAndMultiplyAsTheirRows) {
  const auto backend = make_cpu_backend(GetParam());
  for (const Format f :
       {Format{DType::Q4_1, GgmlType::Q4_1}, Format{DType::Q4_0, GgmlType::Q4_0}}) {
    SCOPED_TRACE(dtype_name(f.dtype));
    const int64_t m = 96, k = 64, n = 5;
    const std::vector<uint8_t> w = random_weights(f, m, k, 11);
    const size_t row_bytes = dtype_row_bytes(f.dtype, k);
    Tensor weight = backend->allocate(m, k, f.dtype);
    for (const auto& [first, rows] : std::vector<std::pair<int64_t, int64_t>>{{0, 21}, {21, 75}})
      backend->upload_stored(weight.rows_view(first, rows), w.data() + first * row_bytes);
    std::mt19937 rng(5);
    std::normal_distribution<float> normal;
    std::vector<float> x(static_cast<size_t>(n * k));
    for (float& v : x) v = normal(rng);
    std::vector<float> act((cpu::activation_bytes(f.dtype, n, k) + 3) / 4);
    cpu::quantize_activations(f.dtype, x.data(), n, k, k, act.data());
    Tensor xt = backend->allocate(n, k, DType::F32);
    backend->upload_f32(xt, x.data());
    for (const auto& [first, rows] :
         std::vector<std::pair<int64_t, int64_t>>{{0, 96}, {16, 48}, {5, 70}, {90, 6}}) {
      SCOPED_TRACE("rows " + std::to_string(first) + " + " + std::to_string(rows));
      Tensor out = backend->allocate(n, rows, DType::F32);
      backend->matmul(xt, weight.rows_view(first, rows), Tensor{}, out);
      std::vector<float> got(static_cast<size_t>(n * rows)), want(got.size());
      backend->download_f32(out, got.data());
      cpu::quant_matmul_rows(f.dtype, w.data() + first * row_bytes, k, act.data(), n, 0, rows,
                             want.data(), rows);
      ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)));
      backend->release(out);
    }
    backend->release(xt);
    backend->release(weight);
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, StoredWeights, ::testing::Values(1, 3));

}  // namespace
}  // namespace hogwild

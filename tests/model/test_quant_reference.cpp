// Checks hogwild::dequantize against an independent reference: the gguf Python package.
// scripts/make_quant_fixture.py writes a GGUF with one 2x512 tensor per supported GGML type
// (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) and gguf.quants.dequantize's
// output for each as raw float32. Both sides do the same exact fp32 arithmetic on the same bits
// (fp16 -> fp32 conversion is exact, each value is at most one multiply and one add, evaluated in
// the same order), so the results must agree bit for bit, signed zeros included.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/quant.h"
#include "test_paths.h"

namespace hogwild {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kRows = 2;
constexpr int64_t kCols = 512;

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::vector<float> read_floats(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

bool same(float a, float b) { return bits(a) == bits(b); }

class QuantReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string python = testing::python();
    if (std::system((quoted(python) + " -c 'import gguf, numpy' >/dev/null 2>&1").c_str()) != 0) {
      skip_reason_ = "python " + python +
                     " cannot import gguf/numpy (pip install -r scripts/requirements.txt)";
      return;
    }
    dir_ = fs::temp_directory_path() / ("hogwild_quant_reference_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string command = quoted(python) + " " +
                                quoted(testing::source_dir() + "/scripts/make_quant_fixture.py") +
                                " " + quoted((dir_ / "fixture.gguf").string()) + " " +
                                quoted((dir_ / "fixture.npz").string()) + " --bin-dir " +
                                quoted((dir_ / "reference").string()) + " >/dev/null";
    script_status_ = std::system(command.c_str());
  }

  static void TearDownTestSuite() {
    if (!dir_.empty()) {
      std::error_code ignored;
      fs::remove_all(dir_, ignored);
    }
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_EQ(script_status_, 0) << "scripts/make_quant_fixture.py failed";
  }

  static std::vector<std::string> manifest() {
    std::vector<std::string> names;
    std::ifstream in(dir_ / "reference" / "manifest.txt");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) names.push_back(line);
    return names;
  }

  static inline fs::path dir_;
  static inline std::string skip_reason_;
  static inline int script_status_ = -1;
};

TEST_F(QuantReference, FixtureCoversEverySupportedType) {
  const std::vector<std::string> names = manifest();
  const std::set<std::string> got(names.begin(), names.end());
  const std::set<std::string> want = {"F32",  "F16",  "BF16", "Q4_0", "Q4_1", "Q5_0",
                                      "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"};
  EXPECT_EQ(got, want);
}

TEST_F(QuantReference, DequantizationMatchesGgufPackageBitForBit) {
  const GgufFile file = GgufFile::open((dir_ / "fixture.gguf").string());
  const std::vector<std::string> names = manifest();
  ASSERT_FALSE(names.empty());
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const GgufTensor& tensor = file.tensor(name);
    EXPECT_EQ(ggml_type_name(static_cast<uint32_t>(tensor.type)), name);
    ASSERT_EQ(tensor.shape, (std::vector<int64_t>{kCols, kRows}));
    ASSERT_EQ(tensor.bytes, kRows * ggml_row_bytes(tensor.type, kCols));

    const std::vector<float> expected = read_floats(dir_ / "reference" / (name + ".bin"));
    ASSERT_EQ(expected.size(), static_cast<size_t>(kRows * kCols));

    // Row by row, as the weight loader does, to check rows start on block boundaries.
    std::vector<float> actual(kRows * kCols);
    for (int64_t r = 0; r < kRows; ++r) {
      dequantize(tensor.type, tensor.data + r * ggml_row_bytes(tensor.type, kCols),
                 actual.data() + r * kCols, kCols);
    }
    int mismatches = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      if (!same(actual[i], expected[i])) {
        if (++mismatches <= 5) {
          ADD_FAILURE() << "element " << i << " (row " << i / kCols << ", column " << i % kCols
                        << "): hogwild " << actual[i] << " (0x" << std::hex << bits(actual[i])
                        << "), gguf " << expected[i] << " (0x" << bits(expected[i]) << std::dec
                        << ")";
        }
      }
    }
    EXPECT_EQ(mismatches, 0) << "of " << expected.size() << " elements differ";
  }
}

}  // namespace
}  // namespace hogwild

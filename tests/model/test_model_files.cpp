// Bad model files, one class at a time, for both loaders (GGUF and Hugging Face checkpoints):
// files that are not regular (a FIFO must be refused at once, not waited on), metadata arrays
// too long for the file or for any model (refused before anything is allocated), metadata that
// contradicts the tensors, and NaN or infinity in the weights or the RoPE parameters. Each case
// asserts the message (file, key or tensor, value) and that every file is byte-identical after.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <limits>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/file_writers.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "test_support.h"

// ---- allocation accounting: the bytes requested from operator new while a scope is armed ----

namespace {

std::atomic<bool> g_counting{false};
std::atomic<size_t> g_allocated{0};
}  // namespace

// GCC sees free() meet memory from (this) operator new after inlining and warns; it is the
// matching pair here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed))
    g_allocated.fetch_add(size, std::memory_order_relaxed);
  if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
  throw std::bad_alloc();
}
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t /*size*/) noexcept { std::free(memory); }

namespace hogwild {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using testing::error_of;
using ::testing::HasSubstr;
using namespace testing;  // file writers, TempDir, GGUF wire types

// Bytes allocated while `action` runs (errors it throws are swallowed: the cost is the point).
size_t bytes_allocated_by(const std::function<void()>& action) {
  g_allocated = 0;
  g_counting = true;
  try {
    action();
  } catch (const Error&) {
  }
  g_counting = false;
  return g_allocated;
}

// Runs `open` on another thread. Opening a FIFO must fail at once; if it is still blocked after
// 10 s the test fails, and opening the FIFO's write end releases the reader so the suite ends.
std::string error_opening_fifo(const std::string& fifo, const std::function<void()>& open) {
  auto result = std::async(std::launch::async, [&] { return error_of(open); });
  if (result.wait_for(std::chrono::seconds(10)) == std::future_status::timeout) {
    ADD_FAILURE() << "opening the FIFO " << fifo << " blocked instead of failing";
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    if (fd >= 0) ::close(fd);
  }
  return result.get();
}

void make_fifo(const std::string& path) { ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << path; }

Bytes f32_bytes(std::vector<float> values) { return bytes_of(values); }

std::vector<float> ramp(size_t count) {
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i) values[i] = 0.01f * static_cast<float>(i % 97) - 0.4f;
  return values;
}

// A tiny llama GGUF: hidden 8, 2 heads of 4, 1 key/value head, vocabulary 10, `layers` layers
// holding attn_norm and attn_q (enough for the checks at open and for loading one tensor).
// `edit` may change the metadata or tensors before the bytes are laid out.
struct TinyGguf {
  uint32_t block_count = 2;
  int64_t layers = 2;
  uint32_t heads = 2;
  uint32_t kv_heads = 1;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  std::vector<float> attn_q1 = ramp(64);  // blk.1.attn_q.weight
  std::function<void(GgufWriter&)> extra;

  Bytes bytes() const {
    GgufWriter writer;
    writer.string("general.architecture", "llama")
        .u32("llama.block_count", block_count)
        .u32("llama.embedding_length", 8)
        .u32("llama.feed_forward_length", 16)
        .u32("llama.attention.head_count", heads)
        .u32("llama.attention.head_count_kv", kv_heads)
        .f32("llama.attention.layer_norm_rms_epsilon", rms_eps)
        .f32("llama.rope.freq_base", rope_base);
    if (extra) extra(writer);
    writer.tensor("token_embd.weight", {8, 10}, kF32Tensor, f32_bytes(ramp(80)));
    for (int64_t l = 0; l < layers; ++l) {
      const std::string blk = "blk." + std::to_string(l) + ".";
      writer.tensor(blk + "attn_norm.weight", {8}, kF32Tensor, f32_bytes(ramp(8)));
      writer.tensor(blk + "attn_q.weight", {8, 8}, kF32Tensor,
                    f32_bytes(l == 1 ? attn_q1 : ramp(64)));
    }
    return writer.bytes();
  }
  static constexpr uint32_t kF32Tensor = 0;
};

// Writes `file` as m.gguf in `dir`, opens it with open_weights, runs `use` on it, and returns the
// error; every file in `dir` must be byte-identical afterwards.
std::string gguf_error(const TempDir& dir, const Bytes& file,
                       const std::function<void(const WeightSource&)>& use = {}) {
  write_file(dir / "m.gguf", file);
  const auto before = snapshot_files(dir.path());
  const std::string message = error_of([&] {
    const auto weights = open_weights(dir / "m.gguf");
    if (use) use(*weights);
  });
  EXPECT_EQ(snapshot_files(dir.path()), before) << "a file changed";
  return message;
}

// ---- files that are not regular ----

TEST(ModelFiles, FifoIsRefusedAtOnce) {
  TempDir dir;
  const std::string fifo = dir / "model.gguf";
  make_fifo(fifo);
  const auto before = snapshot_files(dir.path());
  for (const auto& open : std::vector<std::function<void()>>{
           [&] { GgufFile::open(fifo); },
           [&] { open_weights(fifo); },
           [&] { SafetensorsFile::open(fifo); },
       }) {
    EXPECT_THAT(error_opening_fifo(fifo, open),
                AllOf(HasSubstr(fifo), HasSubstr("not a regular file (a FIFO)")));
  }
  EXPECT_EQ(snapshot_files(dir.path()), before);
  EXPECT_THAT(error_of([] { GgufFile::open("/dev/null"); }),
              HasSubstr("/dev/null: not a regular file (a character device)"));
}

TEST(ModelFiles, FifoInACheckpointIsRefusedAtOnce) {
  const json config = {{"architectures", {"LlamaForCausalLM"}},
                       {"hidden_size", 8},
                       {"intermediate_size", 16},
                       {"num_attention_heads", 2},
                       {"num_key_value_heads", 1},
                       {"num_hidden_layers", 1},
                       {"vocab_size", 10},
                       {"max_position_embeddings", 64}};
  {
    TempDir dir;  // config.json is a FIFO
    make_fifo(dir / "config.json");
    write_file(dir / "model.safetensors", safetensors_file("{}", {}));
    const auto before = snapshot_files(dir.path());
    EXPECT_THAT(error_opening_fifo(dir / "config.json", [&] { open_weights(dir.path()); }),
                AllOf(HasSubstr(dir / "config.json"), HasSubstr("not a regular file (a FIFO)")));
    EXPECT_EQ(snapshot_files(dir.path()), before);
  }
  {
    TempDir dir;  // the weights are a FIFO
    write_file(dir / "config.json", config.dump());
    make_fifo(dir / "model.safetensors");
    const auto before = snapshot_files(dir.path());
    EXPECT_THAT(
        error_opening_fifo(dir / "model.safetensors", [&] { open_weights(dir.path()); }),
        AllOf(HasSubstr(dir / "model.safetensors"), HasSubstr("not a regular file (a FIFO)")));
    EXPECT_EQ(snapshot_files(dir.path()), before);
  }
}

// ---- metadata arrays bounded before anything is allocated ----

// A GGUF file with one array key "big" of `count` elements of `type`, followed by `payload`.
Bytes array_file(uint32_t type, uint64_t count, const Bytes& payload) {
  ByteWriter writer;
  writer.text("GGUF").u32(3).u64(0).u64(1);
  writer.gguf_string("big").u32(kArray).u32(type).u64(count).raw(payload);
  return writer.bytes();
}

TEST(ModelFiles, ArrayLongerThanTheFileIsRefusedWithoutAllocating) {
  // 1 Mi u64 elements claimed (8 MiB) behind a file of a few dozen bytes.
  const Bytes file = array_file(kU64, 1ull << 20, Bytes(16, 0));
  EXPECT_THAT(error_of([&] { GgufFile::parse(file, "m.gguf"); }),
              HasSubstr("m.gguf: file is truncated: key 'big' holds an array of 1048576 u64 "
                        "elements, at least 8388608 bytes, but only 16 bytes follow"));
  EXPECT_LT(bytes_allocated_by([&] { GgufFile::parse(file, "m.gguf"); }), 4096u);
  // Strings take at least their 8-byte length each.
  const Bytes strings = array_file(kString, 1000, Bytes(7999, 0));
  EXPECT_THAT(error_of([&] { GgufFile::parse(strings, "m.gguf"); }),
              HasSubstr("array of 1000 string elements, at least 8000 bytes, but only 7999"));
}

TEST(ModelFiles, ArrayLongerThanAnyModelNeedsIsRefused) {
  // 64 Mi one-byte elements, all present: the file that once made the reader use 5-6 GB.
  const Bytes file = array_file(kU8, 1ull << 26, Bytes(size_t{1} << 26, 0));
  EXPECT_THAT(error_of([&] { GgufFile::parse(file, "m.gguf"); }),
              HasSubstr("key 'big': array of 67108864 elements is longer than any model needs "
                        "(at most 4194304)"));
  EXPECT_LT(bytes_allocated_by([&] { GgufFile::parse(file, "m.gguf"); }), 4096u);
}

TEST(ModelFiles, LongArraysStayInTheFileUntilRead) {
  // Eight arrays of 4 Mi bytes each: valid, and parsing allocates per key, not per element.
  ByteWriter writer;
  writer.text("GGUF").u32(3).u64(0).u64(8);
  for (int k = 0; k < 8; ++k) {
    writer.gguf_string("a" + std::to_string(k)).u32(kArray).u32(kU8).u64(1ull << 22);
    for (uint32_t i = 0; i < (1u << 22); ++i) writer.u8(static_cast<uint8_t>(i * 7 + k));
  }
  const Bytes file = writer.bytes();
  EXPECT_LT(bytes_allocated_by([&] { GgufFile::parse(file, "m.gguf"); }), 64u * 1024);
  const GgufFile parsed = GgufFile::parse(file, "m.gguf");
  const std::vector<int64_t> values = parsed.get_int_array("a3");
  ASSERT_EQ(values.size(), 1u << 22);
  EXPECT_EQ(values[0], 3);
  EXPECT_EQ(values[1000], static_cast<uint8_t>(1000 * 7 + 3));
  EXPECT_EQ(parsed.find("a3")->element_count, 1u << 22);
}

TEST(ModelFiles, SafetensorsHeaderLongerThanTheFileIsRefusedBeforeParsing) {
  Bytes file = safetensors_file("{}", {});
  const uint64_t length = 1u << 20;  // 1 MiB claimed, 2 bytes present
  std::memcpy(file.data(), &length, sizeof length);
  EXPECT_THAT(error_of([&] { SafetensorsFile::parse(file, "m.safetensors"); }),
              HasSubstr("m.safetensors: header length 1048576 exceeds the file size 10"));
  EXPECT_LT(bytes_allocated_by([&] { SafetensorsFile::parse(file, "m.safetensors"); }), 4096u);
}

// ---- GGUF metadata that contradicts the tensors ----

TEST(ModelFiles, GgufTinyModelLoads) {
  TempDir dir;
  EXPECT_EQ(gguf_error(dir, TinyGguf{}.bytes(),
                       [](const WeightSource& w) {
                         EXPECT_EQ(w.config().layers, 2);
                         w.load("model.layers.1.self_attn.q_proj.weight", {8, 8});
                       }),
            "(no error)");
}

TEST(ModelFiles, GgufBlockCountMustMatchTheLayers) {
  TempDir dir;
  TinyGguf fewer;
  fewer.block_count = 1;
  EXPECT_THAT(gguf_error(dir, fewer.bytes()),
              HasSubstr("m.gguf: llama.block_count is 1 but the file has tensors for 2 layers (up "
                        "to 'blk.1.attn_norm.weight')"));
  TinyGguf more;
  more.block_count = 3;
  EXPECT_THAT(gguf_error(dir, more.bytes()),
              HasSubstr("m.gguf: llama.block_count is 3 but the file has tensors for only 2 "
                        "layers"));
}

TEST(ModelFiles, GgufTensorTypeMustMatchItsBytes) {
  TempDir dir;
  TinyGguf model;
  // Declared F16 (2 bytes a value) over data written as F32: half the bytes up to the next tensor.
  model.extra = [](GgufWriter& writer) {
    writer.tensor("blk.0.attn_k.weight", {8, 4}, 1, f32_bytes(ramp(32)));
  };
  EXPECT_THAT(gguf_error(dir, model.bytes()),
              HasSubstr("m.gguf: tensor 'blk.0.attn_k.weight' of type F16 and shape [8, 4] takes "
                        "64 bytes, but its data spans 128 bytes (up to tensor "
                        "'token_embd.weight'): the type or shape does not match the data"));
}

TEST(ModelFiles, GgufHeadCountsNameTheKey) {
  TempDir dir;
  TinyGguf zero;
  zero.heads = 0;
  EXPECT_THAT(gguf_error(dir, zero.bytes()),
              HasSubstr("m.gguf: llama.attention.head_count must be positive, got 0"));
  TinyGguf odd;
  odd.heads = 3;  // 8 is not a multiple of 3
  EXPECT_THAT(gguf_error(dir, odd.bytes()),
              HasSubstr("m.gguf: llama.embedding_length (8) is not a multiple of "
                        "llama.attention.head_count (3)"));
  TinyGguf kv;
  kv.heads = 4;
  kv.kv_heads = 3;
  EXPECT_THAT(gguf_error(dir, kv.bytes()),
              HasSubstr("m.gguf: llama.attention.head_count (4 attention heads) is not a multiple "
                        "of llama.attention.head_count_kv (3 key/value heads)"));
  TinyGguf no_kv;
  no_kv.kv_heads = 0;
  EXPECT_THAT(gguf_error(dir, no_kv.bytes()),
              HasSubstr("m.gguf: llama.attention.head_count_kv must be positive, got 0"));
}

TEST(ModelFiles, GgufVocabularyMustFitTheEmbedding) {
  TempDir dir;
  TinyGguf sized;
  sized.extra = [](GgufWriter& writer) { writer.u32("llama.vocab_size", 12); };
  EXPECT_THAT(gguf_error(dir, sized.bytes()),
              HasSubstr("m.gguf: llama.vocab_size is 12 but tensor 'token_embd.weight' has 10 "
                        "rows"));
  TinyGguf tokens;
  tokens.extra = [](GgufWriter& writer) {
    writer.string_array("tokenizer.ggml.tokens", std::vector<std::string>(11, "t"));
  };
  EXPECT_THAT(gguf_error(dir, tokens.bytes()),
              HasSubstr("m.gguf: tokenizer.ggml.tokens has 11 entries but tensor "
                        "'token_embd.weight' has only 10 rows"));
}

TEST(ModelFiles, GgufRopeAndEpsilonMustBeFinite) {
  TempDir dir;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (float base : {nan, inf, 0.0f, -10000.0f}) {
    TinyGguf model;
    model.rope_base = base;
    EXPECT_THAT(gguf_error(dir, model.bytes()),
                HasSubstr("m.gguf: llama.rope.freq_base must be a finite number above 1, got "))
        << base;
  }
  TinyGguf eps;
  eps.rms_eps = nan;
  EXPECT_THAT(gguf_error(dir, eps.bytes()),
              HasSubstr("m.gguf: llama.attention.layer_norm_rms_epsilon must be a finite number "
                        "above 0, got nan"));
  TinyGguf scaling;
  scaling.extra = [&](GgufWriter& writer) {
    writer.string("llama.rope.scaling.type", "linear").f32("llama.rope.scaling.factor", inf);
  };
  EXPECT_THAT(gguf_error(dir, scaling.bytes()),
              HasSubstr("m.gguf: llama.rope.scaling.factor must be a finite number above 0"));
  TinyGguf factors;  // rope_freqs.weight: one divisor per pair of the head's 4 dimensions
  factors.extra = [&](GgufWriter& writer) {
    writer.tensor("rope_freqs.weight", {2}, 0, f32_bytes({1.0f, nan}));
  };
  EXPECT_THAT(gguf_error(dir, factors.bytes()),
              HasSubstr("m.gguf: tensor 'rope_freqs.weight' holds a non-finite value (NaN) at "
                        "element 1"));
}

// ---- non-finite weights ----

TEST(ModelFiles, GgufNonFiniteWeightNamesTensorAndElement) {
  TempDir dir;
  TinyGguf model;
  model.attn_q1[13] = std::numeric_limits<float>::quiet_NaN();
  const auto load_q = [](const WeightSource& w) {
    w.load("model.layers.1.self_attn.q_proj.weight", {8, 8});
  };
  EXPECT_THAT(gguf_error(dir, model.bytes(), load_q),
              HasSubstr("m.gguf: tensor 'blk.1.attn_q.weight' holds a non-finite value (NaN) at "
                        "element 13"));
  // A tensor-parallel shard reads only its rows; the element is numbered in the whole tensor.
  model.attn_q1[13] = 0.5f;
  model.attn_q1[45] = -std::numeric_limits<float>::infinity();
  EXPECT_THAT(gguf_error(dir, model.bytes(),
                         [](const WeightSource& w) {
                           w.load_rows("model.layers.1.self_attn.q_proj.weight", {8, 8}, 4, 4);
                         }),
              HasSubstr("tensor 'blk.1.attn_q.weight' holds a non-finite value (infinity) at "
                        "element 45"));
  EXPECT_EQ(gguf_error(dir, model.bytes(),
                       [](const WeightSource& w) {
                         w.load_rows("model.layers.1.self_attn.q_proj.weight", {8, 8}, 0, 4);
                       }),
            "(no error)");
}

TEST(ModelFiles, GgufNonFiniteQuantizationScaleIsFound) {
  TempDir dir;
  // Q8_0 blocks: an f16 scale then 32 int8 values. The second block's scale is infinite.
  Bytes blocks;
  for (int b = 0; b < 2; ++b) {
    const uint16_t scale = b == 1 ? 0x7c00 : 0x2000;  // f16 infinity : 2^-7
    blocks.push_back(static_cast<uint8_t>(scale & 0xff));
    blocks.push_back(static_cast<uint8_t>(scale >> 8));
    for (int i = 0; i < 32; ++i) blocks.push_back(static_cast<uint8_t>(i + 1));
  }
  TinyGguf model;
  model.extra = [&](GgufWriter& writer) {
    writer.tensor("blk.0.attn_v.weight", {32, 2}, 8, blocks);  // Q8_0
  };
  EXPECT_THAT(gguf_error(dir, model.bytes(),
                         [](const WeightSource& w) {
                           w.load("model.layers.0.self_attn.v_proj.weight", {2, 32});
                         }),
              HasSubstr("m.gguf: tensor 'blk.0.attn_v.weight' holds a non-finite value "
                        "(infinity) at element 32"));
}

// ---- Hugging Face checkpoints ----

class Checkpoint : public ::testing::Test {
 protected:
  static json config() {
    return {{"architectures", {"LlamaForCausalLM"}},
            {"hidden_size", 8},
            {"intermediate_size", 16},
            {"num_attention_heads", 2},
            {"num_key_value_heads", 1},
            {"num_hidden_layers", 2},
            {"vocab_size", 10},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 10000.0},
            {"max_position_embeddings", 64}};
  }
  static std::vector<SafetensorsEntry> tensors(int layers = 2, int64_t vocab = 10) {
    std::vector<SafetensorsEntry> entries = {
        {"model.embed_tokens.weight", "F32", {vocab, 8}, f32_bytes(ramp(size_t(vocab) * 8))}};
    for (int l = 0; l < layers; ++l)
      entries.push_back({"model.layers." + std::to_string(l) + ".input_layernorm.weight",
                         "F32",
                         {8},
                         f32_bytes(ramp(8))});
    return entries;
  }
  // Writes the checkpoint, opens it, runs `use`, returns the error; the files must not change.
  std::string error(const std::string& config_text, const std::vector<SafetensorsEntry>& entries,
                    const std::function<void(const WeightSource&)>& use = {}) {
    write_file(dir_ / "config.json", config_text);
    write_file(dir_ / "model.safetensors", safetensors_file(entries));
    const auto before = snapshot_files(dir_.path());
    const std::string message = error_of([&] {
      const auto weights = open_weights(dir_.path());
      if (use) use(*weights);
    });
    EXPECT_EQ(snapshot_files(dir_.path()), before) << "a file changed";
    return message;
  }
  std::string error(const json& config, const std::vector<SafetensorsEntry>& entries = tensors()) {
    return error(config.dump(), entries);
  }
  std::string config_path() const { return dir_ / "config.json"; }

  TempDir dir_;
};

TEST_F(Checkpoint, TinyCheckpointLoads) { EXPECT_EQ(error(config()), "(no error)"); }

TEST_F(Checkpoint, LayerCountMustMatchTheTensors) {
  json fewer = config();
  fewer["num_hidden_layers"] = 1;
  EXPECT_THAT(error(fewer), HasSubstr(config_path() + ": num_hidden_layers is 1 but the "
                                                      "checkpoint has tensors for 2 layers (up to "
                                                      "'model.layers.1.input_layernorm.weight')"));
  json more = config();
  more["num_hidden_layers"] = 5;
  EXPECT_THAT(error(more), HasSubstr(config_path() + ": num_hidden_layers is 5 but the "
                                                     "checkpoint has tensors for only 2 layers"));
}

TEST_F(Checkpoint, VocabSizeMustMatchTheEmbedding) {
  EXPECT_THAT(error(config(), tensors(2, 12)),
              HasSubstr(config_path() +
                        ": vocab_size is 10 but tensor "
                        "'model.embed_tokens.weight' in " +
                        (dir_ / "model.safetensors") + " has 12 rows"));
}

TEST_F(Checkpoint, HeadCountsNameTheKey) {
  json zero = config();
  zero["num_attention_heads"] = 0;
  EXPECT_THAT(error(zero), HasSubstr(config_path() + ": num_attention_heads must be positive, "
                                                     "got 0"));
  json odd = config();
  odd["num_attention_heads"] = 3;
  odd["num_key_value_heads"] = 3;
  EXPECT_THAT(error(odd), HasSubstr(config_path() + ": hidden_size (8) is not a multiple of "
                                                    "num_attention_heads (3)"));
  json kv = config();
  kv["num_attention_heads"] = 4;
  kv["num_key_value_heads"] = 3;
  EXPECT_THAT(error(kv), HasSubstr("num_attention_heads (4 attention heads) is not a multiple of "
                                   "num_key_value_heads (3 key/value heads)"));
}

TEST_F(Checkpoint, RopeParametersMustBeFinite) {
  // JSON has no NaN or infinity; a number too large for a double is refused by the parser.
  std::string text = config().dump();
  const std::string theta = "\"rope_theta\":10000.0";
  ASSERT_NE(text.find(theta), std::string::npos) << text;
  text.replace(text.find(theta), theta.size(), "\"rope_theta\":1e999");
  EXPECT_THAT(error(text, tensors()),
              HasSubstr(config_path() + ": not valid JSON: [json.exception.out_of_range.406] "
                                        "number overflow parsing '1e999'"));
  for (double bad : {0.0, -5.0}) {
    json c = config();
    c["rope_theta"] = bad;
    EXPECT_THAT(error(c),
                HasSubstr(config_path() + ": rope_theta must be a finite number above 1"));
  }
  json eps = config();
  eps["rms_norm_eps"] = 0.0;
  EXPECT_THAT(error(eps), HasSubstr(config_path() + ": rms_norm_eps must be a finite number above "
                                                    "0, got 0"));
  json yarn = config();
  yarn["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", -2.0}};
  EXPECT_THAT(error(yarn), HasSubstr(config_path() + ": rope_scaling.factor must be a finite "
                                                     "number above 0, got -2"));
}

TEST_F(Checkpoint, NonFiniteWeightNamesTensorAndElement) {
  std::vector<SafetensorsEntry> entries = tensors();
  // BF16 NaN (0x7fc0) at element 5 of the second layer's norm.
  std::vector<uint16_t> bf16(8, 0x3f80);  // 1.0
  bf16[5] = 0x7fc0;
  entries[2] = {"model.layers.1.input_layernorm.weight", "BF16", {8}, bytes_of(bf16)};
  const auto load_norm = [](const WeightSource& w) {
    w.load("model.layers.1.input_layernorm.weight", {8});
  };
  EXPECT_THAT(error(config().dump(), entries, load_norm),
              HasSubstr((dir_ / "model.safetensors") +
                        ": tensor 'model.layers.1.input_layernorm.weight' holds a non-finite "
                        "value (NaN) at element 5"));
  std::vector<uint16_t> f16(8, 0x3c00);  // 1.0
  f16[7] = 0xfc00;                       // -infinity
  entries[2].dtype = "F16";
  entries[2].data = bytes_of(f16);
  EXPECT_THAT(error(config().dump(), entries, load_norm),
              HasSubstr("'model.layers.1.input_layernorm.weight' holds a non-finite value "
                        "(infinity) at element 7"));
}

}  // namespace
}  // namespace hogwild

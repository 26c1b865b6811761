// The safetensors reader against files written byte by byte (model/file_writers.h): values of
// every float dtype compared with independently known bit patterns, and each kind of bad file
// rejected with a hogwild::Error that names the file and the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/error.h"
#include "model/file_writers.h"
#include "model/safetensors.h"
#include "test_support.h"

namespace hogwild {
namespace {

using ::testing::AllOf;
using testing::Bytes;
using testing::bytes_of;
using ::testing::HasSubstr;
using testing::safetensors_file;
using testing::SafetensorsEntry;
using ::testing::ThrowsMessage;

constexpr const char* kName = "weights.safetensors";

// The parsed file points into `bytes`: parsing a temporary is refused at compile time.
SafetensorsFile parse(const Bytes& bytes) { return SafetensorsFile::parse(bytes, kName); }
SafetensorsFile parse(Bytes&& bytes) = delete;

// Parsing `bytes` must throw a hogwild::Error naming the file and containing `problem`.
void expect_rejected(const Bytes& bytes, const std::string& problem) {
  EXPECT_THAT([&] { parse(bytes); },
              ThrowsMessage<Error>(AllOf(HasSubstr(kName), HasSubstr(problem))));
}

// A header with one tensor entry given as JSON text, and `data_bytes` zero bytes of data.
Bytes one_tensor(const std::string& entry_json, size_t data_bytes) {
  return safetensors_file("{\"w\":" + entry_json + "}", Bytes(data_bytes, 0));
}

TEST(Safetensors, F32RoundTrip) {
  const std::vector<float> values = {
      1.0f, -2.5f, 0.0f, 3.4e38f, std::numeric_limits<float>::denorm_min(), -1e-30f};
  const Bytes file = safetensors_file({{"layer.weight", "F32", {2, 3}, bytes_of(values)}});
  const SafetensorsFile parsed = parse(file);
  ASSERT_EQ(parsed.tensors().size(), 1u);
  const SafetensorsTensor* tensor = parsed.find("layer.weight");
  ASSERT_NE(tensor, nullptr);
  EXPECT_EQ(tensor->dtype, SafetensorsDType::F32);
  EXPECT_EQ(tensor->dtype_name, "F32");
  EXPECT_EQ(tensor->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(tensor->element_count(), 6);
  EXPECT_EQ(tensor->bytes, 24u);
  EXPECT_EQ(safetensors_to_float(*tensor, kName), values);
  EXPECT_EQ(parsed.find("missing"), nullptr);
}

TEST(Safetensors, F16BitPatterns) {
  // IEEE half: 0x3C00 = 1, 0xC000 = -2, 0x0001 = 2^-24 (smallest subnormal), 0x03FF = 1023 * 2^-24
  // (largest subnormal), 0x0400 = 2^-14 (smallest normal), 0x7BFF = 65504 (largest), 0x3555 =
  // 0.333251953125, 0x8000 = -0, 0x7C00 = inf, 0xFC00 = -inf.
  const std::vector<uint16_t> bits = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400,
                                      0x7BFF, 0x3555, 0x8000, 0x7C00, 0xFC00};
  const std::vector<float> expected = {1.0f,
                                       -2.0f,
                                       std::ldexp(1.0f, -24),
                                       std::ldexp(1023.0f, -24),
                                       std::ldexp(1.0f, -14),
                                       65504.0f,
                                       0.333251953125f,
                                       -0.0f,
                                       std::numeric_limits<float>::infinity(),
                                       -std::numeric_limits<float>::infinity()};
  const Bytes file = safetensors_file({{"h", "F16", {10}, bytes_of(bits)}});
  const SafetensorsFile parsed = parse(file);
  const std::vector<float> values = safetensors_to_float(*parsed.find("h"), kName);
  EXPECT_EQ(values, expected);
  EXPECT_TRUE(std::signbit(values[7]));
}

TEST(Safetensors, F16NaNStaysNaN) {
  const std::vector<uint16_t> bits = {0x7E00, 0xFC01};
  const Bytes file = safetensors_file({{"h", "F16", {2}, bytes_of(bits)}});
  const SafetensorsFile parsed = parse(file);
  for (float value : safetensors_to_float(*parsed.find("h"), kName)) EXPECT_TRUE(std::isnan(value));
}

TEST(Safetensors, BF16BitPatterns) {
  // bfloat16 is the top half of a float: 0x3F80 = 1, 0xC040 = -3, 0x4049 = 3.140625,
  // 0x0001 = 2^-133 (smallest subnormal), 0x0080 = 2^-126, 0x7F80 = inf, 0xFF80 = -inf.
  const std::vector<uint16_t> bits = {0x3F80, 0xC040, 0x4049, 0x0001, 0x0080, 0x7F80, 0xFF80};
  const std::vector<float> expected = {1.0f,
                                       -3.0f,
                                       3.140625f,
                                       std::ldexp(1.0f, -133),
                                       std::ldexp(1.0f, -126),
                                       std::numeric_limits<float>::infinity(),
                                       -std::numeric_limits<float>::infinity()};
  const Bytes file = safetensors_file({{"b", "BF16", {7, 1}, bytes_of(bits)}});
  const SafetensorsFile parsed = parse(file);
  EXPECT_EQ(safetensors_to_float(*parsed.find("b"), kName), expected);
}

TEST(Safetensors, SeveralTensorsAndMetadata) {
  const std::vector<float> a = {1, 2, 3, 4};
  const std::vector<uint16_t> b = {0x3C00, 0x4000};  // 1, 2 in half
  const Bytes file = safetensors_file({{"a", "F32", {2, 2}, bytes_of(a)},
                                       {"b", "F16", {2}, bytes_of(b)},
                                       {"s", "F32", {}, bytes_of(std::vector<float>{7})}},
                                      {{"format", "pt"}, {"note", "hello"}});
  const SafetensorsFile parsed = parse(file);
  EXPECT_EQ(parsed.name(), kName);
  EXPECT_EQ(parsed.tensors().size(), 3u);
  EXPECT_EQ(parsed.metadata().at("format"), "pt");
  EXPECT_EQ(parsed.metadata().at("note"), "hello");
  EXPECT_EQ(safetensors_to_float(*parsed.find("a"), kName), a);
  EXPECT_EQ(safetensors_to_float(*parsed.find("b"), kName), (std::vector<float>{1, 2}));
  const SafetensorsTensor& scalar = *parsed.find("s");  // shape [] is a scalar: one element
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.element_count(), 1);
  EXPECT_EQ(safetensors_to_float(scalar, kName), (std::vector<float>{7}));
}

TEST(Safetensors, UnalignedDataAndEmptyTensor) {
  // A 3-byte-odd header puts the data at an unaligned address; an empty tensor has begin == end.
  const std::vector<float> values = {0.5f, -0.25f};
  Bytes data = bytes_of(values);
  const std::string header = R"({"e":{"dtype":"F32","shape":[0,4],"data_offsets":[8,8]},)"
                             R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   )";
  const Bytes file = safetensors_file(header, data);
  const SafetensorsFile parsed = parse(file);
  EXPECT_EQ(safetensors_to_float(*parsed.find("x"), kName), values);
  EXPECT_EQ(parsed.find("e")->element_count(), 0);
  EXPECT_TRUE(safetensors_to_float(*parsed.find("e"), kName).empty());
}

TEST(Safetensors, OtherDtypesParseButDoNotConvert) {
  const Bytes file = safetensors_file({{"ids", "I32", {3}, bytes_of(std::vector<int32_t>{1, 2, 3})},
                                       {"mask", "BOOL", {2}, Bytes{1, 0}},
                                       {"f8", "F8_E4M3", {1}, Bytes{0x38}},
                                       {"d", "F64", {1}, bytes_of(std::vector<double>{1.0})}});
  const SafetensorsFile parsed = parse(file);
  EXPECT_EQ(parsed.find("ids")->dtype, SafetensorsDType::I32);
  EXPECT_EQ(parsed.find("mask")->dtype, SafetensorsDType::Bool);
  EXPECT_EQ(parsed.find("f8")->dtype, SafetensorsDType::F8_E4M3);
  EXPECT_THAT([&] { safetensors_to_float(*parsed.find("ids"), kName); },
              ThrowsMessage<Error>(AllOf(HasSubstr(kName), HasSubstr("'ids'"), HasSubstr("I32"))));
}

TEST(Safetensors, OpenMapsTheFile) {
  testing::TempDir dir;
  const std::vector<float> values = {4, 5, 6};
  const std::string path = dir / "model.safetensors";
  testing::write_file(path, safetensors_file({{"t", "F32", {3}, bytes_of(values)}}));
  SafetensorsFile opened = SafetensorsFile::open(path);
  const SafetensorsFile moved = std::move(opened);
  EXPECT_EQ(moved.name(), path);
  EXPECT_EQ(safetensors_to_float(*moved.find("t"), path), values);
}

TEST(Safetensors, OpenErrorsNameThePath) {
  testing::TempDir dir;
  const std::string missing = dir / "missing.safetensors";
  EXPECT_THAT([&] { SafetensorsFile::open(missing); },
              ThrowsMessage<Error>(AllOf(HasSubstr(missing), HasSubstr("cannot open"))));
  EXPECT_THAT([&] { SafetensorsFile::open(dir.path()); },
              ThrowsMessage<Error>(AllOf(HasSubstr(dir.path()), HasSubstr("directory"))));
  const std::string empty = dir / "empty.safetensors";
  testing::write_file(empty, Bytes{});
  EXPECT_THAT([&] { SafetensorsFile::open(empty); },
              ThrowsMessage<Error>(AllOf(HasSubstr(empty), HasSubstr("too short"))));
}

TEST(Safetensors, RejectsBadHeaderLength) {
  expect_rejected(Bytes{}, "too short");
  expect_rejected(Bytes{1, 0, 0}, "too short");
  testing::ByteWriter larger_than_file;
  larger_than_file.u64(100).text("{}");
  expect_rejected(larger_than_file.bytes(), "exceeds the file size");
  testing::ByteWriter huge;
  huge.u64(uint64_t{1} << 40).text("{}");
  expect_rejected(huge.bytes(), "limit");
  testing::ByteWriter all_ones;
  all_ones.u64(~uint64_t{0});
  expect_rejected(all_ones.bytes(), "limit");
}

TEST(Safetensors, RejectsBadJson) {
  expect_rejected(safetensors_file("{\"w\": ", {}), "not valid JSON");
  expect_rejected(safetensors_file("", {}), "not valid JSON");
  expect_rejected(safetensors_file(std::string("{}\0", 3), {}), "not valid JSON");
  expect_rejected(safetensors_file("{\"\xff\": 1}", {}), "not valid JSON");  // not UTF-8
  expect_rejected(safetensors_file("[1, 2]", {}), "header is a JSON array, expected an object");
  expect_rejected(safetensors_file("\"text\"", {}), "expected an object");
  expect_rejected(safetensors_file(R"({"w": 3})", {}), "tensor 'w': entry is not a JSON object");
}

TEST(Safetensors, AcceptsEmptyHeaderObject) {
  const Bytes file = safetensors_file("{}      ", {});
  const SafetensorsFile parsed = parse(file);
  EXPECT_TRUE(parsed.tensors().empty());
}

TEST(Safetensors, RejectsBadDtype) {
  expect_rejected(one_tensor(R"({"dtype":"F12","shape":[1],"data_offsets":[0,4]})", 4),
                  "tensor 'w': unknown dtype 'F12'");
  expect_rejected(one_tensor(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})", 4),
                  "unknown dtype 'f32'");
  expect_rejected(one_tensor(R"({"shape":[1],"data_offsets":[0,4]})", 4),
                  "tensor 'w': missing or non-string 'dtype'");
  expect_rejected(one_tensor(R"({"dtype":4,"shape":[1],"data_offsets":[0,4]})", 4), "'dtype'");
}

TEST(Safetensors, RejectsBadShape) {
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", 4),
                  "tensor 'w': shape [-1] has an extent that is not a non-negative integer");
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,4]})", 4),
                  "not a non-negative integer");
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,4]})", 4),
                  "not a non-negative integer");
  expect_rejected(
      one_tensor(R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]})", 4),
      "not a non-negative integer");
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":4,"data_offsets":[0,4]})", 4),
                  "missing or non-array 'shape'");
  expect_rejected(one_tensor(R"({"dtype":"F32","data_offsets":[0,4]})", 4), "'shape'");
  // 2^32 * 2^32 elements overflow int64; 2^62 F32 elements overflow the byte count.
  expect_rejected(
      one_tensor(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]})", 4),
      "too many elements");
  expect_rejected(
      one_tensor(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]})", 0),
      "too many bytes");
  // A zero extent makes a later huge one harmless.
  const Bytes zero =
      one_tensor(R"({"dtype":"F32","shape":[0,9223372036854775807],"data_offsets":[0,0]})", 0);
  EXPECT_NO_THROW(parse(zero));
}

TEST(Safetensors, RejectsBadOffsets) {
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 4),
                  "tensor 'w': data_offsets [0,8] run past the end of the data section (4 bytes)");
  expect_rejected(
      one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]})", 8),
      "run past the end");
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})", 8),
                  "tensor 'w': data_offsets [0,4] span 4 bytes but F32 shape [2] needs 8");
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})", 8),
                  "end before they begin");
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", 8),
                  "not non-negative integers");
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})", 8),
                  "'data_offsets'");
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", 8),
                  "'data_offsets'");
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[1]})", 8), "'data_offsets'");
}

TEST(Safetensors, RejectsOverlapAndDuplicates) {
  expect_rejected(safetensors_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                   R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                   Bytes(12, 0)),
                  "tensors 'a' and 'b' overlap");
  expect_rejected(safetensors_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                   R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                   Bytes(8, 0)),
                  "the key 'a' twice");
}

TEST(Safetensors, RejectsBadMetadata) {
  expect_rejected(safetensors_file(R"({"__metadata__":{"format":1}})", {}),
                  "__metadata__ value of 'format' is a number, expected a string");
  expect_rejected(safetensors_file(R"({"__metadata__":["pt"]})", {}),
                  "__metadata__ is not a JSON object");
}

TEST(Safetensors, RejectsDeepNesting) {
  // nlohmann parses any depth but dump() recurses: 200000 levels would overflow the stack.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,4]})", 4),
                  "header nests JSON more than 16 levels deep");
  expect_rejected(safetensors_file(std::string(17, '[') + std::string(17, ']'), {}),
                  "16 levels deep");
  // Brackets inside strings (with escaped quotes) do not count.
  const Bytes file =
      safetensors_file(R"({"__metadata__":{"k":"\"[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{"}})", {});
  const SafetensorsFile parsed = parse(file);
  EXPECT_EQ(parsed.metadata().at("k"), "\"[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{");
}

TEST(Safetensors, RejectsTruncatedData) {
  const std::vector<float> values = {1, 2, 3, 4};
  Bytes file = safetensors_file({{"layer.weight", "F32", {4}, bytes_of(values)}});
  file.pop_back();  // not resize(size() - 1): GCC 12 with ASan warns (-Wstringop-overflow) on that
  expect_rejected(file, "tensor 'layer.weight': data_offsets [0,16] run past the end");
}

TEST(Safetensors, EveryPrefixOfAValidFileIsRejected) {
  const Bytes file =
      safetensors_file({{"a", "F32", {2}, bytes_of(std::vector<float>{1, 2})},
                        {"b", "BF16", {3}, bytes_of(std::vector<uint16_t>{1, 2, 3})}},
                       {{"format", "pt"}});
  ASSERT_NO_THROW(parse(file));
  for (size_t length = 0; length < file.size(); ++length) {
    const Bytes prefix(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(length));
    EXPECT_THROW(parse(prefix), Error) << "prefix of " << length << " bytes";
  }
}

}  // namespace
}  // namespace hogwild

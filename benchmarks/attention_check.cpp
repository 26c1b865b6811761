// One Backend::block_attention call in the Hogwild layout, with its inputs and output written to
// files for an outside reference (benchmarks/attention_check.py: docs/design.md §3-§4 in torch).
//
// Layout: a shared common block of --keys keys and --workers worker blocks (worker w: 24 + 7w
// tokens); pages of 32 rows in shuffled pool order. Each worker has --rows query rows: its last
// tokens, each reading the view [common, the other workers' blocks in order, own block], with its
// own block visible causally (docs/design.md §2). Qwen3-8B attention geometry (32 query heads,
// 8 KV heads, head dim 128, theta 1e6), K/V pools in --kv f32 or bf16. Random inputs in [-1, 1),
// queries scaled by 4 so the softmax is far from uniform.
//
//   attention_check --out DIR [--backend cpu|cuda] [--keys 16384] [--workers 4] [--rows 3]
//                   [--kv f32|bf16] [--seed N]
//
// DIR gets meta.json (geometry, every block's length and pages, every row's view and position),
// q.f32 [rows, 32*128], keys.f32 and values.f32 [pool rows, 8*128] (read back from the pools,
// so bf16 pools give their rounded values), out.f32 [rows, 32*128]; raw little-endian floats.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench_support.h"
#include "common/error.h"
#include "driver_flags.h"
#include "kernels/backend.h"
#include "kernels/view_entry.h"

namespace {

constexpr int64_t kHeads = 32, kKvHeads = 8, kHeadDim = 128, kPageSize = 32;
constexpr double kTheta = 1e6;

struct Flags {
  std::string out, backend = "cpu", kv = "f32";
  int64_t keys = 16384, workers = 4, rows = 3;
  uint64_t seed = 7;
};

Flags parse(int argc, char** argv) {
  using hogwild::bench::parse_count;
  Flags flags;
  hogwild::bench::for_each_flag(argc, argv, [&](const std::string& flag, const std::string& value) {
    if (flag == "--out") {
      flags.out = value;
    } else if (flag == "--backend") {
      flags.backend = value;
    } else if (flag == "--kv") {
      flags.kv = hogwild::bench::parse_choice(flag, value, {"f32", "bf16"});
    } else if (flag == "--keys") {
      flags.keys = parse_count(flag, value, 1, 1 << 20);
    } else if (flag == "--workers") {
      flags.workers = parse_count(flag, value, 1, 64);
    } else if (flag == "--rows") {
      flags.rows = parse_count(flag, value, 1, 24);
    } else if (flag == "--seed") {
      flags.seed = static_cast<uint64_t>(parse_count(flag, value, 0, INT32_MAX));
    } else {
      hogwild::fail("unknown flag '", flag,
                    "' (--out --backend --kv --keys --workers --rows --seed)");
    }
  });
  HOGWILD_CHECK(!flags.out.empty(), "--out is required");
  return flags;
}

void write(const std::string& path, const void* data, size_t bytes) {
  std::ofstream file(path, std::ios::binary);
  file.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  HOGWILD_CHECK(file.good(), path, ": cannot write ", bytes, " bytes");
}

std::vector<float> download(hogwild::Backend& backend, const hogwild::Tensor& t) {
  std::vector<float> host(static_cast<size_t>(t.rows * t.cols));
  backend.download_f32(t, host.data());
  return host;
}

std::string list(const std::vector<int64_t>& values) {
  std::string text = "[";
  for (size_t i = 0; i < values.size(); ++i)
    text += (i > 0 ? ", " : "") + std::to_string(values[i]);
  return text + "]";
}

int run(const Flags& flags) {
  const auto backend = hogwild::make_backend(flags.backend, 0);
  const hogwild::DType kv_dtype = flags.kv == "bf16" ? hogwild::DType::BF16 : hogwild::DType::F32;
  HOGWILD_CHECK(backend->supports(hogwild::BackendOp::BlockAttention, kv_dtype), "--kv ", flags.kv,
                ": the ", backend->name(), " backend has no such K/V pools");

  // Blocks: 0 = common, 1..W = workers; pages shuffled across the pool.
  std::vector<int64_t> lengths = {flags.keys};
  for (int64_t w = 0; w < flags.workers; ++w) lengths.push_back(24 + 7 * w);
  std::vector<int64_t> page_counts;
  int64_t pages = 0, max_pages = 0;
  for (int64_t length : lengths) {
    page_counts.push_back((length + kPageSize - 1) / kPageSize);
    pages += page_counts.back();
    max_pages = std::max(max_pages, page_counts.back());
  }
  std::vector<int32_t> order(static_cast<size_t>(pages));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 shuffle(flags.seed);
  std::shuffle(order.begin(), order.end(), shuffle);
  const int64_t blocks = static_cast<int64_t>(lengths.size());
  std::vector<int32_t> table(static_cast<size_t>(blocks * max_pages), 0);
  std::vector<std::vector<int64_t>> block_pages(lengths.size());
  size_t next = 0;
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t p = 0; p < page_counts[static_cast<size_t>(b)]; ++p) {
      table[static_cast<size_t>(b * max_pages + p)] = order[next];
      block_pages[static_cast<size_t>(b)].push_back(order[next++]);
    }

  // Query rows: the last `rows` tokens of each worker's own block.
  std::vector<int32_t> offsets = {0};
  std::vector<hogwild::ViewEntry> entries;
  std::string rows_json;
  int64_t n = 0;
  for (int64_t w = 0; w < flags.workers; ++w) {
    std::vector<int32_t> view = {0};
    for (int64_t other = 0; other < flags.workers; ++other)
      if (other != w) view.push_back(static_cast<int32_t>(1 + other));
    view.push_back(static_cast<int32_t>(1 + w));
    std::vector<int64_t> view_lengths, view_blocks;
    for (int32_t b : view) {
      view_lengths.push_back(lengths[static_cast<size_t>(b)]);
      view_blocks.push_back(b);
    }
    const int64_t total = std::accumulate(view_lengths.begin(), view_lengths.end(), int64_t{0});
    const int64_t own = lengths[static_cast<size_t>(1 + w)];
    for (int64_t r = std::max<int64_t>(0, own - flags.rows); r < own; ++r) {
      const int64_t position = total - own + r;
      append_view_entries(view, view_lengths, position, entries);
      offsets.push_back(static_cast<int32_t>(entries.size()));
      rows_json += std::string(n > 0 ? ",\n  " : "") + "{\"view\": " + list(view_blocks) +
                   ", \"lengths\": " + list(view_lengths) +
                   ", \"position\": " + std::to_string(position) + "}";
      ++n;
    }
  }

  hogwild::bench::Random random{flags.seed * 0x9e3779b97f4a7c15ull + 1};
  const int64_t pool_rows = pages * kPageSize;
  std::vector<float> host(static_cast<size_t>(std::max(pool_rows, n) * kHeads * kHeadDim));
  auto fill = [&](const hogwild::Tensor& t, float scale) {
    for (int64_t i = 0; i < t.rows * t.cols; ++i)
      host[static_cast<size_t>(i)] = scale * random.next();
    backend->upload_f32(t, host.data());
  };
  const hogwild::Tensor keys = backend->allocate(pool_rows, kKvHeads * kHeadDim, kv_dtype);
  const hogwild::Tensor values = backend->allocate(pool_rows, kKvHeads * kHeadDim, kv_dtype);
  const hogwild::Tensor q = backend->allocate(n, kHeads * kHeadDim, hogwild::DType::F32);
  const hogwild::Tensor out = backend->allocate(n, kHeads * kHeadDim, hogwild::DType::F32);
  fill(keys, 1.0f);
  fill(values, 1.0f);
  fill(q, 4.0f);
  const hogwild::Tensor page_table = backend->allocate(blocks, max_pages, hogwild::DType::I32);
  backend->upload_i32(page_table, table.data());
  const hogwild::Tensor view_offsets =
      backend->allocate(static_cast<int64_t>(offsets.size()), 1, hogwild::DType::I32);
  backend->upload_i32(view_offsets, offsets.data());
  const hogwild::Tensor view_entries =
      backend->allocate(static_cast<int64_t>(entries.size()), 3, hogwild::DType::I32);
  backend->upload_i32(view_entries, &entries.front().block);
  std::vector<float> frequencies(kHeadDim / 2);
  for (int64_t k = 0; k < kHeadDim / 2; ++k)
    frequencies[static_cast<size_t>(k)] =
        static_cast<float>(std::pow(kTheta, -2.0 * static_cast<double>(k) / kHeadDim));
  const hogwild::Tensor inv_freq = backend->allocate(1, kHeadDim / 2, hogwild::DType::F32);
  backend->upload_f32(inv_freq, frequencies.data());
  const hogwild::AttentionShape shape{kHeads, kKvHeads, kHeadDim,
                                      static_cast<float>(1.0 / std::sqrt(double{kHeadDim}))};
  backend->block_attention(q, keys, values, page_table, kPageSize, view_offsets, view_entries,
                           inv_freq, shape, out);
  backend->synchronize();

  const std::string dir = flags.out + "/";
  for (const auto& [name, tensor] : {std::pair{"q.f32", q}, std::pair{"keys.f32", keys},
                                     std::pair{"values.f32", values}, std::pair{"out.f32", out}}) {
    const std::vector<float> data = download(*backend, tensor);
    write(dir + name, data.data(), data.size() * sizeof(float));
  }
  std::string blocks_json;
  for (int64_t b = 0; b < blocks; ++b)
    blocks_json += std::string(b > 0 ? ",\n  " : "") +
                   "{\"length\": " + std::to_string(lengths[static_cast<size_t>(b)]) +
                   ", \"pages\": " + list(block_pages[static_cast<size_t>(b)]) + "}";
  const std::string meta =
      "{\"backend\": \"" + backend->name() + "\", \"kv\": \"" + flags.kv +
      "\", \"heads\": " + std::to_string(kHeads) + ", \"kv_heads\": " + std::to_string(kKvHeads) +
      ", \"head_dim\": " + std::to_string(kHeadDim) +
      ", \"page_size\": " + std::to_string(kPageSize) + ", \"theta\": " + std::to_string(kTheta) +
      ", \"workers\": " + std::to_string(flags.workers) +
      ", \"keys\": " + std::to_string(flags.keys) +
      ", \"pool_rows\": " + std::to_string(pool_rows) + ", \"rows\": " + std::to_string(n) +
      ",\n \"blocks\": [\n  " + blocks_json + "],\n \"queries\": [\n  " + rows_json + "]}\n";
  write(dir + "meta.json", meta.data(), meta.size());
  std::printf("attention_check: %lld rows over %lld keys (%lld workers, %s K/V) on %s -> %s\n",
              static_cast<long long>(n), static_cast<long long>(flags.keys),
              static_cast<long long>(flags.workers), flags.kv.c_str(), backend->name().c_str(),
              flags.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_check: %s\n", e.what());
    return 1;
  }
}

// Latency and bandwidth of the Communicator's collectives over MPI, in the manner of nccl-tests:
// one driver (flags, timing, checking, printing) and a small table of collectives, each a struct
// that says how a message size becomes element counts, how to fill and check the buffers, its
// bus-bandwidth factor and how to run it.
//
//   mpirun -np N build/cpu/bin/bench_collectives [-b 8] [-e 64M] [-f 2] [-n 20] [-w 5] [-c 0|1]
//                                                [-r ROOT] [-a all_reduce|all_gather|broadcast|all]
//   mpirun -np N build/cpu/bin/bench_collectives --engine-shapes qwen3-8b|qwq-32b|all|HIDDEN
//                                                [--layers L] [--kv-width K] [--workers W]
//
// Columns (as nccl-tests): size is the larger of one rank's input and output in bytes (for
// all_gather the whole gathered result), count the floats each rank passes to the call, time the
// mean over iterations of the slowest rank's time (µs), algbw = size / time and busbw = algbw ×
// the collective's factor, which makes busbw comparable with the link's bandwidth whatever the
// number of ranks:
//   all_reduce  2(n-1)/n   (a ring sends and receives each byte 2(n-1)/n times)
//   all_gather   (n-1)/n   (each rank receives the n-1 slices it does not hold)
//   broadcast        1
// #wrong counts, over all ranks, the elements of one checked run (-c 1) that differ bit for bit
// from the expected result: all_reduce_sum promises the rank-order sum, so even its rounding is
// checked exactly.
//
// --engine-shapes times the messages the engine sends per decode step, one token per worker:
// all_reduce of tokens × hidden floats (tensor parallel, after attention and after the FFN: twice
// per layer), all_gather of the step's new keys and values, tokens × kv_width × 2 floats in all
// (worker groups share the cache, once per layer), and all_gather of the sampled tokens (once).
// All run over the N ranks, i.e. as if the tensor-parallel group, respectively the worker axis,
// had N ranks (a T × G grid sends the all_reduce over T ranks and kv_width / T over G ranks).
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "comm/communicator.h"
#include "comm/mpi_communicator.h"
#include "common/error.h"

namespace hogwild {
namespace {

// MPI counts are int: messages of at most 1 GiB keep every call in range.
constexpr size_t kMaxBytes = size_t{1} << 30;

// Element `index` of rank `rank`'s input: a float in [-1, 1) with a full 24-bit mantissa (sums
// round, so the rank-order check means something). Any rank can recompute any other rank's input,
// so checking needs no communication.
float input_value(int rank, size_t index) {
  uint64_t z = (static_cast<uint64_t>(rank) << 40) ^ index;
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

// Outside [-1, 1): an output element that a collective forgot to write never passes the check.
constexpr float kUnwritten = 7.0f;

bool same_bits(float a, float b) {
  return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

// Floats per rank. In-place collectives keep their data in `recv` and have send == 0.
struct Counts {
  size_t count = 0;  // what each rank passes to the call (the "count" column)
  size_t send = 0;
  size_t recv = 0;
};

struct Buffers {
  std::vector<float> send;
  std::vector<float> recv;
};

struct Collective {
  const char* name;
  // Counts for a message of `bytes` (the "size" column), at least one element per rank.
  Counts (*counts)(size_t bytes, int ranks);
  double (*bus_factor)(int ranks);
  void (*fill)(Buffers& buffers, int rank, int root);
  // Wrong elements on this rank after one run.
  size_t (*check)(const Buffers& buffers, int ranks, int root);
  void (*run)(Communicator& comm, Buffers& buffers, int root);
};

size_t floats_in(size_t bytes) { return std::max<size_t>(bytes / sizeof(float), 1); }

// The "size" column: the larger of one rank's input and output.
size_t message_bytes(const Counts& counts) {
  return std::max(counts.send, counts.recv) * sizeof(float);
}

// ---- all_reduce: in place, the sum over ranks in rank order --------------------------------
constexpr Collective kAllReduce{
    .name = "all_reduce",
    .counts =
        [](size_t bytes, int) {
          return Counts{floats_in(bytes), 0, floats_in(bytes)};
        },
    .bus_factor = [](int ranks) { return 2.0 * (ranks - 1) / ranks; },
    .fill =
        [](Buffers& b, int rank, int) {
          for (size_t i = 0; i < b.recv.size(); ++i) b.recv[i] = input_value(rank, i);
        },
    .check =
        [](const Buffers& b, int ranks, int) {
          size_t wrong = 0;
          for (size_t i = 0; i < b.recv.size(); ++i) {
            float sum = input_value(0, i);
            for (int r = 1; r < ranks; ++r) sum += input_value(r, i);
            wrong += same_bits(b.recv[i], sum) ? 0 : 1;
          }
          return wrong;
        },
    .run = [](Communicator& comm, Buffers& b,
              int) { comm.all_reduce_sum(b.recv.data(), b.recv.size()); },
};

// ---- all_gather: size is the gathered whole, each rank sends size / n ------------------------
constexpr Collective kAllGather{
    .name = "all_gather",
    .counts =
        [](size_t bytes, int ranks) {
          const size_t per_rank =
              std::max<size_t>(bytes / sizeof(float) / static_cast<size_t>(ranks), 1);
          return Counts{per_rank, per_rank, per_rank * static_cast<size_t>(ranks)};
        },
    .bus_factor = [](int ranks) { return static_cast<double>(ranks - 1) / ranks; },
    .fill =
        [](Buffers& b, int rank, int) {
          for (size_t i = 0; i < b.send.size(); ++i) b.send[i] = input_value(rank, i);
          std::fill(b.recv.begin(), b.recv.end(), kUnwritten);
        },
    .check =
        [](const Buffers& b, int ranks, int) {
          const size_t per_rank = b.recv.size() / static_cast<size_t>(ranks);
          size_t wrong = 0;
          for (int r = 0; r < ranks; ++r)
            for (size_t i = 0; i < per_rank; ++i)
              wrong += same_bits(b.recv[static_cast<size_t>(r) * per_rank + i], input_value(r, i))
                           ? 0
                           : 1;
          return wrong;
        },
    .run =
        [](Communicator& comm, Buffers& b, int) {
          comm.all_gather(b.send.data(), b.recv.data(), b.send.size() * sizeof(float));
        },
};

// ---- broadcast: in place from `root`; the others start from their own data -------------------
constexpr Collective kBroadcast{
    .name = "broadcast",
    .counts =
        [](size_t bytes, int) {
          return Counts{floats_in(bytes), 0, floats_in(bytes)};
        },
    .bus_factor = [](int) { return 1.0; },
    .fill =
        [](Buffers& b, int rank, int) {
          for (size_t i = 0; i < b.recv.size(); ++i) b.recv[i] = input_value(rank, i);
        },
    .check =
        [](const Buffers& b, int, int root) {
          size_t wrong = 0;
          for (size_t i = 0; i < b.recv.size(); ++i)
            wrong += same_bits(b.recv[i], input_value(root, i)) ? 0 : 1;
          return wrong;
        },
    .run = [](Communicator& comm, Buffers& b,
              int root) { comm.broadcast(b.recv.data(), b.recv.size() * sizeof(float), root); },
};

constexpr const Collective* kCollectives[] = {&kAllReduce, &kAllGather, &kBroadcast};

// ---- the driver --------------------------------------------------------------------------------

struct Options {
  size_t min_bytes = 8;
  size_t max_bytes = size_t{64} << 20;
  size_t factor = 2;
  int iterations = 20;
  int warmup = 5;
  bool check = false;
  int root = 0;
  std::vector<const Collective*> collectives{std::begin(kCollectives), std::end(kCollectives)};
  std::string engine_shapes;  // empty: the size sweep
  int workers = 4;
  int layers = 36;
  int kv_width = 8 * 128;
};

constexpr char kUsage[] =
    "usage: bench_collectives [-b MIN_BYTES] [-e MAX_BYTES] [-f FACTOR] [-n ITERATIONS]\n"
    "           [-w WARMUP] [-c 0|1] [-r ROOT] [-a all_reduce|all_gather|broadcast|all]\n"
    "       bench_collectives --engine-shapes qwen3-8b|qwq-32b|all|HIDDEN [--layers L]\n"
    "           [--kv-width K] [--workers W] [-n ..] [-w ..] [-c ..]\n"
    "Sizes take a K, M or G suffix (binary).\n"
    "Defaults: -b 8 -e 64M -f 2 -n 20 -w 5 -c 0 -r 0 -a all; --layers 36 --kv-width 1024\n"
    "--workers 4 (layers and kv-width apply to a numeric HIDDEN).\n";

// "64M" -> 67108864; whole numbers with an optional binary suffix.
size_t parse_size(std::string_view flag, std::string_view text) {
  size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
  size_t scale = 1;
  if (suffix == "K" || suffix == "k")
    scale = size_t{1} << 10;
  else if (suffix == "M" || suffix == "m")
    scale = size_t{1} << 20;
  else if (suffix == "G" || suffix == "g")
    scale = size_t{1} << 30;
  else if (!suffix.empty())
    scale = 0;
  HOGWILD_CHECK(error == std::errc() && scale != 0 && value <= kMaxBytes / scale, flag,
                " expects a size in bytes (like 8, 64K, 64M) up to 1G, got '", text, "'");
  return value * scale;
}

int parse_int(std::string_view flag, std::string_view text, int low, int high) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  HOGWILD_CHECK(
      error == std::errc() && end == text.data() + text.size() && value >= low && value <= high,
      flag, " expects a whole number in ", low, "..", high, ", got '", text, "'");
  return value;
}

// Returns false when the usage was asked for.
bool parse_options(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "-h" || flag == "--help") return false;
    HOGWILD_CHECK(i + 1 < argc, "flag ", flag, " needs a value (see --help)");
    const std::string_view value = argv[++i];
    if (flag == "-b")
      options.min_bytes = parse_size(flag, value);
    else if (flag == "-e")
      options.max_bytes = parse_size(flag, value);
    else if (flag == "-f")
      options.factor = static_cast<size_t>(parse_int(flag, value, 2, 1024));
    else if (flag == "-n")
      options.iterations = parse_int(flag, value, 1, 1000000);
    else if (flag == "-w")
      options.warmup = parse_int(flag, value, 0, 1000000);
    else if (flag == "-c")
      options.check = parse_int(flag, value, 0, 1) == 1;
    else if (flag == "-r")
      options.root = parse_int(flag, value, 0, 1 << 20);
    else if (flag == "--engine-shapes")
      options.engine_shapes = value;
    else if (flag == "--layers")
      options.layers = parse_int(flag, value, 1, 1000);
    else if (flag == "--kv-width")
      options.kv_width = parse_int(flag, value, 1, 1 << 20);
    else if (flag == "--workers")
      options.workers = parse_int(flag, value, 1, 1 << 16);
    else if (flag == "-a") {
      options.collectives.clear();
      for (const Collective* c : kCollectives)
        if (value == "all" || value == c->name) options.collectives.push_back(c);
      HOGWILD_CHECK(!options.collectives.empty(),
                    "-a expects all_reduce, all_gather, broadcast or all, got '", value, "'");
    } else {
      fail("unknown flag '", flag, "' (see --help)");
    }
  }
  HOGWILD_CHECK(options.min_bytes >= 1 && options.min_bytes <= options.max_bytes, "-b ",
                options.min_bytes, " must be at least 1 and at most -e ", options.max_bytes);
  return true;
}

struct Measurement {
  Counts counts;
  size_t bytes = 0;  // the "size" column
  double seconds = 0;
  double algbw = 0, busbw = 0;  // GB/s (1e9 bytes)
  uint64_t wrong = 0;
};

// The mean over iterations of the slowest rank's time: every rank's times are gathered, so the
// row reflects the collective's completion, not the luck of rank 0.
double slowest_rank_mean(Communicator& comm, const std::vector<double>& seconds) {
  std::vector<double> all(seconds.size() * static_cast<size_t>(comm.size()));
  comm.all_gather(seconds.data(), all.data(), seconds.size() * sizeof(double));
  double total = 0;
  for (size_t i = 0; i < seconds.size(); ++i) {
    double slowest = 0;
    for (int r = 0; r < comm.size(); ++r)
      slowest = std::max(slowest, all[static_cast<size_t>(r) * seconds.size() + i]);
    total += slowest;
  }
  return total / static_cast<double>(seconds.size());
}

uint64_t sum_over_ranks(Communicator& comm, uint64_t value) {
  std::vector<uint64_t> all(static_cast<size_t>(comm.size()));
  comm.all_gather(&value, all.data(), sizeof value);
  uint64_t total = 0;
  for (uint64_t v : all) total += v;
  return total;
}

Measurement measure(const Collective& collective, Communicator& comm, size_t bytes,
                    const Options& options) {
  const int ranks = comm.size();
  Measurement m;
  m.counts = collective.counts(bytes, ranks);
  m.bytes = message_bytes(m.counts);
  Buffers buffers;
  buffers.send.resize(m.counts.send);
  buffers.recv.resize(m.counts.recv);

  // Timed runs reuse the buffers without refilling (in-place sums grow, which costs nothing).
  collective.fill(buffers, comm.rank(), options.root);
  for (int i = 0; i < options.warmup; ++i) collective.run(comm, buffers, options.root);
  std::vector<double> seconds(static_cast<size_t>(options.iterations));
  for (double& s : seconds) {
    comm.barrier();
    const double start = MPI_Wtime();
    collective.run(comm, buffers, options.root);
    s = MPI_Wtime() - start;
  }
  m.seconds = slowest_rank_mean(comm, seconds);
  m.algbw = static_cast<double>(m.bytes) / m.seconds / 1e9;
  m.busbw = m.algbw * collective.bus_factor(ranks);

  if (options.check) {
    collective.fill(buffers, comm.rank(), options.root);
    collective.run(comm, buffers, options.root);
    m.wrong = sum_over_ranks(comm, collective.check(buffers, ranks, options.root));
  }
  return m;
}

std::string wrong_text(const Options& options, uint64_t wrong) {
  return options.check ? std::to_string(wrong) : "N/A";
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32] = {};
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

// "hostA: 2 ranks, hostB: 2 ranks" (every rank gathers the host names; rank 0 prints them).
std::string describe_hosts(Communicator& comm) {
  constexpr size_t kName = 64;
  char name[kName] = {};
  HOGWILD_CHECK(gethostname(name, kName - 1) == 0, "gethostname failed");
  std::vector<char> all(kName * static_cast<size_t>(comm.size()));
  comm.all_gather(name, all.data(), kName);
  std::map<std::string, int> ranks_per_host;
  for (int r = 0; r < comm.size(); ++r)
    ++ranks_per_host[std::string(all.data() + static_cast<size_t>(r) * kName)];
  std::string text;
  for (const auto& [host, ranks] : ranks_per_host)
    text += cat(text.empty() ? "" : ", ", host, ": ", ranks, ranks == 1 ? " rank" : " ranks");
  return text;
}

std::string mpi_library() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  HOGWILD_CHECK(MPI_Get_library_version(text, &length) == MPI_SUCCESS,
                "MPI_Get_library_version failed");
  std::string version(text, static_cast<size_t>(length));
  return version.substr(0, version.find_first_of(",\n"));
}

void print_preamble(Communicator& comm, const Options& options) {
  const std::string hosts = describe_hosts(comm);
  if (comm.rank() != 0) return;
  std::printf("# bench_collectives  %s  world %d rank%s (%s)  %s\n", today().c_str(), comm.size(),
              comm.size() == 1 ? "" : "s", hosts.c_str(), mpi_library().c_str());
  std::printf(
      "# iterations %d  warmup %d  check %d  root %d  time: mean over iterations of the slowest "
      "rank\n",
      options.iterations, options.warmup, options.check ? 1 : 0, options.root);
}

// ---- the size sweep ----------------------------------------------------------------------------

uint64_t run_sweep(Communicator& comm, const Options& options) {
  const bool printer = comm.rank() == 0;
  if (printer) {
    std::printf("# %-10s  %12s  %12s  %5s  %10s  %11s  %11s  %6s\n", "collective", "size(B)",
                "count", "type", "time(us)", "algbw(GB/s)", "busbw(GB/s)", "#wrong");
    std::fflush(stdout);
  }
  double busbw_sum = 0;
  int rows = 0;
  uint64_t wrong = 0;
  for (const Collective* collective : options.collectives) {
    size_t previous = 0;
    for (size_t bytes = options.min_bytes; bytes <= options.max_bytes; bytes *= options.factor) {
      // Tiny sizes round to the same message (at least one float per rank): time it once.
      if (message_bytes(collective->counts(bytes, comm.size())) == previous) continue;
      const Measurement m = measure(*collective, comm, bytes, options);
      previous = m.bytes;
      busbw_sum += m.busbw;
      ++rows;
      wrong += m.wrong;
      if (printer) {
        std::printf("  %-10s  %12zu  %12zu  %5s  %10.2f  %11.3f  %11.3f  %6s\n", collective->name,
                    m.bytes, m.counts.count, "float", m.seconds * 1e6, m.algbw, m.busbw,
                    wrong_text(options, m.wrong).c_str());
        std::fflush(stdout);
      }
    }
  }
  if (printer) {
    std::printf("# out of bounds values: %s\n", wrong_text(options, wrong).c_str());
    std::printf("# avg bus bandwidth: %.3f GB/s\n", rows > 0 ? busbw_sum / rows : 0.0);
  }
  return wrong;
}

// ---- the engine's messages per decode step ------------------------------------------------------

struct Geometry {
  std::string name;
  int hidden = 0;
  int layers = 0;
  int kv_width = 0;  // key/value heads × head dimension
};

std::vector<Geometry> engine_geometries(const Options& options) {
  const Geometry qwen3_8b{"qwen3-8b", 4096, 36, 8 * 128};
  const Geometry qwq_32b{"qwq-32b", 5120, 64, 8 * 128};
  if (options.engine_shapes == "qwen3-8b") return {qwen3_8b};
  if (options.engine_shapes == "qwq-32b") return {qwq_32b};
  if (options.engine_shapes == "all") return {qwen3_8b, qwq_32b};
  int hidden = 0;
  const std::string& text = options.engine_shapes;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), hidden);
  HOGWILD_CHECK(error == std::errc() && end == text.data() + text.size() && hidden >= 1 &&
                    hidden <= (1 << 20),
                "--engine-shapes expects qwen3-8b, qwq-32b, all or a hidden size, got '", text,
                "'");
  return {Geometry{cat("hidden", hidden), hidden, options.layers, options.kv_width}};
}

uint64_t run_engine_shapes(Communicator& comm, const Options& options) {
  const int ranks = comm.size();
  const auto groups = static_cast<size_t>(ranks);
  const auto tokens = static_cast<size_t>(options.workers);  // one token per worker per step
  // Worker w belongs to group w % G; every group sends as many rows as the largest one.
  const size_t rows_per_group = (tokens + groups - 1) / groups;
  const bool printer = comm.rank() == 0;
  if (printer) {
    std::printf(
        "# engine shapes: %d workers = %zu tokens per decode step; all_reduce over the %d "
        "ranks as tensor parallel T=%d, all_gather as G=%d worker groups\n",
        options.workers, tokens, ranks, ranks, ranks);
    std::printf("# %-10s  %-10s  %-11s  %5s  %12s  %12s  %5s  %10s  %11s  %11s  %6s  %12s\n",
                "model", "collective", "message", "calls", "size(B)", "count", "type", "time(us)",
                "algbw(GB/s)", "busbw(GB/s)", "#wrong", "step(us)");
    std::fflush(stdout);
  }
  uint64_t wrong = 0;
  for (const Geometry& g : engine_geometries(options)) {
    struct Message {
      const Collective* collective;
      const char* what;
      const char* type;  // what the engine sends; timed as floats of the same size
      size_t bytes;
      int calls;
    };
    const Message messages[] = {
        // Transformer::reduce_across_shards, after attention and after the feed-forward.
        {&kAllReduce, "activations", "float",
         tokens * static_cast<size_t>(g.hidden) * sizeof(float), 2 * g.layers},
        // WorkerExchange::exchange: the step's new keys and values, before attention.
        {&kAllGather, "new_kv", "float",
         groups * rows_per_group * static_cast<size_t>(g.kv_width) * 2 * sizeof(float), g.layers},
        // WorkerExchange::share_tokens: every rank sends one slot per worker.
        {&kAllGather, "tokens", "int32", groups * tokens * sizeof(int32_t), 1},
    };
    double step_seconds = 0;
    size_t step_bytes = 0;
    int step_calls = 0;
    uint64_t step_wrong = 0;
    for (const Message& message : messages) {
      const Measurement m = measure(*message.collective, comm, message.bytes, options);
      step_seconds += m.seconds * message.calls;
      step_bytes += m.bytes * static_cast<size_t>(message.calls);
      step_calls += message.calls;
      step_wrong += m.wrong;
      if (printer) {
        std::printf(
            "  %-10s  %-10s  %-11s  %5d  %12zu  %12zu  %5s  %10.2f  %11.3f  %11.3f  %6s  %12.1f\n",
            g.name.c_str(), message.collective->name, message.what, message.calls, m.bytes,
            m.counts.count, message.type, m.seconds * 1e6, m.algbw, m.busbw,
            wrong_text(options, m.wrong).c_str(), m.seconds * message.calls * 1e6);
        std::fflush(stdout);
      }
    }
    wrong += step_wrong;
    if (printer) {
      std::printf("  %-10s  %-10s  %-11s  %5d  %12zu  %12s  %5s  %10s  %11s  %11s  %6s  %12.1f\n",
                  g.name.c_str(), "step", "total", step_calls, step_bytes, "-", "-", "-", "-", "-",
                  wrong_text(options, step_wrong).c_str(), step_seconds * 1e6);
      std::printf(
          "# %s (hidden %d, %d layers, kv_width %d): %.3f ms of collectives per decode "
          "step, %.2f MB of messages\n",
          g.name.c_str(), g.hidden, g.layers, g.kv_width, step_seconds * 1e3,
          static_cast<double>(step_bytes) / 1e6);
      std::fflush(stdout);
    }
  }
  return wrong;
}

// Checks that depend only on the flags and the world size: they fail alike on every rank.
void validate(const Options& options, int ranks) {
  HOGWILD_CHECK(options.root < ranks, "-r ", options.root, " is not a rank of the ", ranks,
                "-rank world");
  if (options.engine_shapes.empty()) return;
  for (const Geometry& g : engine_geometries(options))
    HOGWILD_CHECK(static_cast<size_t>(options.workers) *
                          static_cast<size_t>(std::max(g.hidden, 2 * g.kv_width)) * sizeof(float) <=
                      kMaxBytes,
                  g.name, ": the messages of ", options.workers,
                  " workers exceed the 1 GiB this benchmark sends");
}

int run(const Options& options) {
  RankGrid grid = make_rank_grid(mpi_world_size(), 1);
  Communicator& world = *grid.world;
  print_preamble(world, options);
  const uint64_t wrong =
      options.engine_shapes.empty() ? run_sweep(world, options) : run_engine_shapes(world, options);
  world.barrier();
  return wrong == 0 ? 0 : 1;
}

}  // namespace
}  // namespace hogwild

int main(int argc, char** argv) {
  using namespace hogwild;
  // Always MPI (MPI_Wtime, MPI_Get_library_version); a run without mpirun is a world of one.
  try {
    mpi_initialize(&argc, &argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_collectives: error: %s\n", e.what());
    return 1;
  }
  Options options;
  try {
    if (!parse_options(argc, argv, options)) {
      if (mpi_world_rank() == 0) std::fputs(kUsage, stdout);
      mpi_finalize();
      return 0;
    }
    validate(options, mpi_world_size());
  } catch (const Error& e) {
    // Every rank has the same flags, hence the same error: rank 0 says it once and all leave.
    if (mpi_world_rank() == 0) std::fprintf(stderr, "bench_collectives: error: %s\n", e.what());
    mpi_finalize();
    return 2;
  }
  try {
    const int code = run(options);
    mpi_finalize();
    return code;
  } catch (const std::exception& e) {
    // May have hit one rank only: take the whole job down rather than leave the others waiting.
    if (mpi_world_size() > 1)
      mpi_abort_all(cat("bench_collectives: error: rank ", mpi_world_rank(), ": ", e.what()), 1);
    std::fprintf(stderr, "bench_collectives: error: %s\n", e.what());
    return 1;
  }
}

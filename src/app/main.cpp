// The `hogwild` command-line tool: one binary, one subcommand per job.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/cli_args.h"
#include "app/live_view.h"
#include "app/sweep_command.h"
#include "comm/mpi_communicator.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "common/terminal_text.h"
#include "engine/generation.h"
#include "engine/logprobs.h"
#include "engine/memory_plan.h"
#include "engine/sampler.h"
#include "engine/transformer.h"
#include "experiment/rank_agreement.h"
#include "experiment/runner.h"
#include "io/config.h"
#include "kernels/backend.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace hogwild {
namespace {

constexpr int kUsageError = 2;
// `hogwild run` finished, but some problems could not run (recorded as failed in the results).
constexpr int kSomeProblemsFailed = 3;

// Output that did not reach standard output (a full disk, a closed descriptor) is an error, not
// a silent exit 0.
void check_stdout(const char* command) {
  std::cout.flush();
  if (!std::cout) fail(command, ": cannot write to standard output: ", std::strerror(errno));
}

int run_tokenize(const std::vector<std::string>& argv) {
  CliArgs args("tokenize", "Prints the token ids of a file's exact bytes on one line.");
  args.required("model", "PATH", "GGUF file (a vocabulary-only one will do) or HF directory");
  args.required("file", "FILE", "text to tokenize, read byte for byte");
  args.flag("bos", "prepend the beginning-of-sequence token");
  args.flag("special",
            "special-token text (<|im_end|>) becomes control tokens; default: plain text");
  if (!args.parse(argv)) {
    std::cout << args.help();
    return 0;
  }
  const Tokenizer tokenizer = Tokenizer::from_path(args.get("model"));
  const std::string text = read_text_file(args.get("file"));
  const std::vector<int32_t> ids =
      tokenizer.encode(text, args.get_flag("special"), args.get_flag("bos"));
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
  check_stdout("tokenize");
  return 0;
}

// Where --logprobs writes its JSON lines: a new file (never an existing one), or stderr.
class LogprobsOutput {
 public:
  explicit LogprobsOutput(const std::string& path) : path_(path) {
    if (path_.empty()) {
      stream_ = stderr;
      return;
    }
    // O_EXCL: a file that appeared since the early check is not overwritten either.
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST)
      fail("generate: --logprobs-file ", path_, " already exists; it is never overwritten");
    if (fd < 0) fail("generate: cannot create --logprobs-file ", path_, ": ", std::strerror(errno));
    stream_ = ::fdopen(fd, "w");
    if (stream_ == nullptr) {
      ::close(fd);
      fail("generate: cannot open --logprobs-file ", path_, ": ", std::strerror(errno));
    }
  }
  ~LogprobsOutput() {
    if (stream_ != nullptr && stream_ != stderr) std::fclose(stream_);
  }
  LogprobsOutput(const LogprobsOutput&) = delete;
  LogprobsOutput& operator=(const LogprobsOutput&) = delete;

  void write_line(const std::string& line) {
    if (std::fputs(line.c_str(), stream_) < 0 || std::fputc('\n', stream_) == EOF ||
        std::fflush(stream_) != 0)
      fail("generate: cannot write the logprobs to ", where(), ": ", std::strerror(errno));
  }
  void close() {
    if (stream_ == nullptr || stream_ == stderr) return;
    const bool closed = std::fclose(std::exchange(stream_, nullptr)) == 0;
    if (!closed)
      fail("generate: cannot write the logprobs to ", where(), ": ", std::strerror(errno));
  }

 private:
  std::string where() const { return path_.empty() ? std::string("standard error") : path_; }
  std::string path_;
  FILE* stream_ = nullptr;
};

// One --logprobs line: the token, its log-probability under the model's distribution and the
// most likely alternatives. A piece that is part of a UTF-8 character shows U+FFFD (JSON holds
// text); the ids are exact. Non-finite numbers are null.
std::string logprobs_line(const Tokenizer& tokenizer, int64_t index, int32_t token,
                          const TokenLogprobs& logprobs) {
  // In the order a reader expects (index first), not sorted by key.
  nlohmann::ordered_json top = nlohmann::ordered_json::array();
  for (const TokenLogprob& entry : logprobs.top)
    top.push_back(
        {{"id", entry.id}, {"text", tokenizer.token_bytes(entry.id)}, {"logprob", entry.logprob}});
  const nlohmann::ordered_json line = {{"index", index},
                                       {"id", token},
                                       {"text", tokenizer.token_bytes(token)},
                                       {"logprob", logprobs.chosen},
                                       {"top", std::move(top)}};
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

int run_generate(const std::vector<std::string>& argv) {
  CliArgs args("generate", "Continues a prompt with one model, streaming the text.");
  args.required("model", "PATH", "GGUF file or Hugging Face checkpoint directory");
  args.value("prompt", "TEXT", "prompt text");
  args.value("prompt-file", "FILE", "read the prompt from a file instead");
  args.flag("chat", "wrap the prompt as a user message in the model's chat template");
  args.value("system", "TEXT", "system message for --chat");
  args.flag("special",
            "special-token text (<|im_end|>) in the prompt and system message becomes control "
            "tokens; default: plain text (the chat template's own markers always are)");
  args.value("max-tokens", "N", "tokens to generate at most", "128");
  args.value("temperature", "T", "sampling temperature; 0 = greedy", "0");
  args.value("top-k", "K", "keep the K most likely tokens; 0 = off", "0");
  args.value("top-p", "P", "nucleus sampling mass; 1 = off", "1");
  args.value("min-p", "P", "drop tokens below P times the top probability; 0 = off", "0");
  args.value("seed", "S", "random seed", "0");
  args.flag("bos", "prepend the beginning-of-sequence token");
  args.flag("ignore-eos", "keep generating past end-of-sequence tokens");
  args.value("backend", "NAME", "cpu or cuda", "cpu");
  args.value("device", "N", "CUDA device index", "0");
  args.value("threads", "N",
             "CPU backend threads, 1-1024 (default: the physical cores, or OMP_NUM_THREADS)");
  args.value("weights", "FORMAT",
             "native (matrices as the file stores them) or f32 (dequantized: the exact path)",
             "native");
  args.value("dtype", "TYPE",
             "f32 or bf16: matrices not kept as stored in bf16 (the `dtype` key; bf16 K/V on "
             "CUDA only)",
             "f32");
  args.flag("no-graphs", "launch every step op by op instead of replaying CUDA graphs");
  args.flag("verbose-prompt", "print each prompt token to stderr as id<TAB>'piece' first");
  args.value("logprobs", "K",
             "JSON line per generated token: id, text, logprob and the K (0-" +
                 std::to_string(kMaxLogprobs) + ") likeliest tokens (to stderr)");
  args.value("logprobs-file", "PATH",
             "write the --logprobs lines to this new file (never an existing one)");
  if (!args.parse(argv)) {
    std::cout << args.help();
    return 0;
  }
  if (args.get_flag("prompt") == args.get_flag("prompt-file"))
    fail("generate: give exactly one of --prompt and --prompt-file");
  const bool logprobs = args.get_flag("logprobs");
  const int64_t logprobs_top = logprobs ? args.get_int("logprobs", 0, kMaxLogprobs) : 0;
  const std::string logprobs_path = args.get_flag("logprobs-file") ? args.get("logprobs-file") : "";
  if (!logprobs_path.empty() && !logprobs)
    fail("generate: --logprobs-file needs --logprobs K (the alternatives to list per token)");
  // Checked before the model loads (fail fast); creating it later refuses a newcomer too.
  std::error_code exists_error;
  if (!logprobs_path.empty() &&
      std::filesystem::exists(std::filesystem::symlink_status(logprobs_path, exists_error)))
    fail("generate: --logprobs-file ", logprobs_path, " already exists; it is never overwritten");

  SamplingParams sampling;
  sampling.temperature = args.get_float("temperature", 0.0, 100.0);
  sampling.top_k = args.get_int("top-k", 0, 1 << 30);
  sampling.top_p = args.get_float("top-p", 1e-6, 1.0);
  sampling.min_p = args.get_float("min-p", 0.0, 0.999999);
  sampling.seed = args.get_uint64("seed");
  const int64_t max_tokens = args.get_int("max-tokens", 1, 1 << 20);
  const int threads =
      args.get_flag("threads") ? static_cast<int>(args.get_int("threads", 1, 1024)) : 0;
  const std::string dtype_text = args.get("dtype");
  if (dtype_text != "f32" && dtype_text != "bf16")
    fail("generate: --dtype must be f32 or bf16, not '", dtype_text, "'");
  const DType dtype = compute_dtype_named(dtype_text);

  const std::string model_path = args.get("model");
  const auto weights = open_weights(model_path);
  const Tokenizer tokenizer = Tokenizer::from_path(weights->tokenizer_path());

  // The prompt is data: its special-token text stays text unless --special.
  const bool special = args.get_flag("special");
  const std::string prompt =
      args.get_flag("prompt") ? args.get("prompt") : read_text_file(args.get("prompt-file"));
  std::vector<PromptPiece> pieces = {{prompt, special}};
  if (args.get_flag("chat")) {
    std::vector<ChatMessage> messages;
    if (args.get_flag("system")) messages.push_back({"system", args.get("system"), special});
    messages.push_back({"user", prompt, special});
    pieces = tokenizer.chat_pieces(messages, true);
  }
  const std::vector<int32_t> prompt_ids = tokenizer.encode(pieces, args.get_flag("bos"));
  HOGWILD_CHECK(!prompt_ids.empty(), "generate: the prompt is empty");
  if (args.get_flag("verbose-prompt")) {
    // As llama.cpp's --verbose-prompt: what the model is given, token by token.
    for (const int32_t id : prompt_ids)
      std::fprintf(stderr, "%d\t'%s'\n", id, escape_controls(tokenizer.token_bytes(id)).c_str());
    std::fflush(stderr);
  }

  // Refused before a weight is read: more positions than the model has, or more memory than
  // there is (planned as `hogwild run` plans it).
  const auto positions = static_cast<int64_t>(prompt_ids.size()) + max_tokens;
  const ModelConfig& model_config = weights->config();
  if (model_config.max_context > 0 && positions > model_config.max_context)
    fail("generate: the prompt (", prompt_ids.size(), " tokens) and --max-tokens (", max_tokens,
         ") need ", positions, " positions, more than the model's context length (",
         model_config.max_context, ")");
  TransformerOptions options;
  const std::string weight_format = args.get("weights");
  if (weight_format != "native" && weight_format != "f32")
    fail("generate: --weights must be native or f32, not '", weight_format, "'");
  options.dtype = dtype;
  options.graphs = !args.get_flag("no-graphs");
  const int device = static_cast<int>(args.get_int("device", 0, 1024));
  const auto backend = make_backend(args.get("backend"), device, threads);
  options.weights = weight_format_on(*backend, weight_format);
  options.max_batch_tokens = std::min<int64_t>(256, static_cast<int64_t>(prompt_ids.size()));
  options.max_view_entries = 1;
  CacheOptions cache_options = cache_options_for(1, positions, kDefaultPageSize);
  cache_options.dtype = kv_dtype_on(*backend, options.dtype);
  // GPU memory with --backend cuda, host memory for what stays on the host.
  check_run_memory(*weights, model_config, cache_options, options, *backend, device);
  Transformer model(*weights, *backend, options);
  KvCache cache(*backend, model.shard_config(), cache_options);
  Sampler sampler(sampling);

  GenerationRequest request;
  request.prompt = prompt_ids;
  request.max_tokens = max_tokens;
  if (!args.get_flag("ignore-eos")) request.stop_tokens = tokenizer.eos_ids();

  std::unique_ptr<LogprobsOutput> logprobs_output;
  if (logprobs) logprobs_output = std::make_unique<LogprobsOutput>(logprobs_path);
  int64_t index = 0;
  StreamDecoder decoder(tokenizer);
  const GenerationStats stats =
      generate(model, cache, sampler, request, [&](int32_t token, std::span<const float> logits) {
        // Every generated token has its line, a stop token included; the text is unchanged.
        if (logprobs_output)
          logprobs_output->write_line(
              logprobs_line(tokenizer, index, token, token_logprobs(logits, token, logprobs_top)));
        ++index;
        if (tokenizer.is_eos(token) && !args.get_flag("ignore-eos")) return;
        std::cout << decoder.push(token);
        check_stdout("generate");
      });
  std::cout << decoder.flush() << "\n";
  check_stdout("generate");
  if (logprobs_output) logprobs_output->close();
  std::fprintf(stderr,
               "[prefill: %lld tokens in %.3f s (%.1f tok/s) | decode: %lld tokens in %.3f s "
               "(%.1f tok/s)%s]\n",
               static_cast<long long>(stats.prompt_tokens), stats.prefill_seconds,
               stats.prompt_tokens / std::max(stats.prefill_seconds, 1e-9),
               static_cast<long long>(stats.generated_tokens), stats.decode_seconds,
               static_cast<double>(stats.decode_steps) / std::max(stats.decode_seconds, 1e-9),
               stats.stopped_by_eos ? " | stopped at end-of-sequence" : "");
  return 0;
}

const char* kRunHelp =
    "usage: hogwild run CONFIG.yaml [key=value ...] [--overwrite] [--plain] [--quiet]\n"
    "                   [--threads N]\n\n"
    "Solves the config's problems with a team of workers sharing one KV cache (Hogwild!\n"
    "inference) and writes the results to HDF5 and a transcript.\n\n"
    "  key=value   override a config key; nested keys with dots, e.g. workers=4\n"
    "              layout=interleaved sampling.temperature=0 budget=256 output=/tmp/r.h5\n"
    "  --overwrite replace existing results and transcript files (refused without it)\n"
    "  --plain     plain log lines instead of the live view (the default when not a terminal)\n"
    "  --quiet     only the final summary\n"
    "  --threads N CPU backend threads (the `threads` key; default: the physical cores)\n"
    "  --help      show this help\n\n"
    "Exit status: 0 when every problem ran, 3 when some failed (each is in the results with\n"
    "stop_reason \"failed\" and its error; the others ran), 1 on an error that ends the run.\n"
    "The config keys are described in configs/README.md.\n";

int run_run(const std::vector<std::string>& argv) {
  const JobArgs job =
      parse_job_args("run", argv, false, "missing the config file (hogwild run CONFIG.yaml)");
  if (job.help) {
    std::cout << kRunHelp;
    return 0;
  }
  const bool plain = job.plain || !LiveView::stderr_is_terminal(), quiet = job.quiet;
  RunConfig config = load_run_config(job.file, job.overrides);
  config.overwrite = job.overwrite;
  // Ranks that run different configs or models would corrupt each other's buffers: refuse them
  // all, naming the first key that differs, before the grid is formed (docs/design.md §6).
  if (launched_by_mpi()) check_ranks_run_the_same(config, *make_world_communicator());
  RankGrid grid = make_rank_grid(static_cast<int>(config.parallel.tensor),
                                 static_cast<int>(config.parallel.worker_groups),
                                 config.parallel.timeout_seconds);
  LiveView view(stderr, !plain);
  const RunSummary summary = run_experiment(config, quiet ? nullptr : &view, &grid);
  if (grid.world_rank != 0) return 0;
  if (summary.already_done) {
    std::fprintf(stderr,
                 "[run: all %lld problems were already finished in %s (same configuration); "
                 "nothing to compute, %lld/%lld correct]\n",
                 static_cast<long long>(summary.problems), escape_controls(config.output).c_str(),
                 static_cast<long long>(summary.correct), static_cast<long long>(summary.scored));
    return summary.failed > 0 ? kSomeProblemsFailed : 0;
  }
  if (summary.resumed > 0)
    std::fprintf(stderr, "[run: resumed %s: %lld problems were already finished]\n",
                 escape_controls(config.output).c_str(), static_cast<long long>(summary.resumed));
  if (grid.world_size > 1) {
    double compute = 0, tensor = 0, workers = 0;
    for (const RankTiming& t : summary.timings) {
      compute = std::max(compute, t.compute_seconds);
      tensor = std::max(tensor, t.tensor_seconds);
      workers = std::max(workers, t.worker_seconds);
    }
    std::fprintf(stderr,
                 "[grid %d worker groups x %d tensor: slowest rank spent %.2f s computing, %.2f s "
                 "in tensor all-reduces, %.2f s in worker all-gathers (per rank: /timings)]\n",
                 grid.worker_groups, grid.tensor_parallel, compute, tensor, workers);
  }
  std::fprintf(stderr,
               "[run: %lld problems%s, %lld/%lld correct, %lld tokens in %.1f s (%.1f tok/s), "
               "%lld forward passes (%.1f s), %lld tokens processed] results: %s, transcript: %s\n",
               static_cast<long long>(summary.problems),
               summary.failed > 0 ? cat(" (", summary.failed, " failed)").c_str() : "",
               static_cast<long long>(summary.correct), static_cast<long long>(summary.scored),
               static_cast<long long>(summary.generated_tokens), summary.seconds,
               static_cast<double>(summary.generated_tokens - summary.resumed_tokens) /
                   std::max(summary.seconds, 1e-9),
               static_cast<long long>(summary.forward_passes), summary.forward_seconds,
               static_cast<long long>(summary.tokens_processed),
               escape_controls(config.output).c_str(), escape_controls(config.transcript).c_str());
  if (summary.failed > 0) {
    std::fprintf(stderr,
                 "hogwild: %lld of %lld problems failed (stop_reason \"failed\" and their error "
                 "in %s)\n",
                 static_cast<long long>(summary.failed), static_cast<long long>(summary.problems),
                 escape_controls(config.output).c_str());
    return kSomeProblemsFailed;
  }
  return 0;
}

int run_info(const std::vector<std::string>& argv) {
  CliArgs args("info", "Prints a model's configuration.");
  args.required("model", "PATH", "GGUF file or Hugging Face checkpoint directory");
  if (!args.parse(argv)) {
    std::cout << args.help();
    return 0;
  }
  const auto weights = open_weights(args.get("model"));
  const ModelConfig& c = weights->config();
  std::cout << "architecture " << architecture_name(c.architecture) << "\nlayers " << c.layers
            << "\nhidden " << c.hidden << "\nheads " << c.heads << "\nkv_heads " << c.kv_heads
            << "\nhead_dim " << c.head_dim << "\nffn_hidden " << c.ffn_hidden << "\nvocab "
            << c.vocab << "\nmax_context " << c.max_context << "\nrope_theta " << c.rope.theta
            << "\ntied_embeddings " << c.tied_embeddings << "\n";
  return 0;
}

const char* kUsage =
    "usage: hogwild <command> [flags]\n\n"
    "commands:\n"
    "  run        solve problems with a team of workers over a shared cache (Hogwild!)\n"
    "  sweep      run every configuration of a sweep file (grid of keys), resumable\n"
    "  generate   continue a prompt with one model, streaming the text\n"
    "  tokenize   print the token ids of a file\n"
    "  info       print a model's configuration\n\n"
    "Run 'hogwild <command> --help' for the flags of a command.\n";

}  // namespace
}  // namespace hogwild

int main(int argc, char** argv) {
  using namespace hogwild;
  if (argc < 2) {
    std::cerr << kUsage;
    return kUsageError;
  }
  const std::string command = argv[1];
  const std::vector<std::string> rest(argv + 2, argv + argc);
  // Under mpirun/srun every rank runs this same program (docs/design.md §6); MPI starts only then.
  const bool distributed = launched_by_mpi();
  try {
    if (distributed) mpi_initialize(&argc, &argv);
    if (command == "run" || command == "sweep") {
      const int code = command == "run" ? run_run(rest) : run_sweep(rest);
      mpi_finalize();
      return code;
    }
    if (command == "generate") return run_generate(rest);
    if (command == "tokenize") return run_tokenize(rest);
    if (command == "info") return run_info(rest);
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << kUsage;
      return 0;
    }
    std::cerr << "hogwild: error: unknown command '" << escape_controls(command)
              << "' (commands: run, sweep, generate, tokenize, info; see hogwild --help)\n";
    return kUsageError;
  } catch (const Error& e) {
    // Messages quote keys, values, paths and problem text: control characters in them are shown
    // escaped, and the message stays one line.
    const std::string message = escape_controls(e.what());
    if (distributed && mpi_world_size() > 1)  // one rank failing takes the whole job down
      mpi_abort_all(cat("hogwild: error: rank ", mpi_world_rank(), ": ", message), 1);
    std::cerr << "hogwild: error: " << message << "\n";
    return 1;
  } catch (const std::exception& e) {
    const std::string message = escape_controls(e.what());
    if (distributed && mpi_world_size() > 1)
      mpi_abort_all(cat("hogwild: unexpected error: rank ", mpi_world_rank(), ": ", message), 1);
    std::cerr << "hogwild: unexpected error: " << message << "\n";
    return 1;
  }
}

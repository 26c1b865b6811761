// The whole forward pass of the engine on one backend for an outside reference to compare with
// (benchmarks/hf_forward_check.py: transformers on the same checkpoint). Loads a checkpoint (HF
// directory or GGUF), runs the prompt in one forward and then `--greedy N` greedy steps (argmax,
// lowest id on a tie, EOS does not stop it), and prints one JSON object to stdout:
//
//   {"backend": "cuda", "dtype": "bf16", "graphs": false, "vocab": V, "tokens": [...],
//    "logits_last": [V floats: the last prompt position], "greedy": [N ids],
//    "greedy_margins": [N: top-1 minus top-2 logit when each id was chosen]}
//
//   forward_check --model DIR --tokens 1,2,3 [--backend cpu|cuda] [--device N] [--greedy N]
//                 [--dtype f32|bf16] [--graphs on|off]
//
// --dtype and --graphs set TransformerOptions::dtype and ::graphs (as the `dtype:` run key);
// where the engine does not implement them yet it computes as before (fp32, eager) and the
// figures say so only through their accuracy. A bad flag or file: one line on stderr, exit 1.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cache/kv_cache.h"
#include "common/error.h"
#include "driver_flags.h"
#include "engine/batch_builder.h"
#include "engine/transformer.h"
#include "model/model.h"

namespace {

struct Flags {
  std::string model, backend = "cpu", dtype = "f32";
  std::vector<int32_t> tokens;
  int device = 0;
  int64_t greedy = 0;
  bool graphs = false;
};

Flags parse(int argc, char** argv) {
  using hogwild::bench::parse_choice;
  using hogwild::bench::parse_count;
  Flags flags;
  hogwild::bench::for_each_flag(argc, argv, [&](const std::string& flag, const std::string& value) {
    if (flag == "--model") {
      flags.model = value;
    } else if (flag == "--tokens") {
      for (int64_t id : hogwild::bench::parse_count_list(flag, value, 0, INT32_MAX))
        flags.tokens.push_back(static_cast<int32_t>(id));
    } else if (flag == "--backend") {
      flags.backend = value;
    } else if (flag == "--device") {
      flags.device = static_cast<int>(parse_count(flag, value, 0, 1023));
    } else if (flag == "--greedy") {
      flags.greedy = parse_count(flag, value, 0, 4096);
    } else if (flag == "--dtype") {
      flags.dtype = parse_choice(flag, value, {"f32", "bf16"});
    } else if (flag == "--graphs") {
      flags.graphs = parse_choice(flag, value, {"on", "off"}) == "on";
    } else {
      hogwild::fail("unknown flag '", flag,
                    "' (--model --tokens --backend --device --greedy "
                    "--dtype --graphs)");
    }
  });
  HOGWILD_CHECK(!flags.model.empty(), "--model is required");
  HOGWILD_CHECK(!flags.tokens.empty(), "--tokens is required");
  return flags;
}

// The index of the largest logit (the lowest on a tie) and its margin over the runner-up.
std::pair<int32_t, float> argmax(const float* logits, int64_t vocab) {
  int32_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  float second = -3.4e38f;
  for (int64_t i = 0; i < vocab; ++i)
    if (i != best) second = std::max(second, logits[i]);
  return {best, logits[best] - second};
}

template <typename T>
void print_list(const char* key, const std::vector<T>& values, const char* format) {
  std::printf("\"%s\": [", key);
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) std::printf(", ");
    std::printf(format, values[i]);
  }
  std::printf("]");
}

int run(const Flags& flags) {
  const auto weights = hogwild::open_weights(flags.model);
  const hogwild::ModelConfig& config = weights->config();
  for (int32_t token : flags.tokens)
    HOGWILD_CHECK(token < config.vocab, "--tokens: id ", token, " is outside the vocabulary (",
                  config.vocab, ")");
  const auto backend = hogwild::make_backend(flags.backend, flags.device);
  hogwild::TransformerOptions options;
  options.weights = hogwild::WeightFormat::F32;  // as transformers reads the file: no quantization
  options.max_batch_tokens = std::max<int64_t>(64, static_cast<int64_t>(flags.tokens.size()));
  options.max_view_entries = 1;
  options.dtype = flags.dtype == "bf16" ? hogwild::DType::BF16 : hogwild::DType::F32;
  options.graphs = flags.graphs;
  hogwild::Transformer model(*weights, *backend, options);
  const int64_t length = static_cast<int64_t>(flags.tokens.size()) + flags.greedy;
  hogwild::KvCache cache(*backend, model.shard_config(),
                         hogwild::cache_options_for(1, length + 1, hogwild::kDefaultPageSize));
  hogwild::BlockId block = cache.create_block();
  hogwild::BatchBuilder builder(cache);
  hogwild::ForwardBatch batch;
  std::vector<float> logits;
  builder.add(block, flags.tokens, {&block, 1}, true);
  builder.build(batch);
  model.forward(batch, cache, logits);
  builder.commit();
  const std::vector<float> last(logits.begin(), logits.begin() + config.vocab);
  std::vector<int32_t> greedy;
  std::vector<float> margins;
  for (int64_t step = 0; step < flags.greedy; ++step) {
    const auto [token, margin] = argmax(logits.data(), config.vocab);
    greedy.push_back(token);
    margins.push_back(margin);
    if (step + 1 == flags.greedy) break;
    builder.add(block, {&token, 1}, {&block, 1}, true);
    builder.build(batch);
    model.forward(batch, cache, logits);
    builder.commit();
  }
  std::printf("{\"backend\": \"%s\", \"dtype\": \"%s\", \"graphs\": %s, \"vocab\": %lld, ",
              flags.backend.c_str(), flags.dtype.c_str(), flags.graphs ? "true" : "false",
              static_cast<long long>(config.vocab));
  print_list("tokens", flags.tokens, "%d");
  std::printf(", ");
  print_list("logits_last", last, "%.9g");
  std::printf(", ");
  print_list("greedy", greedy, "%d");
  std::printf(", ");
  print_list("greedy_margins", margins, "%.6g");
  std::printf("}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "forward_check: %s\n", e.what());
    return 1;
  }
}

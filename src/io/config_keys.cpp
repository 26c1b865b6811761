// The table of run-configuration keys (see config_keys.h). configs/README.md documents the same
// rows; tests/io/test_config_keys.cpp fails when the two differ.
#include "io/config_keys.h"

#include <algorithm>
#include <array>
#include <map>

#include "engine/logprobs.h"
#include "io/problems_file.h"
#include "io/worker_names.h"
#include "io/yaml_reader.h"

namespace hogwild {
namespace {

constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// A field of RunConfig, reached through the members in order: member<&RunConfig::sampling,
// &SamplingParams::top_p>.
template <auto... Members>
constexpr auto& member(RunConfig& config) {
  return (config.*....*Members);
}

// A field of the problems file; read_problems creates it before the problems.* keys are read.
template <auto Member>
constexpr auto& problems_file_member(RunConfig& config) {
  return (*config.problems_file).*Member;
}

constexpr bool is_power_of_two(int64_t value) { return value > 0 && (value & (value - 1)) == 0; }
constexpr bool is_not_zero(int64_t value) { return value != 0; }

// In the order of the enumerators they name (a choice is stored as its index).
constexpr std::array<std::string_view, 3> kLayoutNames = {"contiguous", "interleaved", "combined"};
constexpr std::array<std::string_view, 2> kSyncNames = {"layer", "step"};
constexpr std::array<std::string_view, 2> kBackendNames = {"cpu", "cuda"};
constexpr std::array<std::string_view, 2> kWeightFormatNames = {"native", "f32"};
constexpr std::array<std::string_view, 2> kDtypeNames = {"f32", "bf16"};
constexpr std::array<std::string_view, 2> kPromptStyleNames = {"paper", "compact"};
constexpr std::array<std::string_view, 2> kStopRuleNames = {"number_at_step_end", "any_boxed"};
constexpr std::array<std::string_view, 2> kStepEndNames = {"two_newlines", "one_token"};
constexpr std::array<std::string_view, 2> kFinisherModeNames = {"reencode", "in_cache"};
constexpr std::array<std::string_view, 4> kMethodNames = {"hogwild", "single", "independent",
                                                          "self_consistency"};

// checkpoints: forward passes, increasing; that they stay within the budget is checked once every
// key is read (config.cpp).
void read_checkpoints(const ConfigReader& reader, const YAML::Node& node, RunConfig& config) {
  if (!node.IsSequence() || node.size() == 0)
    reader.fail_at(node, "checkpoints",
                   "must be a non-empty list of forward passes, e.g. [256, 512, 1024], got ",
                   describe(node));
  std::vector<int64_t> passes;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string path = cat("checkpoints[", i, "]");
    const int64_t value = reader.integer(node[i], path, 1, 1000000000, "in [1, 1000000000]");
    if (!passes.empty() && value <= passes.back())
      reader.fail_at(node[i], path, "must be more than the checkpoint before it (", passes.back(),
                     "): checkpoints increase");
    passes.push_back(value);
  }
  config.checkpoints = std::move(passes);
}

// Sections are followed by their keys; the order is the reading order and the order of the
// known-key lists in messages.
constexpr ConfigKey kConfigKeys[] = {
    {
        .key = "model",
        .kind = KeyKind::kNonEmptyText,
        .what = "the model's path",
        .required = "is required (a .gguf file or a Hugging Face checkpoint folder)",
        .default_doc = "—",
        .doc = "a `.gguf` file or a Hugging Face checkpoint folder",
        .field = &member<&RunConfig::model>,
    },
    {
        .key = "workers",
        .kind = KeyKind::kInteger,
        .range = "in [1, 64]",
        .integer = {.min = 1, .max = 64},
        .default_doc = "2",
        .doc = "workers writing in parallel over one cache",
        .field = &member<&RunConfig::workers>,
    },
    {
        .key = "names",
        .kind = KeyKind::kCustom,
        .default_doc =
            "Alice, Bob, Carol, Dave, Eve, Frank, Grace, Heidi, Ivan, Judy, Mallory, Niaj, "
            "Olivia, Peggy, Rupert, Sybil, Trent, Victor, Walter, Wendy, then Worker21, "
            "Worker22, …",
        .doc = "names in the prompts; must differ, no `/`",
        .read = read_names,
    },
    {
        .key = "layout",
        .kind = KeyKind::kChoice,
        .choices = kLayoutNames,
        .default_doc = "`combined`",
        .doc = "what a worker sees of the others (docs/design.md §2)",
        .field = &member<&RunConfig::layout>,
    },
    {
        .key = "budget",
        .kind = KeyKind::kInteger,
        .range = "in [1, 1000000000]",
        .integer = {.min = 1, .max = 1000000000},
        .default_doc = "1024",
        .doc = "sequential forward passes per problem",
        .field = &member<&RunConfig::budget>,
    },
    {
        .key = "seed",
        .kind = KeyKind::kUnsigned,
        .default_doc = "0",
        .doc = "sampling seed",
        .field = &member<&RunConfig::seed>,
    },

    {
        .key = "sampling",
        .kind = KeyKind::kSection,
        .what = "temperature, top_k, top_p, min_p",
        .hinted_at_top_level = true,
        .doc = "how the next token is drawn",
    },
    {
        .key = "sampling.temperature",
        .kind = KeyKind::kReal,
        .range = "[0, 1000]",
        .real = {.min = 0, .open_min = false, .max = 1000, .open_max = false},
        .default_doc = "0",
        .doc = "0 = greedy",
        .field = &member<&RunConfig::sampling, &SamplingParams::temperature>,
    },
    {
        .key = "sampling.top_k",
        .kind = KeyKind::kInteger,
        .range = "in [0, 2147483647] (0 = off)",
        .integer = {.min = 0, .max = 2147483647},
        .default_doc = "0",
        .doc = "0 = off",
        .field = &member<&RunConfig::sampling, &SamplingParams::top_k>,
    },
    {
        .key = "sampling.top_p",
        .kind = KeyKind::kReal,
        .range = "(0, 1]",
        .real = {.min = 0, .open_min = true, .max = 1, .open_max = false},
        .default_doc = "1",
        .doc = "1 = off",
        .field = &member<&RunConfig::sampling, &SamplingParams::top_p>,
    },
    {
        .key = "sampling.min_p",
        .kind = KeyKind::kReal,
        .range = "[0, 1)",
        .real = {.min = 0, .open_min = false, .max = 1, .open_max = true},
        .default_doc = "0",
        .doc = "0 = off",
        .field = &member<&RunConfig::sampling, &SamplingParams::min_p>,
    },

    {
        .key = "problems",
        .kind = KeyKind::kCustom,
        .required = "is required: a list of questions, or {file: PATH.jsonl}",
        .hinted_at_top_level = true,
        .default_doc = "—",
        .doc = "the problems to solve",
        .read = read_problems,
    },
    // A map: the problems come from a JSONL file (read by read_problems, after these keys).
    {
        .key = "problems.file",
        .kind = KeyKind::kNonEmptyText,
        .what = "a JSONL file",
        .required = "needs a file (problems.file: PATH.jsonl) or a list of questions",
        .default_doc = "—",
        .doc = "one JSON object per line; relative: from the current folder, else beside the YAML",
        .field = &problems_file_member<&ProblemsFile::path>,
    },
    {
        .key = "problems.question_field",
        .kind = KeyKind::kNonEmptyText,
        .what = "a JSON key",
        .default_doc = "`question`",
        .doc = "the text field; a line without it is an error naming file and line",
        .field = &problems_file_member<&ProblemsFile::question_field>,
    },
    {
        .key = "problems.answer_field",
        .kind = KeyKind::kText,
        .default_doc = "`answer`",
        .doc = "the reference answer, text or number; `\"\"` = no reference answers",
        .field = &problems_file_member<&ProblemsFile::answer_field>,
    },
    {
        .key = "problems.offset",
        .kind = KeyKind::kInteger,
        .range = "in [0, 1000000000000]",
        .integer = {.min = 0, .max = 1000000000000},
        .default_doc = "0",
        .doc = "skip this many problems",
        .field = &problems_file_member<&ProblemsFile::offset>,
    },
    {
        .key = "problems.limit",
        .kind = KeyKind::kInteger,
        .range = "in [1, 1000000000000], or -1 for all",
        .integer = {.min = -1, .max = 1000000000000, .also = is_not_zero},
        .default_doc = "-1",
        .doc = "at most this many problems; -1 = all",
        .field = &problems_file_member<&ProblemsFile::limit>,
    },
    // A list: each item is a question or a map of these keys (read by read_problems).
    {
        .key = "problems[].question",
        .kind = KeyKind::kNonEmptyText,
        .default_doc = "—",
        .doc = "the problem's text (an item may also be just the text)",
    },
    {
        .key = "problems[].answer",
        .kind = KeyKind::kText,
        .default_doc = "none",
        .doc = "the reference answer, for scoring",
    },

    {
        .key = "batch_problems",
        .kind = KeyKind::kInteger,
        .range = "in [1, 4096]",
        .integer = {.min = 1, .max = 4096},
        .default_doc = "4",
        .doc = "problems decoded together",
        .field = &member<&RunConfig::batch_problems>,
    },
    {
        .key = "output",
        .kind = KeyKind::kNonEmptyText,
        .what = "the results file, e.g. results/run.h5",
        .default_doc = "`results/run.h5`",
        .doc = "HDF5 results",
        .field = &member<&RunConfig::output>,
    },
    {
        .key = "transcript",
        .kind = KeyKind::kText,
        .default_doc = "`output` with `.txt`",
        .doc = "readable transcript",
        .field = &member<&RunConfig::transcript>,
    },
    {
        .key = "page_size",
        .kind = KeyKind::kInteger,
        .range = "a power of two in [8, 256]",
        .integer = {.min = 8, .max = 256, .also = is_power_of_two},
        .default_doc = "32",
        .doc = "tokens per KV page",
        .field = &member<&RunConfig::page_size>,
    },
    {
        .key = "max_tokens_per_problem",
        .kind = KeyKind::kInteger,
        .range = "in [256, 16777216]",
        .integer = {.min = 256, .max = 16777216},
        .default_doc = "8192",
        .doc = "cache capacity per problem (all blocks); at most the model's context length",
        .field = &member<&RunConfig::max_tokens_per_problem>,
    },
    {
        .key = "method",
        .kind = KeyKind::kChoice,
        .choices = kMethodNames,
        .default_doc = "`hogwild`",
        .doc = "`hogwild`; the paper's baselines: `single` (one worker, no collaboration prompts), "
               "`independent` (workers that see only their own text), `self_consistency` "
               "(independent samples at `sampling.temperature` > 0, majority vote)",
        .field = &member<&RunConfig::method>,
    },
    {
        .key = "vote",
        .kind = KeyKind::kBoolean,
        .default_doc = "`false`",
        .doc = "`independent`: the majority answer of all workers instead of the first one found "
               "(`self_consistency` always votes)",
        .field = &member<&RunConfig::vote>,
    },
    {
        .key = "checkpoints",
        .kind = KeyKind::kCustom,
        .default_doc = "none",
        .doc = "forward passes, increasing, at most `budget`: at each, the answer a run with that "
               "budget would give is recorded (`/problems/<id>/checkpoints`)",
        .read = read_checkpoints,
    },
    {
        .key = "record_logprobs",
        .kind = KeyKind::kInteger,
        .range = "in [0, 20] (0 = off)",
        .integer = {.min = 0, .max = kMaxLogprobs},
        .default_doc = "0",
        .doc = "K > 0: store each worker's sampled-token log-probabilities and its K most likely "
               "tokens in the results (`logprobs`, `top_ids`, `top_logprobs`); of the model's "
               "distribution, before temperature and filters; needs `parallel.worker_groups: 1`",
        .field = &member<&RunConfig::record_logprobs>,
    },

    {
        .key = "prompts",
        .kind = KeyKind::kSection,
        .what = "system, step_prefix, finisher, ...",
        .hinted_at_top_level = true,
        .doc = "the collaboration prompts",
    },
    // prompts.style comes first: io/config.cpp applies its defaults before any other key is read.
    {
        .key = "prompts.style",
        .kind = KeyKind::kChoice,
        .choices = kPromptStyleNames,
        .default_doc = "`paper`",
        .doc = "`paper`: the authors' construction (standalone header blocks, the marker and own "
               "header as one block, the prompt in the user message, no history title, a quick "
               "check every 256 tokens, stop at a step end with a number in `\\boxed{}`); "
               "`compact`: headers in the prompt's context, the prompt as system message under "
               "`### Past steps`, stop at any `\\boxed{}`; it sets the defaults below "
               "(README \"Fidelity to the paper\")",
        .field = &member<&RunConfig::prompts, &PromptConfig::style>,
    },
    {
        .key = "prompts.system",
        .kind = KeyKind::kText,
        .default_doc = R"(`""`)",
        .doc = "the system message; compact: a collaboration prompt (the team `{names}`, "
               "`{count}` of them, the three sections, the `<...>` marker; split the work, say so "
               "and switch on duplicated work, answer in `\\boxed{}`); `\"\"` = none (the "
               "model's template may add its own)",
        .field = &member<&RunConfig::prompts, &PromptConfig::system>,
    },
    {
        .key = "prompts.system_file",
        .kind = KeyKind::kText,
        .default_doc = "—",
        .doc = "a UTF-8 text file whose whole content is `prompts.system` (not with it); "
               "relative: from the current folder, else beside the YAML",
        .field = &member<&RunConfig::prompt_files, &PromptFiles::system>,
    },
    {
        .key = "prompts.user",
        .kind = KeyKind::kText,
        .default_doc = "a collaboration prompt",
        .doc = "the user message before the problem, then `\"\\n\\n\"`; paper: our "
               "collaboration prompt (as `prompts.system` above, without `### Past steps`); "
               "compact: `\"\"` = none",
        .field = &member<&RunConfig::prompts, &PromptConfig::user>,
    },
    {
        .key = "prompts.user_file",
        .kind = KeyKind::kText,
        .default_doc = "—",
        .doc = "a UTF-8 text file whose whole content is `prompts.user` (not with it); relative: "
               "from the current folder, else beside the YAML",
        .field = &member<&RunConfig::prompt_files, &PromptFiles::user>,
    },
    {
        .key = "prompts.history_header",
        .kind = KeyKind::kText,
        .default_doc = R"(`""`)",
        .doc = R"(before the finished steps of the whole team; compact: `"### Past steps\n\n"`)",
        .field = &member<&RunConfig::prompts, &PromptConfig::history_header>,
    },
    {
        .key = "prompts.others_header",
        .kind = KeyKind::kText,
        .default_doc = R"(`"\n\n### Work in progress (others)\n\n"`)",
        .doc = "before the others' live steps",
        .field = &member<&RunConfig::prompts, &PromptConfig::others_header>,
    },
    {
        .key = "prompts.own_header",
        .kind = KeyKind::kText,
        .default_doc = R"(`"### Work in progress (own)\n\n"`)",
        .doc = "before the worker's own live step; follows the last other worker's "
               R"(`incomplete_marker` + `"\n\n"` (paper: in one block with it; with no other )"
               R"(step shown, after `"\n\n"`))",
        .field = &member<&RunConfig::prompts, &PromptConfig::own_header>,
    },
    {
        .key = "prompts.step_prefix",
        .kind = KeyKind::kText,
        .default_doc = R"(`"**{name} [{step}]:** "`)",
        .doc = "opens each step; `{name}` and `{step}` are filled in",
        .field = &member<&RunConfig::prompts, &PromptConfig::step_prefix>,
    },
    {
        .key = "prompts.first_step_prefix",
        .kind = KeyKind::kText,
        .default_doc = R"(`"**{name} [{step}]:** Hi, I'm {name}."`)",
        .doc = "opens each worker's first step",
        .field = &member<&RunConfig::prompts, &PromptConfig::first_step_prefix>,
    },
    {
        .key = "prompts.lead_step_prefix",
        .kind = KeyKind::kText,
        .default_doc = R"(`"**{name} [{step}]:** Hi, I'm {name}. Here's how we can"`)",
        .doc = "opens the first worker's first step instead; compact: `\"\"` = "
               "`first_step_prefix`",
        .field = &member<&RunConfig::prompts, &PromptConfig::lead_step_prefix>,
    },
    {
        .key = "prompts.incomplete_marker",
        .kind = KeyKind::kText,
        .default_doc = R"(`"<...>"`)",
        .doc = R"(ends an unfinished paragraph shown to others; compact: `" <...>"`)",
        .field = &member<&RunConfig::prompts, &PromptConfig::incomplete_marker>,
    },
    {
        .key = "prompts.redundancy_check",
        .kind = KeyKind::kText,
        .default_doc = R"(`"Quick check: am I doing redundant work? (yes/no): "`)",
        .doc = "asked every `redundancy_interval` generated tokens",
        .field = &member<&RunConfig::prompts, &PromptConfig::redundancy_check>,
    },
    {
        .key = "prompts.redundancy_interval",
        .kind = KeyKind::kInteger,
        .range = "in [0, 1000000000] (0 = never)",
        .integer = {.min = 0, .max = 1000000000},
        .default_doc = "256",
        .doc = "paper: a step opens with the check once more than this many tokens were fed "
               "(prefixes included) since the last one, as the authors count; compact (default "
               "1024): one check per this many generated tokens (all workers); 0 = never",
        .field = &member<&RunConfig::prompts, &PromptConfig::redundancy_interval>,
    },
    {
        .key = "prompts.finisher",
        .kind = KeyKind::kText,
        .default_doc = R"(`"\n\nWait, given the limited time, I have to give an answer right )"
                       R"(now. Considering all my previous attempts, I have to conclude that the )"
                       R"(final answer is \\boxed{"`)",
        .doc = "appended to force an answer when the budget runs out (the authors' sentence); "
               R"(compact: `"\n\n... I have to give an answer right now. Considering )"
               R"(everything written above, the final answer is \\boxed{"`)",
        .field = &member<&RunConfig::prompts, &PromptConfig::finisher>,
    },
    {
        .key = "prompts.finisher_mode",
        .kind = KeyKind::kChoice,
        .choices = kFinisherModeNames,
        .default_doc = "`reencode`",
        .doc = "`reencode`: the transcript (history, every live step closed by the marker) and "
               "the finisher re-encoded in a fresh block, as the authors; compact: `in_cache`: "
               "the finisher after worker 0's last token in its own view, nothing re-encoded",
        .field = &member<&RunConfig::prompts, &PromptConfig::finisher_mode>,
    },
    {
        .key = "prompts.finisher_tokens",
        .kind = KeyKind::kInteger,
        .range = "in [0, 65536]",
        .integer = {.min = 0, .max = 65536},
        .default_doc = "16",
        .doc = "greedy tokens allowed after the finisher",
        .field = &member<&RunConfig::prompts, &PromptConfig::finisher_tokens>,
    },
    {
        .key = "prompts.stop_rule",
        .kind = KeyKind::kChoice,
        .choices = kStopRuleNames,
        .default_doc = "`number_at_step_end`",
        .doc = "when a collaborating team stops on an answer: at a step end whose last "
               "`\\boxed{}` holds a number (the authors'); compact: `any_boxed` = any complete "
               "`\\boxed{}`, even mid-step",
        .field = &member<&RunConfig::prompts, &PromptConfig::stop_rule>,
    },
    {
        .key = "prompts.step_end",
        .kind = KeyKind::kChoice,
        .choices = kStepEndNames,
        .default_doc = "`two_newlines`",
        .doc = "which token ends a step (after a sentence end): `two_newlines` (both styles) = "
               "one holding `\"\\n\\n\"` or the second of two `\"\\n\"`, not inside a code "
               "or math fence; `one_token` = the authors' rule, one token holding "
               "`\"\\n\\n\"`, no fences (SmolLM2 then practically never ends a step)",
        .field = &member<&RunConfig::prompts, &PromptConfig::step_end>,
    },
    {
        .key = "prompts.chat_template",
        .kind = KeyKind::kBoolean,
        .default_doc = "`true`",
        .doc = "wrap system prompt and problem in the model's chat template",
        .field = &member<&RunConfig::prompts, &PromptConfig::chat_template>,
    },
    {
        .key = "prompts.collaborate",
        .kind = KeyKind::kBoolean,
        .default_doc = "`true`",
        .doc = "`false` = plain decoding without system prompt, headers or prefixes",
        .field = &member<&RunConfig::prompts, &PromptConfig::collaborate>,
    },
    {
        .key = "prompts.parse_special",
        .kind = KeyKind::kBoolean,
        .default_doc = "`false`",
        .doc = "`true` = special-token text in a problem becomes control tokens; "
               "by default data is text and only the chat template and these prompts make them",
        .field = &member<&RunConfig::prompts, &PromptConfig::parse_special>,
    },

    {
        .key = "parallel",
        .kind = KeyKind::kSection,
        .what = "tensor, worker_groups",
        .doc = "the rank grid of a distributed run",
    },
    {
        .key = "parallel.tensor",
        .kind = KeyKind::kInteger,
        .range = "in [1, 4096]",
        .integer = {.min = 1, .max = 4096},
        .default_doc = "1",
        .doc =
            "tensor-parallel ranks (Megatron split of heads and feed-forward units); must divide "
            "the model's attention heads, key/value heads and feed-forward size",
        .field = &member<&RunConfig::parallel, &ParallelConfig::tensor>,
    },
    {
        .key = "parallel.worker_groups",
        .kind = KeyKind::kInteger,
        .range = "in [1, 4096]",
        .integer = {.min = 1, .max = 4096},
        .default_doc = "1",
        .doc = "worker groups (each on its own tensor-parallel ranks); the product must equal the "
               "number of MPI ranks",
        .field = &member<&RunConfig::parallel, &ParallelConfig::worker_groups>,
    },
    {
        .key = "parallel.sync",
        .kind = KeyKind::kChoice,
        .choices = kSyncNames,
        .default_doc = "`layer`",
        .doc =
            "`layer`: other groups' new K/V gathered in every layer before attention (exact: the "
            "single process's tokens); `step`: one gather per step after the forward (the others' "
            "tokens arrive one step late)",
        .field = &member<&RunConfig::parallel, &ParallelConfig::sync>,
    },
    {
        .key = "parallel.timeout_seconds",
        .kind = KeyKind::kReal,
        .range = "> 0",
        .real = {.min = 0, .open_min = true, .max = 1e9, .open_max = true},
        .default_doc = "300",
        .doc = "a collective waiting longer ends the whole job (watchdog), naming the rank",
        .field = &member<&RunConfig::parallel, &ParallelConfig::timeout_seconds>,
    },

    {
        .key = "backend",
        .kind = KeyKind::kChoice,
        .choices = kBackendNames,
        .default_doc = "`cpu`",
        .doc =
            "`cpu`, or `cuda` (each rank uses the GPU of its local rank; needs the `cuda` build)",
        .field = &member<&RunConfig::backend>,
    },
    {
        .key = "threads",
        .kind = KeyKind::kInteger,
        .range = "in [1, 1024]",
        .integer = {.min = 1, .max = 1024},
        .default_doc = "physical cores (`OMP_NUM_THREADS` when set)",
        .doc = "threads of the `cpu` backend: one pool runs the whole forward; unused by `cuda`",
        .field = &member<&RunConfig::threads>,
    },
    {
        .key = "weights",
        .kind = KeyKind::kChoice,
        .choices = kWeightFormatNames,
        .default_doc = "`native`",
        .doc =
            "`native`: matrices kept as the file stores them (Q4_1, Q8_0, F16, …; read by the CPU "
            "backend's quantized kernels, fp32 on CUDA for now); `f32`: dequantized at load, the "
            "exact reference path",
        .field = &member<&RunConfig::weights>,
    },
    {
        .key = "dtype",
        .kind = KeyKind::kChoice,
        .choices = kDtypeNames,
        .default_doc = "`f32`",
        .doc =
            "`f32`: the exact reference; `bf16`: the matrices not kept as stored (every one on "
            "CUDA) converted to bf16 at load (norms, biases and activations stay fp32, fp32 "
            "accumulation) and, on CUDA only, bf16 K/V pools (the CPU's attention keeps fp32 K/V)",
        .field = &member<&RunConfig::dtype>,
    },
    {
        .key = "cuda_graphs",
        .kind = KeyKind::kBoolean,
        .default_doc = "`true`",
        .doc =
            "replay decode steps as CUDA graphs (`backend: cuda`; same tokens either way, so not "
            "part of the run's fingerprint)",
        .field = &member<&RunConfig::cuda_graphs>,
    },
};

constexpr std::string_view section_part(std::string_view key) {
  const size_t dot = key.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : key.substr(0, dot);
}

// A list item's keys ("problems[].answer") are read by the list's hook, not by the table.
constexpr bool is_list_item_key(std::string_view key) { return section_part(key).ends_with("[]"); }

template <typename T>
constexpr bool holds(const Field& field) {
  return std::holds_alternative<FieldOf<T>>(field);
}

constexpr bool field_fits_kind(const ConfigKey& row) {
  switch (row.kind) {
    case KeyKind::kInteger:
      return holds<int64_t>(row.field) && !row.range.empty() && row.integer.min <= row.integer.max;
    case KeyKind::kUnsigned:
      return holds<uint64_t>(row.field);
    case KeyKind::kReal:
      return holds<double>(row.field) && !row.range.empty() && row.real.min < row.real.max;
    case KeyKind::kBoolean:
      return holds<bool>(row.field);
    case KeyKind::kText:
      return holds<std::string>(row.field);
    case KeyKind::kNonEmptyText:
      return holds<std::string>(row.field) && !row.what.empty();
    case KeyKind::kChoice:
      return (holds<std::string>(row.field) || holds<Layout>(row.field) ||
              holds<SyncMode>(row.field) || holds<PromptStyle>(row.field) ||
              holds<StopRule>(row.field) || holds<FinisherMode>(row.field) ||
              holds<Method>(row.field) || holds<StepEndRule>(row.field)) &&
             row.choices.size() >= 2;
    case KeyKind::kSection:
      return std::holds_alternative<std::monostate>(row.field) && !row.what.empty();
    case KeyKind::kCustom:
      return std::holds_alternative<std::monostate>(row.field) && row.read != nullptr;
  }
  return false;
}

// Checked at compile time: keys are unique, every key's map is declared before it, and each row
// has what its kind needs (a field of the right type, a range, choices, a hook).
constexpr bool well_formed(std::span<const ConfigKey> rows) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const ConfigKey& row = rows[i];
    if (row.key.empty() || row.doc.empty()) return false;
    if (row.hinted_at_top_level && !section_part(row.key).empty()) return false;
    if (is_list_item_key(row.key)) {
      if (!std::holds_alternative<std::monostate>(row.field)) return false;
    } else if (!field_fits_kind(row)) {
      return false;
    }
    std::string_view section = section_part(row.key);
    if (section.ends_with("[]")) section.remove_suffix(2);
    bool section_declared = section.empty();
    for (size_t j = 0; j < i; ++j) {
      if (rows[j].key == row.key) return false;
      if (rows[j].key == section) section_declared = true;
    }
    if (!section_declared) return false;
  }
  return true;
}
// GCC's UBSan instruments the function-pointer tests, which are then no longer constant: the
// sanitizer build skips this check, every other build makes it.
#ifndef HOGWILD_SANITIZED
static_assert(well_formed(kConfigKeys), "a row of kConfigKeys is malformed");
#endif

struct KeyIndex {
  std::map<std::string_view, std::vector<std::string_view>, std::less<>> names_by_section;
  std::vector<std::string_view> hinted_sections;
};

const KeyIndex& key_index() {
  static const KeyIndex index = [] {
    KeyIndex built;
    for (const ConfigKey& row : kConfigKeys) {
      built.names_by_section[section_part(row.key)].push_back(name_of(row.key));
      if (row.hinted_at_top_level) built.hinted_sections.push_back(row.key);
    }
    return built;
  }();
  return index;
}

}  // namespace

std::span<const ConfigKey> config_keys() { return kConfigKeys; }

const ConfigKey* find_config_key(std::string_view key) {
  const auto row = std::find_if(std::begin(kConfigKeys), std::end(kConfigKeys),
                                [&](const ConfigKey& candidate) { return candidate.key == key; });
  return row == std::end(kConfigKeys) ? nullptr : &*row;
}

std::string_view section_of(std::string_view key) { return section_part(key); }

std::string_view name_of(std::string_view key) {
  const size_t dot = key.rfind('.');
  return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

KeyList keys_of(std::string_view section) {
  const auto& sections = key_index().names_by_section;
  const auto names = sections.find(section);
  if (names == sections.end()) return {};
  return names->second;
}

KeyList sections_hinted_at_top_level() { return key_index().hinted_sections; }

bool takes_literal_text(std::string_view key) {
  const ConfigKey* row = find_config_key(key);
  return row != nullptr && (row->kind == KeyKind::kText || row->kind == KeyKind::kNonEmptyText ||
                            row->kind == KeyKind::kChoice);
}

}  // namespace hogwild

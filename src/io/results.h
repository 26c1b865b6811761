// Results of `hogwild run` in HDF5 (one group per problem) and a plain-text transcript. A problem
// is written and flushed as soon as it finishes, so an interrupted run keeps every finished one,
// and a write cut short (a full disk) leaves every problem before it readable. Strings are
// variable-length UTF-8 (fixed-length, exactly their bytes, when they hold a NUL).
//
// Layout of the HDF5 file:
//   /                       attrs: config (YAML text), model, layout, workers, created (ISO time),
//                                  hogwild_version; at the end problems, failed_problems,
//                                  accuracy, total_seconds, generated_tokens, tokens_per_second
//   /problems/<id>          attrs: id, question, reference_answer, answer, correct (int8: 1/0/-1
//                                  when unknown), stop_reason ("failed" for a problem that could
//                                  not run), error (why it failed; empty otherwise),
//                                  forward_passes, generated_tokens, seconds, index (order of
//                                  finishing)
//   /problems/<id>/workers/<name>/tokens      int32 [n]   every token the worker wrote
//   /problems/<id>/workers/<name>/text        string      its text, decoded
//   with record_logprobs K > 0 (absent otherwise), aligned 1:1 with tokens (row i = tokens[i]):
//   /problems/<id>/workers/<name>/logprobs      float32 [n]    log p(token) under the model's
//                           distribution (raw logits, suppressed tokens at -inf, before
//                           temperature and filters); NaN for tokens the engine forced (prefixes)
//   /problems/<id>/workers/<name>/top_ids       int32 [n, K]   the K most likely tokens, most
//                           likely first (ties: lower id); -1 for forced tokens
//   /problems/<id>/workers/<name>/top_logprobs  float32 [n, K] their log-probabilities; NaN there
//   /problems/<id>/steps    compound table, one row per finished step in history order:
//                           worker (int32), step (int32), first_token, end_token (int32; range in
//                           that worker's tokens), finished_pass (int32), seconds (float64)
//   /problems/<id>/transcript  string   the problem's transcript (steps interleaved)
//   /timings                compound table, one row per rank: rank, group, tensor_rank (int32),
//                           seconds, compute_seconds, tensor_seconds, worker_seconds (float64)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hogwild/problem.h"

namespace hogwild {

// Where one rank's time went in a distributed run (docs/design.md §8: communication share per
// grid).
struct RankTiming {
  int32_t rank = 0;
  int32_t group = 0;
  int32_t tensor_rank = 0;
  double seconds = 0.0;          // the whole decode loop
  double compute_seconds = 0.0;  // seconds minus the collectives below
  double tensor_seconds = 0.0;   // all-reduces on the tensor axis
  double worker_seconds = 0.0;   // all-gathers on the worker axis (K/V and tokens)
};

struct RunInfo {
  std::string config_text;
  std::string model;
  std::string layout;
  int64_t workers = 0;
};

class ResultsWriter {
 public:
  // Creates the HDF5 file and the transcript under hidden names beside their paths
  // (".NAME.PID.partial"); both take their names when the first problem is written (or at
  // close()), so a run that fails earlier leaves no file and touches none. An existing file is
  // replaced only with `overwrite`, and never while another run writes it. Throws
  // hogwild::Error naming the path if either cannot be written.
  ResultsWriter(const std::string& hdf5_path, const std::string& transcript_path,
                const RunInfo& info, bool overwrite = false);
  ~ResultsWriter();
  ResultsWriter(const ResultsWriter&) = delete;
  ResultsWriter& operator=(const ResultsWriter&) = delete;

  // Writes one finished (or failed) problem and flushes both files. Throws hogwild::Error
  // ("results: cannot write problem ... in PATH: No space left on device") if the disk refuses.
  void write(const ProblemResult& result);
  // Every rank's timing breakdown, as the table /timings (one row per rank).
  void write_timings(const std::vector<RankTiming>& timings);
  // Final summary attributes (problems, accuracy, total seconds, tokens/s); flushes and closes.
  void close(double total_seconds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hogwild

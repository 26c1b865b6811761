// Results of `hogwild run` in HDF5 (one group per problem) and a plain-text transcript, written
// so that no finished problem is ever lost and a run can resume where it stopped.
//
// On disk, while a run goes (docs: README "Results"):
//   NAME.h5               an index: the run's attributes and, under /problems, one external link
//                         per finished problem into its part file; replaced atomically (written
//                         beside, then renamed) after every problem, so it is always readable
//                         (h5py follows the links).
//   .NAME.h5.parts/NNNNNN.h5
//                         one file per finished problem (/problems/<id>, the layout below),
//                         written beside, synced, then renamed: a part is complete or absent,
//                         whenever the process dies (SIGKILL included).
//   NAME.txt              the transcript, appended and synced problem by problem.
// When the run ends, close() packs every part into one self-contained NAME.h5 (atomically) and
// removes the parts folder. A rerun with the same configuration (fingerprint) reads the finished
// problems back (read_existing_results) and computes only the others; the packed file has the
// same content as an uninterrupted run's, except times and the `index` order.
//
// Layout of the HDF5 file:
//   /                       attrs: config (YAML text), fingerprint (what the results depend on),
//                                  model, layout, workers, method, run_id, varied (JSON of the
//                                  sweep's varied keys; "{}" for a plain run), budget,
//                                  batch_problems, tensor, worker_groups, world_size, created (ISO
//                                  time), hogwild_version, complete (int8: 1 once packed); at the
//                                  end problems, failed_problems, accuracy, total_seconds,
//                                  generated_tokens, tokens_per_second (of the last process's
//                                  problems and seconds, when the run was resumed)
//   /problems/<id>          attrs: id, question, reference_answer, answer, answer_source (boxed,
//                                  gsm8k, last_number, none), answer_worker (int32; -1 none),
//                                  correct (int8: 1/0/-1 when unknown), stop_reason ("failed" for
//                                  a problem that could not run), error (why it failed; empty
//                                  otherwise), forward_passes, generated_tokens, seconds, index
//                                  (order of finishing)
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
//                           that worker's tokens), finished_pass (int32), seconds (float64),
//                           started_pass (int32)
//   /problems/<id>/checkpoints  compound table (with `checkpoints`), one row per checkpoint:
//                           checkpoint (int32, forward passes), answer (string), correct (int8),
//                           forward_passes (int32), seconds (float64)
//   /problems/<id>/events   compound table: pass (int32), worker (int32; -1 the team), kind
//                           (string: check = a redundancy prompt, answer, finisher)
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
  std::string fingerprint;  // a rerun resumes only the same fingerprint (io/fingerprint.h)
  std::string method = "hogwild";
  std::string run_id;         // sweeps: "workers=4,layout=combined"; empty for a plain run
  std::string varied = "{}";  // JSON object of the varied keys
  int64_t budget = 0;
  int64_t batch_problems = 0;
  int64_t tensor = 1;
  int64_t worker_groups = 1;
  int64_t world_size = 1;
};

// A problem a results file (or its parts folder) already holds.
struct FinishedProblem {
  std::string id;
  std::string question;
  std::string name;       // its group's name under /problems
  std::string part_file;  // its part file; empty when it is in the packed file
  int64_t index = 0;
  int correct = -1;
  bool failed = false;
  int64_t generated_tokens = 0;
};

struct ExistingResults {
  bool found = false;     // a results file or a parts folder exists
  bool complete = false;  // packed: the run that wrote it finished
  std::string fingerprint;
  std::vector<FinishedProblem> problems;  // in the order they finished
};

// What an existing output holds, for a resume. Throws hogwild::Error naming the file if it is not
// a readable results file of this program (a rerun with --overwrite replaces it).
ExistingResults read_existing_results(const std::string& hdf5_path);

// The parts folder of a results file: ".NAME.h5.parts" beside it.
std::string parts_folder(const std::string& hdf5_path);

// Removes the parts folder left beside a complete (packed) results file by a run killed between
// the packed file's rename and the folder's removal. A folder a live run holds locked stays, and
// so does the packed file, always. Returns whether a folder was removed.
bool remove_leftover_parts(const std::string& hdf5_path);

class ResultsWriter {
 public:
  // Nothing is written until the first problem (or close()): a run that fails earlier leaves no
  // file and touches none. An existing file is replaced only with `overwrite` (at the first
  // problem), and never while another run writes it. Throws hogwild::Error naming the path if
  // either cannot be written.
  // With `resume` (what read_existing_results found, same fingerprint), the run goes on from the
  // problems already finished: the transcript is rewritten from them and later problems add to
  // them; a packed file is first unpacked into parts.
  ResultsWriter(const std::string& hdf5_path, const std::string& transcript_path,
                const RunInfo& info, bool overwrite = false,
                const ExistingResults* resume = nullptr);
  ~ResultsWriter();
  ResultsWriter(const ResultsWriter&) = delete;
  ResultsWriter& operator=(const ResultsWriter&) = delete;

  // Writes one finished (or failed) problem and flushes both files. Throws hogwild::Error
  // ("results: cannot write problem ... in PATH: No space left on device") if the disk refuses.
  void write(const ProblemResult& result);
  // Every rank's timing breakdown, as the table /timings (one row per rank).
  void write_timings(const std::vector<RankTiming>& timings);
  // Final summary attributes (problems, accuracy, total seconds, tokens/s), every part packed into
  // the one file, the parts folder removed.
  void close(double total_seconds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hogwild

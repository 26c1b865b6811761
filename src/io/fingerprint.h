// What a run's results depend on, as text: a rerun resumes an output only when its fingerprint
// is the same (io/results.h). It is the run's YAML after overrides, less the keys that change how
// a run goes but not what it writes: threads, output, transcript, parallel.timeout_seconds,
// cuda_graphs (dtype stays: bf16 gives other tokens), and the selection of problems
// (problems.offset, problems.limit; finished problems are matched by id and question), so a run
// may be extended to more problems.
#pragma once

#include <string>

#include "io/config.h"

namespace hogwild {

std::string run_fingerprint(const RunConfig& config);

// The keys whose values differ between two fingerprints, for the error that refuses a resume:
// "budget (was 128, now 64), layout (was combined, now interleaved)".
std::string fingerprint_difference(const std::string& was, const std::string& now);

}  // namespace hogwild

// The start-up check of a distributed `hogwild run` (docs/design.md §6): every rank must run the
// same resolved configuration and the same model, or the rank grid's buffers disagree. The
// fingerprint is path-independent where paths may differ between nodes: the model is described
// by its architecture and its files' sizes and hashes, problems by their text, not by where
// they were read from.
#pragma once

#include <vector>

#include "comm/communicator.h"
#include "comm/rank_agreement.h"
#include "io/config.h"

namespace hogwild {

// One entry per configuration key after overrides (table order; sections are left out, and
// the paths `model`, `problems.file` and `prompts.*_file` are replaced by what they hold: a
// prompt read from a file is its `prompts.system` / `prompts.user` entry, shown by the file's
// path, size and hash), then the model:
// "model (architecture)" and "model (files)". Opens the model's header (not its weights).
std::vector<AgreementEntry> run_fingerprint(const RunConfig& config);

// Refuses, on every rank with the same one-line error, a job whose ranks run different
// configurations or models (naming the first key that differs); a few all-gathers, once.
void check_ranks_run_the_same(const RunConfig& config, Communicator& world);

}  // namespace hogwild

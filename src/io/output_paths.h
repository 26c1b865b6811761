// The files a run writes (results, transcript) may be neither a file it reads (the model, the
// config, the problems file) nor each other. Checked on real paths, links resolved, before any
// work, so a mistyped `output=` never replaces a model or a dataset.
#pragma once

#include <string>

#include "io/config.h"

namespace hogwild {

// Throws hogwild::Error naming both paths when an output would replace an input or the other
// output. `config_path` is the YAML file the run was loaded from.
void check_output_paths(const RunConfig& config, const std::string& config_path);

// Unless config.overwrite, an existing results file or transcript is refused, naming it and how
// to go on. Called before the model is loaded.
void check_outputs_free(const RunConfig& config);

}  // namespace hogwild

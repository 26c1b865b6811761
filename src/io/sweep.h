// `hogwild sweep`: a YAML file that names a base run configuration and the keys to vary. Read and
// checked whole before any model is loaded; every error names the key and the file.
//
//   base_config: ../demo.yaml     # or `base:` with the run keys inline (paths from this file)
//   output: results/methods       # the results folder: one NAME.h5 (+ .txt) per run
//   grid:                         # dotted run keys -> lists: every combination
//     method: [hogwild, independent]
//     workers: [2, 4]
//   zip:                          # lists of one length that vary together
//     layout: [combined, interleaved]
//     prompts.style: [paper, compact]
//   seeds: [0, 1]                 # `seed` values, crossed with the rest
//
// A run's id names its varied keys in order ("method=hogwild,workers=4,seed=1"); it is its file
// name (a '/' becomes '_'). The folder keeps the sweep as read (OUTPUT/sweep.yaml): a folder
// written by another sweep is refused, the same sweep resumes run by run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hogwild {

struct SweepRun {
  std::string id;
  std::string varied;                  // JSON object: key -> value as YAML text
  std::vector<std::string> overrides;  // key=value, the varied keys first
};

struct SweepPlan {
  std::string path;       // the sweep file
  std::string base_path;  // the base config's file (the sweep file itself for an inline base)
  std::string base_text;  // the base config's YAML
  std::string output;     // the results folder
  std::string identity;   // the sweep after overrides, as YAML (OUTPUT/sweep.yaml)
  std::vector<SweepRun> runs;
};

inline constexpr int64_t kMaxRunsWithoutYes = 1000;

// `overrides` (key=value) apply to every run's base; a key may not also be varied.
SweepPlan load_sweep(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace hogwild

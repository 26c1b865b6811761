// `hogwild sweep SWEEP.yaml [key=value ...]`: every run of a sweep (io/sweep.h), resumable.
#pragma once

#include <string>
#include <vector>

namespace hogwild {

int run_sweep(const std::vector<std::string>& argv);

}  // namespace hogwild

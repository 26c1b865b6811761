// Where tests find the source tree, ../shared and the demo model.
#pragma once

#include <filesystem>
#include <string>

namespace hogwild::testing {

inline std::string source_dir() { return HOGWILD_SOURCE_DIR; }
inline std::string shared_dir() { return HOGWILD_SHARED_DIR; }
inline std::string binary_dir() { return HOGWILD_BINARY_DIR; }
inline std::string python() { return HOGWILD_PYTHON; }
inline bool shared_available() { return std::filesystem::is_directory(shared_dir() + "/testdata"); }
inline std::string demo_model_path() {
  return source_dir() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}
inline bool demo_model_available() { return std::filesystem::exists(demo_model_path()); }

}  // namespace hogwild::testing

#define HOGWILD_REQUIRE_SHARED()                                                  \
  do {                                                                            \
    if (!::hogwild::testing::shared_available())                                  \
      GTEST_SKIP() << "../shared is absent (" << ::hogwild::testing::shared_dir() \
                   << "): its reference data exists in CI, not in a fresh clone"; \
  } while (0)

#define HOGWILD_REQUIRE_DEMO_MODEL()                                                    \
  do {                                                                                  \
    if (!::hogwild::testing::demo_model_available())                                    \
      GTEST_SKIP() << "demo model missing at " << ::hogwild::testing::demo_model_path() \
                   << ": run scripts/setup.sh first";                                   \
  } while (0)

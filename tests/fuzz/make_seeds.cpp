// Writes the fuzzers' seed corpora: <dir>/gguf/* and <dir>/safetensors/*.
#include <cstdio>
#include <filesystem>

#include "seeds.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  namespace fs = std::filesystem;
  const std::pair<const char*, std::vector<hogwild::fuzz::Seed>> corpora[] = {
      {"gguf", hogwild::fuzz::gguf_seeds()}, {"safetensors", hogwild::fuzz::safetensors_seeds()}};
  try {
    for (const auto& [parser, seeds] : corpora) {
      const fs::path dir = fs::path(argv[1]) / parser;
      fs::create_directories(dir);
      for (const auto& [name, bytes] : seeds)
        hogwild::testing::write_file((dir / name).string(), bytes);
      std::printf("%zu %s seeds in %s\n", seeds.size(), parser, dir.c_str());
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 1;
  }
  return 0;
}

// A stand-in for libFuzzer's driver where libFuzzer is unavailable (gcc builds): runs the entry
// point on every file given (or found in the folders given), then on deterministic mutations of
// them: bit flips, interesting bytes and integers, truncations, insertions, erasures and copied
// ranges, from a fixed-seed std::mt19937 so a failure reproduces. It finds what a sanitizer or a
// stray exception reports; coverage-guided search is the libFuzzer build's job (HOGWILD_FUZZ).
//
//   fuzz_gguf_replay [-mutations=N] [-seed=S] PATH...
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Bytes = std::vector<uint8_t>;

Bytes read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Values that sit on the edges parsers check: zero, one, sign bits, all ones, 2^k +- 1.
uint64_t interesting_integer(std::mt19937_64& random, size_t input_size) {
  const uint64_t values[] = {0,
                             1,
                             2,
                             7,
                             8,
                             0x7f,
                             0x80,
                             0xff,
                             0x100,
                             0x7fff,
                             0xffff,
                             0x10000,
                             0x7fffffff,
                             0x80000000,
                             0xffffffff,
                             1ull << 32,
                             1ull << 40,
                             1ull << 62,
                             1ull << 63,
                             ~0ull,
                             ~0ull - 1,
                             input_size,
                             input_size + 1,
                             input_size - 8};
  return values[random() % std::size(values)];
}

void mutate(Bytes& input, std::mt19937_64& random) {
  auto position = [&](size_t limit) {
    return limit == 0 ? 0 : static_cast<size_t>(random() % limit);
  };
  switch (random() % 8) {
    case 0:  // flip one bit
      if (!input.empty())
        input[position(input.size())] ^= static_cast<uint8_t>(1u << (random() % 8));
      break;
    case 1: {  // an interesting byte
      const uint8_t bytes[] = {0, 1, 0x7f, 0x80, 0xff, '"', '[', ']', '{', '}', ',', '-', '0', '9'};
      if (!input.empty()) input[position(input.size())] = bytes[random() % std::size(bytes)];
      break;
    }
    case 2: {  // an interesting 1/2/4/8-byte little-endian integer
      const size_t width = size_t{1} << (random() % 4);
      if (input.size() < width) break;
      const uint64_t value = interesting_integer(random, input.size());
      std::memcpy(input.data() + position(input.size() - width + 1), &value, width);
      break;
    }
    case 3:  // truncate
      input.resize(position(input.size() + 1));
      break;
    case 4: {  // insert random bytes
      const size_t count = 1 + random() % 16;
      const size_t at = position(input.size() + 1);
      Bytes inserted(count);
      for (uint8_t& byte : inserted) byte = static_cast<uint8_t>(random());
      input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), inserted.begin(),
                   inserted.end());
      break;
    }
    case 5: {  // erase a range
      if (input.empty()) break;
      const size_t at = position(input.size());
      const size_t count = 1 + position(std::min<size_t>(input.size() - at, 32));
      input.erase(input.begin() + static_cast<std::ptrdiff_t>(at),
                  input.begin() + static_cast<std::ptrdiff_t>(at + count));
      break;
    }
    case 6: {  // copy a range over another place
      if (input.size() < 2) break;
      const size_t count = 1 + position(std::min<size_t>(input.size() / 2, 32));
      const size_t from = position(input.size() - count + 1);
      const size_t to = position(input.size() - count + 1);
      std::memmove(input.data() + to, input.data() + from, count);
      break;
    }
    case 7: {  // nudge a decimal digit (JSON numbers in safetensors headers)
      if (input.empty()) break;
      const size_t start = position(input.size());
      for (size_t i = start; i < input.size(); ++i) {
        if (input[i] >= '0' && input[i] <= '9') {
          input[i] = static_cast<uint8_t>("0123456789-9"[random() % 12]);
          break;
        }
      }
      break;
    }
  }
}

void run(const Bytes& input) {
  // An exact-size heap copy, so that AddressSanitizer builds catch a read one byte too far.
  const Bytes copy(input);
  LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mutations = 10000;
  uint64_t seed = 1;
  std::vector<Bytes> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("-mutations=", 0) == 0) {
      mutations = std::stoull(arg.substr(11));
    } else if (arg.rfind("-seed=", 0) == 0) {
      seed = std::stoull(arg.substr(6));
    } else if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg))
        if (entry.is_regular_file()) inputs.push_back(read_bytes(entry.path()));
    } else if (std::filesystem::is_regular_file(arg)) {
      inputs.push_back(read_bytes(arg));
    } else {
      std::fprintf(stderr, "%s: no such file or folder: %s\n", argv[0], arg.c_str());
      return 2;
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "usage: %s [-mutations=N] [-seed=S] FILE_OR_DIR...\n", argv[0]);
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  for (const Bytes& input : inputs) run(input);
  std::mt19937_64 random(seed);
  for (uint64_t i = 0; i < mutations; ++i) {
    Bytes input = inputs[i % inputs.size()];
    const int rounds = 1 + static_cast<int>(random() % 4);
    for (int round = 0; round < rounds; ++round) mutate(input, random);
    run(input);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: %zu inputs and %llu mutations (seed %llu) in %.2f s: no crash\n", argv[0],
              inputs.size(), static_cast<unsigned long long>(mutations),
              static_cast<unsigned long long>(seed), seconds);
  return 0;
}

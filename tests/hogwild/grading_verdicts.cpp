// Prints the C++ grader's verdict on each pair of a grading table (tests/hogwild/grading_pairs.tsv:
// reference TAB predicted [TAB note]; '#' lines and blank lines are skipped), one line per pair:
// "<line number> TAB <1|0>". grading_vs_math_verify.py compares these with math-verify's.
#include <fstream>
#include <iostream>
#include <string>

#include "hogwild/grading.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: grading_verdicts PAIRS.tsv\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "grading_verdicts: cannot open " << argv[1] << "\n";
    return 2;
  }
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      std::cerr << "grading_verdicts: " << argv[1] << ":" << number
                << ": expected reference TAB predicted, got no tab\n";
      return 2;
    }
    const size_t end = line.find('\t', tab + 1);
    const std::string reference = line.substr(0, tab);
    const std::string predicted =
        line.substr(tab + 1, end == std::string::npos ? std::string::npos : end - tab - 1);
    std::cout << number << '\t' << (hogwild::answers_equivalent(predicted, reference) ? 1 : 0)
              << '\n';
  }
  return 0;
}

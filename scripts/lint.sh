#!/usr/bin/env bash
# Style and static checks, run by scripts/test.sh:
#   clang-format (.clang-format) on every tracked C++/CUDA source: no file may differ from it;
#   clang-tidy   (.clang-tidy) on the engine's C++ (src/, kernels/, comm/) of the cpu preset.
# `bash scripts/lint.sh --fix` rewrites the files with clang-format instead of checking them.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t sources < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${sources[@]}"
  exit 0
fi

echo "[lint] clang-format: ${#sources[@]} files"
if ! clang-format --dry-run --Werror "${sources[@]}" 2>/tmp/hogwild-format.$$; then
  grep -E '^[^ ].*: (error|warning):' /tmp/hogwild-format.$$ | cut -d: -f1 | sort -u |
    sed 's/^/[lint] not formatted: /'
  rm -f /tmp/hogwild-format.$$
  echo "[lint] run: bash scripts/lint.sh --fix"
  exit 1
fi
rm -f /tmp/hogwild-format.$$

db=build/cpu/compile_commands.json
[[ -f $db ]] || { echo "[lint] $db missing: build the cpu preset first"; exit 1; }
root=$(pwd)
echo "[lint] clang-tidy: src/ kernels/ comm/ ($(nproc) jobs)"
# GCC-only warning flags of the build mean nothing to clang: tell it to ignore them.
run-clang-tidy -p build/cpu -quiet -j "$(nproc)" -extra-arg=-Wno-unknown-warning-option \
  "^${root}/(src|kernels|comm)/" >/tmp/hogwild-tidy.$$ 2>&1 || {
  sed 's/\x1b\[[0-9;]*m//g' /tmp/hogwild-tidy.$$ | grep -E 'warning:|error:' | sort -u | head -50
  rm -f /tmp/hogwild-tidy.$$
  echo "[lint] clang-tidy found problems"
  exit 1
}
rm -f /tmp/hogwild-tidy.$$
echo "[lint] clean"

#!/usr/bin/env bash
# The whole test suite: set up (idempotent), build, run every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --preset cpu -j "$(nproc)" --timeout 900

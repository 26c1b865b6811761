#!/usr/bin/env bash
# The whole test suite: set up (idempotent), build, run every test with ctest, then the style and
# static checks (scripts/lint.sh: clang-format, clang-tidy). Where the CUDA toolkit exists, the
# CUDA code is also compiled (preset `cuda`) and its tests run; without a GPU they skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --preset cpu -j "$(nproc)" --timeout 900
bash scripts/lint.sh

if command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  echo "[test] CUDA toolkit found: compiling the CUDA backend (preset cuda)"
  cmake --preset cuda >/dev/null
  cmake --build --preset cuda -j "$(nproc)" --target hogwild_kernels_cuda test_cuda_device test_nccl \
    test_backend_ops test_cuda_forward
  ctest --test-dir build/cuda -R "Cuda|nccl|BackendOps" --output-on-failure --timeout 300
fi

#!/usr/bin/env bash
# The GPU checks of the CUDA backend, in ONE call on a lent H100/H200 (about 5 minutes, hard
# deadline 7.5 minutes; no network): build; the "cuda" op tests (test_backend_ops
# --gtest_filter='*cuda*', test_cuda_device); compute-sanitizer memcheck on them and racecheck on
# the kernels that use shared memory; the attention benchmark; then a summary table. Exits
# non-zero when any step fails (a skipped GPU test counts as a failure: there IS a GPU).
#
# The device image has nvcc, cuBLAS and CMake but not the project's Debian libraries (yaml-cpp,
# HDF5, OpenBLAS, GTest, Google Benchmark, ...) and cannot fetch any. So:
#   1. here, once:  benchmarks/device_check.sh --pack
#      copies GTest, Google Benchmark and the cblas header (~2 MB) into build/device-deps/;
#   2. device tool: run(command="bash benchmarks/device_check.sh", carry=["build/device-deps"],
#                       timeout_s=540)
# On the device the script first tries the `cuda` preset (configure + build -j16). Where that does
# not configure (missing libraries), or with HOGWILD_STANDALONE=1, it builds the same sources
# directly with nvcc and g++ for the GPU's own architecture, against build/device-deps. Logs, the
# benchmark's JSON and the summary go to $OUT when set (the device tool brings them back), else to
# build/device-check/logs.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
deps=build/device-deps

# ---- --pack: run on the development machine (Debian 12 after scripts/setup.sh)
if [[ ${1:-} == --pack ]]; then
  set -e
  multiarch=/usr/lib/x86_64-linux-gnu
  rm -rf "$deps"
  mkdir -p "$deps/include" "$deps/lib"
  cp -r /usr/include/gtest /usr/include/benchmark "$deps/include/"
  cp "$multiarch/libgtest.a" "$multiarch/libgtest_main.a" "$deps/lib/"
  # Plain files (links may not travel): the name to link with and the SONAME to load.
  cp -L "$multiarch/libbenchmark.so.1debian" "$deps/lib/"
  cp -L "$multiarch/libbenchmark.so.1debian" "$deps/lib/libbenchmark.so"
  cp /usr/include/x86_64-linux-gnu/openblas-openmp/cblas.h \
     /usr/include/x86_64-linux-gnu/openblas-openmp/openblas_config.h "$deps/include/"
  echo "packed $(du -sh "$deps" | cut -f1) into $deps: carry it to the device (carry: [\"$deps\"])"
  exit 0
fi

# ---- --standalone-build (internal): the GPU check binaries without the project's CMake, for a
# machine that has nvcc and cuBLAS but not the project's libraries; sources as in the presets.
if [[ ${1:-} == --standalone-build ]]; then
  set -e
  if [[ ! -d $deps ]]; then
    echo "no $deps: run 'benchmarks/device_check.sh --pack' on the development machine and carry it"
    exit 1
  fi
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  cxx=${CXX:-g++} out=build/device-check
  arch=$( (nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null || true) | head -1 | tr -d ' .')
  arch=${arch:-90}
  mkdir -p "$out/obj" "$out/bin"
  include=(-I"$root" -I"$root/src" -isystem "$root/$deps/include")
  openmp=""
  echo 'int main() {}' | "$cxx" -fopenmp -x c++ - -o /dev/null 2>/dev/null && openmp=-fopenmp
  # The CPU backend links against cblas_sgemm; the GPU checks never run it (no OpenBLAS here).
  cat >"$out/cblas_stub.cpp" <<'EOF'
#include <cblas.h>
#include <cstdio>
#include <cstdlib>
void cblas_sgemm(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE,
                 const blasint, const blasint, const blasint, const float, const float*,
                 const blasint, const float*, const blasint, const float, float*, const blasint) {
  std::fprintf(stderr, "device_check build: the CPU backend's GEMM is not available\n");
  std::abort();
}
EOF
  pids=() host=(error.cpp:src/common/error.cpp cpu_backend.cpp:kernels/cpu/cpu_backend.cpp
    cpu_block_attention.cpp:kernels/cpu/block_attention.cpp
    cuda_backend.cpp:kernels/cuda/cuda_backend.cpp cblas_stub.cpp:$out/cblas_stub.cpp
    test_backend_ops.cpp:tests/kernels/test_backend_ops.cpp
    test_cuda_device.cpp:tests/kernels/test_cuda_device.cpp
    bench_cuda_attention.cpp:benchmarks/bench_cuda_attention.cpp)
  for pair in "${host[@]}"; do
    "$cxx" -std=c++20 -O2 -DNDEBUG -DHOGWILD_CUDA=1 $openmp "${include[@]}" \
      -isystem "$(dirname "$(dirname "$nvcc")")/include" -c "${pair#*:}" -o "$out/obj/${pair%%:*}.o" &
    pids+=($!)
  done
  for cu in device ops block_attention; do
    "$nvcc" -std=c++17 -O3 --generate-code=arch=compute_$arch,code=sm_$arch "${include[@]}" \
      -c "kernels/cuda/$cu.cu" -o "$out/obj/$cu.cu.o" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  library=("$out/obj/"{error,cpu_backend,cpu_block_attention,cuda_backend,cblas_stub}.cpp.o
           "$out/obj/"{device,ops,block_attention}.cu.o)
  cuda_home=$(dirname "$(dirname "$nvcc")")
  link=(-ccbin "$cxx" -lcublas -Xcompiler "${openmp:--pthread}"
        -Xlinker -rpath,"$root/$deps/lib:$cuda_home/lib64:$cuda_home/lib")
  "$nvcc" -o "$out/bin/test_backend_ops" "$out/obj/test_backend_ops.cpp.o" "${library[@]}" \
    "$deps/lib/libgtest_main.a" "$deps/lib/libgtest.a" "${link[@]}"
  "$nvcc" -o "$out/bin/test_cuda_device" "$out/obj/test_cuda_device.cpp.o" "${library[@]}" \
    "$deps/lib/libgtest_main.a" "$deps/lib/libgtest.a" "${link[@]}"
  "$nvcc" -o "$out/bin/bench_cuda_attention" "$out/obj/bench_cuda_attention.cpp.o" "${library[@]}" \
    -L"$deps/lib" -lbenchmark "${link[@]}"
  exit 0
fi

start=$SECONDS
deadline=$((start + 450))  # 7.5 minutes: the whole script stays under 8
logs=${OUT:-$root/build/device-check/logs}
mkdir -p "$logs"
summary=$logs/summary.txt
: >"$summary"
failed=0
log() { printf '[device_check %s +%ss] %s\n' "$(date +%T)" "$((SECONDS - start))" "$*"; }
# seconds a step may take: its own cap, but never past the deadline (keeps 15 s for the summary)
allow() {
  local left=$((deadline - SECONDS - 15))
  ((left < $1)) && echo "$left" || echo "$1"
}
record() {  # name status seconds [note]
  printf '%-28s %-8s %6ss  %s\n' "$1" "$2" "$3" "${4:-}" >>"$summary"
  [[ $2 == FAIL || $2 == TIMEOUT ]] && failed=1
  log "$1: $2 ${4:-}"
}
# run_step NAME CAP LOGFILE COMMAND...: runs under a timeout, output to the log (and the console)
run_step() {
  local name=$1 cap=$2 file=$3
  shift 3
  local limit
  limit=$(allow "$cap")
  if ((limit < 20)); then
    record "$name" TIMEOUT 0 "no time left before the deadline"
    return 1
  fi
  log "$name (limit ${limit}s)"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$file"
  local status=${PIPESTATUS[0]}
  if ((status == 124 || status == 137)); then
    record "$name" TIMEOUT $((SECONDS - t0)) "killed after ${limit}s"
  elif ((status != 0)); then
    record "$name" FAIL $((SECONDS - t0)) "exit $status, see $(basename "$file")"
  else
    record "$name" PASS $((SECONDS - t0))
  fi
  return "$status"
}

log "GPU: $(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi not found')"
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
log "nvcc: $("$nvcc" --version 2>/dev/null | tail -1)"

# ---- build: the cuda preset, or the standalone fallback
bin=""
build_log=$logs/build.log
: >"$build_log"
t0=$SECONDS
if [[ -z ${HOGWILD_STANDALONE:-} ]] && timeout "$(allow 90)" cmake --preset cuda >>"$build_log" 2>&1; then
  record "configure (preset cuda)" PASS $((SECONDS - t0))
  if run_step "build (preset cuda)" 330 "$build_log" \
      cmake --build --preset cuda -j16 --target test_backend_ops test_cuda_device bench_cuda_attention; then
    bin=build/cuda/bin
  fi
else
  reason="missing libraries (build.log)"
  [[ -n ${HOGWILD_STANDALONE:-} ]] && reason="HOGWILD_STANDALONE set"
  record "configure (preset cuda)" SKIP $((SECONDS - t0)) "$reason: standalone build"
  tail -5 "$build_log"
  if run_step "build (standalone, nvcc)" 330 "$build_log" bash "$0" --standalone-build; then
    bin=build/device-check/bin
  fi
fi

# ---- tests, sanitizers, benchmark
if [[ -n $bin ]]; then
  # A GPU test that skips means the device was not seen: that fails the check.
  for name in test_backend_ops test_cuda_device; do
    file=$logs/$name.log
    : >"$file"
    if run_step "$name" 120 "$file" "$bin/$name" '--gtest_filter=*cuda*:CudaDevice.*'; then
      if grep -q '^\[  SKIPPED \]' "$file"; then
        record "$name: no skips" FAIL 0 "GPU tests skipped on a GPU machine"
      fi
    fi
  done

  sanitizer=$(command -v compute-sanitizer ||
    ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
      2>/dev/null | head -1)
  if [[ -n $sanitizer ]]; then
    : >"$logs/memcheck.log"
    run_step "memcheck (cuda op tests)" 150 "$logs/memcheck.log" \
      "$sanitizer" --tool memcheck --error-exitcode 1 "$bin/test_backend_ops" '--gtest_filter=*cuda*'
    : >"$logs/racecheck.log"
    run_step "racecheck (shared memory)" 120 "$logs/racecheck.log" \
      "$sanitizer" --tool racecheck --error-exitcode 1 "$bin/test_backend_ops" \
      '--gtest_filter=*BlockAttentionMatchesDefinition/cuda:*BlockAttentionBf16Cache/cuda:*RmsNorm*/cuda'
  else
    record "compute-sanitizer" SKIP 0 "not installed"
  fi

  : >"$logs/bench.log"
  run_step "bench_cuda_attention" 150 "$logs/bench.log" "$bin/bench_cuda_attention" \
    --benchmark_out="$logs/bench.json" --benchmark_out_format=json
fi

echo
echo "==== device_check summary ($((SECONDS - start)) s; logs in $logs)"
cat "$summary"
if [[ -f $logs/bench.log ]]; then
  echo
  sed -n '/^block_attention on/,$p' "$logs/bench.log"
fi
if ((failed)) || [[ -z $bin ]]; then
  echo "device_check: FAILED"
  exit 1
fi
echo "device_check: all passed"

#!/usr/bin/env bash
# The GPU checks of the whole decode path, in ONE call on a lent H100/H200 (no network; about
# 5-6 minutes, hard deadline 7.5 minutes so the call stays under 8). Steps, each under its own
# time cap (a step that hangs is killed and recorded as TIMEOUT; the rest still run):
#   1. build: the `cuda` preset, or (where it cannot configure: missing libraries) the same
#      sources built standalone with nvcc and g++ for the GPU's own architecture;
#   2. op tests: test_backend_ops (the "cuda" cases), test_cuda_device, and the whole forward vs
#      the CPU backend (test_cuda_forward, tiny models);
#   3. tiny random Llama/Qwen2/Qwen3 HF checkpoints written here with transformers: our
#      last-position log-probs and 32 greedy ids vs transformers on the same GPU, in bf16 and f32
#      (benchmarks/hf_forward_check.py; the tolerances are stated there);
#   4. the Hogwild attention kernel vs design §3-§4 in torch at 4 workers, 16k keys
#      (attention_check + attention_check.py), f32 and bf16 K/V;
#   5. decode steps, Qwen3-8B geometry, generated weights, bf16 asked, 1/2/4/8 workers x
#      1k/4k/8k/16k cached tokens vs the copy-bandwidth roofline; graphs on, then off for 1 and 4
#      workers (bench_cuda_decode); the attention benchmark (bench_cuda_attention);
#   6. compute-sanitizer memcheck on the op tests, racecheck on the shared-memory kernels;
#   7. summary.txt (a table to read) and summary.json (benchmarks/device_summary.py: every step,
#      every figure, the issue-13 targets) under $OUT.
# Exits non-zero when a step fails (a skipped GPU test counts as a failure: there IS a GPU).
#
# The device image has nvcc, cuBLAS, CMake, python with torch and transformers, but not the
# project's Debian libraries (yaml-cpp, HDF5, OpenBLAS, GTest, Google Benchmark, nlohmann-json,
# ...) and cannot fetch any. So:
#   1. here, once:  benchmarks/device_check.sh --pack
#      copies GTest, Google Benchmark, nlohmann-json and the python gguf package (~6 MB) into
#      build/device-deps/ (the CPU backend needs no BLAS there: it builds without OpenBLAS);
#   2. device tool: run(command="bash benchmarks/device_check.sh", carry=["build/device-deps"],
#                       timeout_s=540)
# HOGWILD_STANDALONE=1 skips the preset attempt; HOGWILD_PREBUILT=build/device-check/bin reuses
# the binaries of an earlier call on the same machine (a rerun saves the build). Logs, JSON and the summary go to $OUT when set
# (the device tool brings them back), else to build/device-check/logs.
#
# bf16 and CUDA graphs are asked for through TransformerOptions (dtype, graphs); until the
# engine implements them the runs are fp32 and eager, and summary.json says which dtypes the
# weights and KV pools really had.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
deps=build/device-deps

# ---- --pack: run on the development machine (Debian 12 after scripts/setup.sh)
if [[ ${1:-} == --pack ]]; then
  set -e
  multiarch=/usr/lib/x86_64-linux-gnu
  rm -rf "$deps"
  mkdir -p "$deps/include" "$deps/lib" "$deps/python"
  cp -r /usr/include/gtest /usr/include/benchmark /usr/include/nlohmann "$deps/include/"
  cp "$multiarch/libgtest.a" "$multiarch/libgtest_main.a" "$deps/lib/"
  # Plain files (links may not travel): the name to link with and the SONAME to load.
  cp -L "$multiarch/libbenchmark.so.1debian" "$deps/lib/"
  cp -L "$multiarch/libbenchmark.so.1debian" "$deps/lib/libbenchmark.so"
  # The gguf package: scripts/make_tiny_model.py (test_cuda_forward) imports it.
  gguf=$(.venv/bin/python -c 'import gguf, os; print(os.path.dirname(gguf.__file__))' 2>/dev/null ||
    python3 -c 'import gguf, os; print(os.path.dirname(gguf.__file__))')
  cp -r "$gguf" "$deps/python/"
  find "$deps/python" -name __pycache__ -prune -exec rm -rf {} +
  echo "packed $(du -sh "$deps" | cut -f1) into $deps: carry it to the device (carry: [\"$deps\"])"
  exit 0
fi

# ---- --standalone-build (internal): the GPU check binaries without the project's CMake, for a
# machine that has nvcc and cuBLAS but not the project's libraries. The library sources are
# globbed by folder (new files of those folders come along); the layers that need libraries the
# image lacks (tokenizer: PCRE2; io: yaml-cpp, HDF5; MPI, NCCL) are left out.
if [[ ${1:-} == --standalone-build ]]; then
  set -e
  if [[ ! -d $deps/include/nlohmann ]]; then
    echo "no $deps (or an old one): run 'benchmarks/device_check.sh --pack' on the development machine and carry it"
    exit 1
  fi
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  cuda_home=$(dirname "$(dirname "$nvcc")")
  cxx=${CXX:-g++} out=build/device-check
  arch=$( (nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null || true) | head -1 | tr -d ' .')
  arch=${arch:-90}
  jobs=$(nproc 2>/dev/null || echo 8)
  rm -rf "${out:?}/obj" "${out:?}/bin"
  mkdir -p "$out/obj" "$out/bin"
  python=${HOGWILD_DEVICE_PYTHON:-$(command -v python3 || echo /usr/bin/python3)}
  common_flags=(-O2 -DNDEBUG -DHOGWILD_CUDA=1 -I"$root" -I"$root/src" -I"$root/tests"
    -isystem "$root/$deps/include" -isystem "$cuda_home/include"
    -DHOGWILD_SOURCE_DIR="\"$root\"" -DHOGWILD_SHARED_DIR="\"$root/../shared\""
    -DHOGWILD_PYTHON="\"$python\"" -DHOGWILD_BINARY_DIR="\"$root/$out\"")
  openmp=-pthread
  echo 'int main() {}' | "$cxx" -fopenmp -x c++ - -o /dev/null 2>/dev/null && openmp="-fopenmp -pthread"
  shopt -s nullglob
  library=(src/common/*.cpp src/model/*.cpp src/cache/*.cpp src/engine/*.cpp
    kernels/*.cpp kernels/cpu/*.cpp kernels/cuda/*.cpp kernels/cuda/*.cu)
  for file in comm/*.cpp; do
    case $file in comm/mpi_communicator.cpp | comm/nccl_communicator.cpp) ;; *) library+=("$file") ;; esac
  done
  mains=(tests/kernels/test_backend_ops.cpp tests/kernels/test_cuda_device.cpp
    tests/kernels/test_sampling.cpp tests/engine/test_cuda_forward.cpp
    tests/engine/test_cuda_graphs.cpp tests/engine/test_cuda_dtype.cpp
    benchmarks/forward_check.cpp benchmarks/attention_check.cpp
    benchmarks/bench_cuda_decode.cpp benchmarks/bench_cuda_attention.cpp)
  # One compile command per line, run $jobs at a time.
  commands=$out/compile_commands.txt
  : >"$commands"
  for file in "${library[@]}" "${mains[@]}"; do
    object=$out/obj/${file//\//_}.o
    if [[ $file == *.cu ]]; then
      echo "$nvcc -std=c++17 -O3 --generate-code=arch=compute_$arch,code=sm_$arch -I$root -I$root/src -c $file -o $object" >>"$commands"
    else
      extra=""
      [[ $file == kernels/cpu/quant_matmul_avx2.cpp ]] && extra="-mavx2 -mfma -mf16c"
      [[ $file == kernels/cpu/quant_matmul.cpp ]] && extra="-DHOGWILD_QUANT_AVX2=1"
      # The sampling rule's exp must round as on the device (kernels/sampling_rule.h).
      [[ $file == kernels/cpu/sampling.cpp || $file == tests/kernels/test_sampling.cpp ]] &&
        extra="-ffp-contract=off"
      printf '%s -std=c++20 %s %s %s -c %s -o %s\n' "$cxx" "$openmp" "$extra" \
        "$(printf '%q ' "${common_flags[@]}")" "$file" "$object" >>"$commands"
    fi
  done
  echo "standalone build: $(wc -l <"$commands") units, $jobs at a time, sm_$arch"
  xargs -P "$jobs" -d '\n' -n 1 sh -c 'eval "$1"' sh <"$commands"
  objects=()
  for file in "${library[@]}"; do objects+=("$out/obj/${file//\//_}.o"); done
  ar rcs "$out/libhogwild_device.a" "${objects[@]}"
  # One archive: the linker takes from it every member the program needs, in any order.
  link=(-ccbin "$cxx" "$out/libhogwild_device.a" -lcublas -Xcompiler "${openmp// /,}"
    -Xlinker -rpath -Xlinker "$root/$deps/lib:$cuda_home/lib64:$cuda_home/lib")
  gtest=("$deps/lib/libgtest_main.a" "$deps/lib/libgtest.a")
  pids=()
  for main in "${mains[@]}"; do
    name=$(basename "$main" .cpp)
    extra=()
    [[ $name == test_* ]] && extra=("${gtest[@]}")
    [[ $name == bench_cuda_attention ]] && extra=(-L"$deps/lib" -lbenchmark)
    "$nvcc" -o "$out/bin/$name" "$out/obj/${main//\//_}.o" "${link[@]}" "${extra[@]}" &
    pids+=($!)
  done
  status=0
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  exit $status
fi

start=$SECONDS
deadline=$((start + 450))  # 7.5 minutes: the whole script stays under 8
logs=${OUT:-$root/build/device-check/logs}
mkdir -p "$logs"
summary=$logs/summary.txt
steps=$logs/steps.tsv  # name, status, seconds, note: device_summary.py reads it
: >"$summary"
: >"$steps"
failed=0
# The python that has torch (the image's; a venv here)
python=python3
for candidate in python3 python "$root/.venv/bin/python"; do
  if "$candidate" -c 'import torch, transformers' 2>/dev/null; then
    python=$candidate
    break
  fi
done
export PYTHONPATH=$root/$deps/python${PYTHONPATH:+:$PYTHONPATH}
export HOGWILD_DEVICE_PYTHON=$python  # the tests' python in the standalone build
log() { printf '[device_check %s +%ss] %s\n' "$(date +%T)" "$((SECONDS - start))" "$*"; }
# seconds a step may take: its own cap, but never past the deadline (keeps 20 s for the summary)
allow() {
  local left=$((deadline - SECONDS - 20))
  ((left < $1)) && echo "$left" || echo "$1"
}
record() {  # name status seconds [note]
  printf '%-34s %-8s %6ss  %s\n' "$1" "$2" "$3" "${4:-}" >>"$summary"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$steps"
  [[ $2 == FAIL || $2 == TIMEOUT ]] && failed=1
  log "$1: $2 ${4:-}"
}
# run_step NAME CAP LOGFILE COMMAND...: runs under a timeout, output to the log (and the console)
run_step() {
  local name=$1 cap=$2 file=$3
  shift 3
  local limit
  limit=$(allow "$cap")
  if ((limit < 10)); then
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
# gtest_step NAME CAP BINARY FILTER: run_step, and a FAIL when a GPU test skipped
gtest_step() {
  local file=$logs/$1.log
  : >"$file"
  if run_step "$1" "$2" "$file" "$3" "--gtest_filter=$4"; then
    if grep -q '^\[  SKIPPED \]' "$file"; then
      record "$1: no skips" FAIL 0 "GPU tests skipped on a GPU machine"
    fi
  fi
}

gpu=$(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi not found')
log "GPU: $gpu"
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
log "nvcc: $("$nvcc" --version 2>/dev/null | tail -1)"
log "python: $("$python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1)"

# ---- 1. build: the cuda preset, or the standalone fallback
targets=(test_backend_ops test_cuda_device test_cuda_forward test_cuda_graphs test_cuda_dtype
  test_sampling forward_check attention_check bench_cuda_decode bench_cuda_attention)
bin=""
build_log=$logs/build.log
: >"$build_log"
t0=$SECONDS
if [[ -n ${HOGWILD_PREBUILT:-} ]]; then
  # A rerun on a machine that still has the binaries of an earlier call (or a dry run elsewhere)
  record "build" SKIP 0 "HOGWILD_PREBUILT=$HOGWILD_PREBUILT"
  bin=$HOGWILD_PREBUILT
elif [[ -z ${HOGWILD_STANDALONE:-} ]] && timeout "$(allow 60)" cmake --preset cuda >>"$build_log" 2>&1; then
  record "configure (preset cuda)" PASS $((SECONDS - t0))
  if run_step "build (preset cuda)" 240 "$build_log" \
      cmake --build --preset cuda -j"$(nproc)" --target "${targets[@]}"; then
    bin=build/cuda/bin
  fi
else
  reason="missing libraries (build.log)"
  [[ -n ${HOGWILD_STANDALONE:-} ]] && reason="HOGWILD_STANDALONE set"
  record "configure (preset cuda)" SKIP $((SECONDS - t0)) "$reason: standalone build"
  tail -5 "$build_log"
  if run_step "build (standalone, nvcc)" 240 "$build_log" bash "$0" --standalone-build; then
    bin=build/device-check/bin
  fi
fi

if [[ -n $bin ]]; then
  # ---- 2. op tests and the whole forward vs the CPU backend
  gtest_step test_backend_ops 60 "$bin/test_backend_ops" '*cuda*'
  gtest_step test_cuda_device 30 "$bin/test_cuda_device" 'CudaDevice.*'
  # The demo model (94 MB) cannot travel: the tiny models only.
  gtest_step test_cuda_forward 60 "$bin/test_cuda_forward" 'CudaForward.TinyModels*'
  gtest_step test_cuda_graphs 45 "$bin/test_cuda_graphs" 'CudaGraphs.*'
  gtest_step test_cuda_dtype 60 "$bin/test_cuda_dtype" 'CudaDtype.*'
  gtest_step test_sampling 45 "$bin/test_sampling" '*cuda*'

  # ---- 3. vs transformers on the same GPU
  for dtype in bf16 f32; do
    : >"$logs/hf_forward_$dtype.log"
    run_step "forward vs transformers ($dtype)" 60 "$logs/hf_forward_$dtype.log" \
      "$python" benchmarks/hf_forward_check.py --driver "$bin/forward_check" --device cuda \
      --dtype "$dtype" --work build/device-check/hf-$dtype --json "$logs/hf_forward_$dtype.json"
  done

  # ---- 4. the Hogwild attention kernel vs design §3-§4 in torch
  for kv in f32 bf16; do
    dump=build/device-check/attention-$kv
    mkdir -p "$dump"
    : >"$logs/attention_check_$kv.log"
    run_step "attention vs torch ($kv K/V)" 45 "$logs/attention_check_$kv.log" bash -c \
      "'$bin/attention_check' --backend cuda --keys 16384 --workers 4 --kv $kv --out '$dump' &&
       '$python' benchmarks/attention_check.py '$dump' --device cuda --json '$logs/attention_check_$kv.json'"
  done

  # ---- 5. decode steps vs the roofline; graphs on, then off for 1 and 4 workers
  : >"$logs/decode.log"
  run_step "decode (graphs on)" 120 "$logs/decode.log" "$bin/bench_cuda_decode" --backend cuda \
    --dtype bf16 --graphs on --workers 1,2,4,8 --contexts 16384,8192,4096,1024 \
    --json "$logs/decode_graphs_on.json"
  run_step "decode (graphs off)" 75 "$logs/decode.log" "$bin/bench_cuda_decode" --backend cuda \
    --dtype bf16 --graphs off --workers 1,4 --contexts 8192,4096 \
    --json "$logs/decode_graphs_off.json"
  : >"$logs/bench.log"
  run_step "bench_cuda_attention" 60 "$logs/bench.log" "$bin/bench_cuda_attention" \
    --benchmark_out="$logs/bench.json" --benchmark_out_format=json

  # ---- 6. sanitizers (last: the slowest, and the figures above matter more)
  sanitizer=$(command -v compute-sanitizer ||
    ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
      2>/dev/null | head -1)
  if [[ -n $sanitizer ]]; then
    : >"$logs/memcheck.log"
    run_step "memcheck (cuda op tests)" 90 "$logs/memcheck.log" \
      "$sanitizer" --tool memcheck --error-exitcode 1 "$bin/test_backend_ops" '--gtest_filter=*cuda*'
    : >"$logs/racecheck.log"
    run_step "racecheck (shared memory)" 60 "$logs/racecheck.log" \
      "$sanitizer" --tool racecheck --error-exitcode 1 "$bin/test_backend_ops" \
      '--gtest_filter=*BlockAttentionMatchesDefinition/cuda:*BlockAttentionBf16Cache/cuda:*RmsNorm*/cuda'
    : >"$logs/memcheck_sampling.log"
    run_step "memcheck + racecheck (sampling)" 45 "$logs/memcheck_sampling.log" bash -c \
      "'$sanitizer' --tool memcheck --error-exitcode 1 '$bin/test_sampling' '--gtest_filter=*cuda*' &&
       '$sanitizer' --tool racecheck --error-exitcode 1 '$bin/test_sampling' '--gtest_filter=*cuda*'"
  else
    record "compute-sanitizer" SKIP 0 "not installed"
  fi
fi

# ---- 7. summary: the table and the JSON
echo
echo "==== device_check summary ($((SECONDS - start)) s; logs in $logs)"
cat "$summary"
if [[ -f $logs/bench.log ]]; then
  echo
  sed -n '/^block_attention on/,$p' "$logs/bench.log"
fi
if ! timeout 20 "$python" benchmarks/device_summary.py "$logs" --gpu "$gpu" \
    --seconds $((SECONDS - start)) | tee -a "$summary"; then
  echo "device_check: device_summary.py failed (the step table above stands)"
  failed=1
fi
if ((failed)) || [[ -z $bin ]]; then
  echo "device_check: FAILED"
  exit 1
fi
echo "device_check: all passed"

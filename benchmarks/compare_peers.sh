#!/usr/bin/env bash
# hogwild against its peers on the same GGUF file and thread count, A/B interleaved (within a
# round, each engine in turn for each case). Not in CI: it takes the machine for a while (run it
# on a quiet one) and installs llama-cpp-python (CPU-only source build, minutes) if missing.
#
#   benchmarks/compare_peers.sh [MODE] [MODEL] [THREADS] [ROUNDS] [--json FILE] [--overwrite]
#                               [--batches 1,4,8,16] [--busy-batches 1,4] [--steps N]
#                               [--context N]
#
# MODE (default decode):
#   decode   decode tok/s at each of --batches: hogwild's build/cpu/bin/bench_decode with weights
#            native and f32 (one process per case; its roofline ratio and streaming-read GB/s
#            are kept) against llama.cpp through llama-cpp-python's low-level API
#            (benchmarks/peers_llama.py: BATCH sequences in one llama_decode per step,
#            n_seq_max = BATCH, n_threads = n_threads_batch = THREADS, --steps timed steps).
#            Both engines first cache --context tokens (64, as bench_decode) per sequence.
#   busy     at each of --busy-batches, each engine idle and then with one competing busy process
#            (a forked spinner, bench_decode --busy and the same in peers_llama.py) started just
#            before the timed steps and killed just after; kept = busy / idle.
#   prefill  benchmarks/compare_prefill.sh: prefill of ~512 and ~6k tokens vs PyTorch eager.
#   all      decode and busy in the same rounds, then prefill.
# MODEL: default models/SmolLM2-135M-Instruct.Q4_1.gguf; THREADS: default 2; ROUNDS: default 3.
# Prints one line per run (with the load from uptime), then a table of the medians over rounds
# and the ratios hogwild / peer, and writes every run and the medians as JSON to --json FILE
# (default /tmp/compare_peers.json); an existing file is kept (error) unless --overwrite.
# bench_decode holds each case for at least 3 s (its MinTime); hogwild batches that bench_decode
# does not register (see --benchmark_list_tests) are reported n/a.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage="usage: compare_peers.sh [decode|busy|prefill|all] [MODEL] [THREADS] [ROUNDS] [--json FILE] [--overwrite] [--batches LIST] [--busy-batches LIST] [--steps N] [--context N]"
die() { echo "compare_peers: $*" >&2; exit 2; }
mode=decode
json=/tmp/compare_peers.json
overwrite=0
batches=1,4,8,16
busy_batches=1,4
steps=64
context=64
positional=()
if [[ ${1:-} =~ ^(decode|busy|prefill|all)$ ]]; then
  mode=$1
  shift
fi
while (($#)); do
  case $1 in
    --json) (($# >= 2)) || die "$usage"; json=$2; shift 2 ;;
    --json=*) json=${1#--json=}; shift ;;
    --overwrite) overwrite=1; shift ;;
    --batches) (($# >= 2)) || die "$usage"; batches=$2; shift 2 ;;
    --busy-batches) (($# >= 2)) || die "$usage"; busy_batches=$2; shift 2 ;;
    --steps) (($# >= 2)) || die "$usage"; steps=$2; shift 2 ;;
    --context) (($# >= 2)) || die "$usage"; context=$2; shift 2 ;;
    -h | --help) echo "$usage"; exit 0 ;;
    -*) die "unknown option $1; $usage" ;;
    *) positional+=("$1"); shift ;;
  esac
done
((${#positional[@]} <= 3)) || die "too many arguments; $usage"
model=${positional[0]:-$root/models/SmolLM2-135M-Instruct.Q4_1.gguf}
threads=${positional[1]:-2}
rounds=${positional[2]:-3}
[[ $threads =~ ^[1-9][0-9]*$ ]] && ((threads <= 1024)) || die "THREADS must be an integer in [1, 1024], not '$threads'; $usage"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$rounds'; $usage"
[[ $steps =~ ^[1-9][0-9]*$ ]] || die "--steps must be a positive integer, not '$steps'"
[[ $context =~ ^[1-9][0-9]*$ ]] || die "--context must be a positive integer, not '$context'"
for list in "$batches" "$busy_batches"; do
  [[ $list =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "batch lists are comma-separated positive integers, not '$list'"
  for b in ${list//,/ }; do ((b <= 64)) || die "batch $b above 64 (llama.cpp's sequence limit)"; done
done
[[ -f $model ]] || die "no model at $model"
model=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")
if [[ -e $json && $overwrite == 0 ]]; then
  die "$json exists; pass --overwrite to replace it or --json FILE for another"
fi
[[ -d $(dirname "$json") ]] || die "no folder for $json"
python=$root/.venv/bin/python
bench=$root/build/cpu/bin/bench_decode
[[ -x $python ]] || die "no $python (scripts/setup.sh makes the venv)"
measure_decode=0
measure_busy=0

# llama.cpp's instruction sets: everything this CPU has (as GGML_NATIVE would choose) except AMX,
# whose matmul (ggml_backend_amx_mul_mat) crashed with a segfault at every batch of two or more
# tokens in llama-cpp-python 0.3.36 on a Sapphire Rapids VM (2026-12-02); without AMX, llama.cpp
# uses its AVX-512 VNNI kernels, the same instruction sets as hogwild's.
llama_isa_flags() {
  local cpu_flags flags="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  local pair
  for pair in sse4_2:SSE42 f16c:F16C fma:FMA bmi2:BMI2 avx:AVX avx2:AVX2 avx_vnni:AVX_VNNI \
    avx512bw:AVX512 avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if [[ $cpu_flags == *" ${pair%%:*} "* ]]; then flags+=" -DGGML_${pair#*:}=ON"; else flags+=" -DGGML_${pair#*:}=OFF"; fi
  done
  echo "$flags"
}
[[ $mode == decode || $mode == all ]] && measure_decode=1
[[ $mode == busy || $mode == all ]] && measure_busy=1
if ((measure_decode || measure_busy)); then
  [[ -x $bench ]] || die "no $bench: build first (cmake --preset cpu && cmake --build build/cpu)"
  if ! "$python" -c 'import llama_cpp' 2>/dev/null; then
    echo "compare_peers: installing llama-cpp-python (CPU-only source build, minutes)"
    CMAKE_ARGS="-DGGML_CUDA=OFF $(llama_isa_flags) -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
      "$python" -m pip install llama-cpp-python
  fi
fi
if [[ $mode == prefill || $mode == all ]]; then
  "$python" -c 'import torch, transformers' 2>/dev/null ||
    die "prefill needs torch and transformers in $root/.venv"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
records=$work/records.jsonl
: >"$records"
load() { uptime | sed -E 's/.*load average: //'; }
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); mode $mode; threads $threads; rounds $rounds; load $(load)"

# The batches bench_decode registers (it measures the read bandwidth before listing them).
declare -A hogwild_has=()
if ((measure_decode || measure_busy)); then
  while read -r name; do
    [[ $name =~ batch:([0-9]+)/busy:0 ]] && hogwild_has[${BASH_REMATCH[1]}]=1
  done < <("$bench" --model="$model" --threads="$threads" --benchmark_list_tests 2>/dev/null)
  ((${#hogwild_has[@]})) || die "$bench --benchmark_list_tests listed no decode benchmarks"
  for b in ${batches//,/ } ${busy_batches//,/ }; do
    [[ -n ${hogwild_has[$b]:-} ]] ||
      echo "note: bench_decode has no batch $b (it registers ${!hogwild_has[*]}): hogwild n/a there"
  done
fi

# One bench_decode process for one case: MODE decode (idle) or busy (idle, then --busy).
run_hogwild() {
  local round=$1 mode=$2 batch=$3 weights=$4 flags=() filter
  [[ -n ${hogwild_has[$batch]:-} ]] || return 0
  filter="^BM_Decode/batch:$batch/busy:0/"
  if [[ $mode == busy ]]; then
    flags=(--busy)
    filter="^BM_Decode/batch:$batch/busy:[01]/"
  fi
  rm -f "$work/bench.json"
  if ! "$bench" --model="$model" --threads="$threads" --context="$context" --weights="$weights" \
    "${flags[@]}" --benchmark_filter="$filter" --benchmark_out="$work/bench.json" \
    --benchmark_out_format=json >"$work/bench.out" 2>"$work/bench.err"; then
    cat "$work/bench.err" "$work/bench.out" >&2
    die "bench_decode failed (round $round, $mode, batch $batch, $weights)"
  fi
  "$python" "$root/benchmarks/peers_table.py" hogwild "$records" "$work/bench.json" \
    "$work/bench.err" "$round" "$mode" "$weights" "$(load)"
}

run_llama() {
  local round=$1 mode=$2 batch=$3 flags=() out
  [[ $mode == busy ]] && flags=(--busy)
  out=$("$python" "$root/benchmarks/peers_llama.py" "$model" "$threads" "$batch" "$steps" \
    "$context" "${flags[@]}") || die "peers_llama.py failed (round $round, $mode, batch $batch)"
  "$python" "$root/benchmarks/peers_table.py" llama "$records" "$out" "$round" "$mode" "$(load)"
}

# One round of a mode at each batch of a comma list: each engine in turn.
run_batches() {
  local round=$1 mode=$2 list=$3 batch
  for batch in ${list//,/ }; do
    run_hogwild "$round" "$mode" "$batch" native
    run_hogwild "$round" "$mode" "$batch" f32
    run_llama "$round" "$mode" "$batch"
  done
}

if ((measure_decode || measure_busy)); then
  for round in $(seq "$rounds"); do
    if ((measure_decode)); then run_batches "$round" decode "$batches"; fi
    if ((measure_busy)); then run_batches "$round" busy "$busy_batches"; fi
  done
fi

if [[ $mode == prefill || $mode == all ]]; then
  "$root/benchmarks/compare_prefill.sh" "$model" "$threads" "$rounds" | tee "$work/prefill.log"
  "$python" "$root/benchmarks/peers_table.py" prefill "$records" "$work/prefill.log"
fi

llama_version=$("$python" -c 'import llama_cpp; print(llama_cpp.__version__)' 2>/dev/null || echo none)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD 2>/dev/null || commit+="+dirty"
meta=$("$python" -c 'import json, sys; k = sys.argv[1::2]; v = sys.argv[2::2]; print(json.dumps(dict(zip(k, v))))' \
  date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" commit "$commit" mode "$mode" model "$model" \
  cpus "$(nproc)" cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
  llama_cpp "$llama_version" batches "$batches" busy_batches "$busy_batches" \
  load_at_end "$(load)")
meta=$("$python" -c 'import json, sys; m = json.loads(sys.argv[1]); m.update(threads=int(sys.argv[2]), rounds=int(sys.argv[3]), llama_steps=int(sys.argv[4]), context=int(sys.argv[5])); print(json.dumps(m))' \
  "$meta" "$threads" "$rounds" "$steps" "$context")
if [[ -e $json && $overwrite == 0 ]]; then
  json_new=$json.$$
  echo "compare_peers: $json appeared during the run; writing $json_new instead" >&2
  json=$json_new
fi
"$python" "$root/benchmarks/peers_table.py" summary "$records" "$json" "$meta"

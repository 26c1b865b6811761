#!/usr/bin/env bash
# Decode speed side by side with llama.cpp (llama-cpp-python from PyPI, built CPU-only) on the
# same GGUF file and thread count, A/B interleaved. Not in CI: it installs the peer into the venv
# on demand (a source build of llama.cpp, minutes) and takes the machine for a while.
#   benchmarks/compare_peers.sh [MODEL] [THREADS] [ROUNDS]
# Prints one line per run and a summary of tok/s and the ratio ours / llama.cpp.
#   benchmarks/compare_peers.sh prefill [MODEL] [THREADS] [ROUNDS]
# runs benchmarks/compare_prefill.sh instead: prefill vs PyTorch eager (transformers).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ ${1:-} == prefill ]]; then
  shift
  exec "$root/benchmarks/compare_prefill.sh" "$@"
fi
model=${1:-$root/models/SmolLM2-135M-Instruct.Q4_1.gguf}
threads=${2:-2}
rounds=${3:-3}
python=$root/.venv/bin/python
hogwild=$root/build/cpu/bin/hogwild
[[ -x $hogwild ]] || { echo "compare_peers: build first (cmake --preset cpu && cmake --build build/cpu)"; exit 1; }
[[ -f $model ]] || { echo "compare_peers: no model at $model"; exit 1; }
if ! "$python" -c 'import llama_cpp' 2>/dev/null; then
  echo "compare_peers: installing llama-cpp-python (CPU-only source build)"
  CMAKE_ARGS="-DGGML_CUDA=OFF -DGGML_NATIVE=ON -DLLAMA_CURL=OFF" "$python" -m pip install llama-cpp-python
fi
tokens=64
prompt="Write a short story about a robot who learns to paint."
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  for weights in native f32; do
    line=$("$hogwild" generate --model "$model" --threads "$threads" --weights "$weights" \
      --prompt "$prompt" --max-tokens "$tokens" --ignore-eos 2>&1 >/dev/null | grep '^\[prefill')
    rate=$(sed -E 's/.*decode: [0-9]+ tokens in [0-9.]+ s \(([0-9.]+) tok\/s\).*/\1/' <<<"$line")
    echo "round $round hogwild weights=$weights: $rate tok/s"
  done
  "$python" - "$model" "$threads" "$tokens" "$prompt" "$round" <<'PY'
import sys, time
import llama_cpp
model, threads, tokens, prompt, round_ = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
llm = llama_cpp.Llama(model_path=model, n_threads=threads, n_threads_batch=threads, n_ctx=512,
                      n_batch=512, verbose=False)
ids = llm.tokenize(prompt.encode())
llm.eval(ids)
token = ids[-1]
start = time.perf_counter()
for _ in range(tokens):
    llm.eval([token])
    token = int(llm.scores[llm.n_tokens - 1].argmax())
seconds = time.perf_counter() - start
print(f"round {round_} llama.cpp: {tokens / seconds:.1f} tok/s")
PY
done

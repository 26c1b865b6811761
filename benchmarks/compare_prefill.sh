#!/usr/bin/env bash
# Prefill speed side by side with PyTorch eager (transformers, sdpa, fp32) on the same GGUF model
# (converted once by scripts/gguf_to_hf.py) and thread count, A/B interleaved: per round and
# prompt length, hogwild generate --max-tokens 1 with weights native and f32, then
# benchmarks/prefill_torch.py on the same token ids. Not in CI (minutes; torch and transformers
# from .venv). Called by compare_peers.sh prefill.
#   benchmarks/compare_prefill.sh [MODEL] [THREADS] [ROUNDS]
# Prints one line per run, then per length the median tok/s of each and the ratios ours / torch.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-$root/models/SmolLM2-135M-Instruct.Q4_1.gguf}
threads=${2:-2}
rounds=${3:-3}
python=$root/.venv/bin/python
hogwild=$root/build/cpu/bin/hogwild
[[ -x $hogwild ]] || { echo "compare_prefill: build first (cmake --preset cpu && cmake --build build/cpu)"; exit 1; }
[[ -f $model ]] || { echo "compare_prefill: no model at $model"; exit 1; }
"$python" -c 'import torch, transformers' 2>/dev/null ||
  { echo "compare_prefill: torch and transformers are needed in $root/.venv"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "converting $model for transformers (scripts/gguf_to_hf.py, f32)"
"$python" "$root/scripts/gguf_to_hf.py" "$model" "$work/hf" --dtype f32 >/dev/null
# Prompts: the first bytes of docs/design.md (about 3.5 bytes a token: ~512 and ~6000 tokens).
for bytes in 1800 21300; do
  head -c "$bytes" "$root/docs/design.md" >"$work/prompt_$bytes.txt"
  "$hogwild" tokenize --model "$model" --file "$work/prompt_$bytes.txt" >"$work/prompt_$bytes.ids"
done
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); threads $threads; load: $(cut -d' ' -f1-3 /proc/loadavg)"
results=$work/results
: >"$results"
for round in $(seq "$rounds"); do
  for bytes in 1800 21300; do
    for weights in native f32; do
      line=$("$hogwild" generate --model "$model" --threads "$threads" --weights "$weights" \
        --prompt-file "$work/prompt_$bytes.txt" --max-tokens 1 --ignore-eos 2>&1 >/dev/null |
        grep '^\[prefill')
      tokens=$(sed -E 's/^\[prefill: ([0-9]+) tokens.*/\1/' <<<"$line")
      rate=$(sed -E 's/^\[prefill: [0-9]+ tokens in [0-9.]+ s \(([0-9.]+) tok\/s\).*/\1/' <<<"$line")
      echo "round $round tokens $tokens hogwild weights=$weights: $rate tok/s (load $(cut -d' ' -f1 /proc/loadavg))"
      echo "$tokens hogwild_$weights $rate $round" >>"$results"
    done
    line=$(OMP_NUM_THREADS=$threads "$python" "$root/benchmarks/prefill_torch.py" "$work/hf" \
      "$work/prompt_$bytes.ids" "$threads" 2>/dev/null | grep '^torch:')
    tokens=$(sed -E 's/^torch: ([0-9]+) tokens.*/\1/' <<<"$line")
    rate=$(sed -E 's/.*\(([0-9.]+) tok\/s\).*/\1/' <<<"$line")
    echo "round $round tokens $tokens torch eager: $rate tok/s (load $(cut -d' ' -f1 /proc/loadavg))"
    echo "$tokens torch $rate $round" >>"$results"
  done
done
# Medians per (length, engine), and the ratios of the medians and the per-round ratios.
"$python" - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
rates = {}
for tokens, engine, rate, round_ in rows:
    rates.setdefault((int(tokens), engine), {})[int(round_)] = float(rate)
for tokens in sorted({t for t, _ in rates}):
    torch = rates[(tokens, "torch")]
    line = f"{tokens} tokens: torch {statistics.median(torch.values()):.1f} tok/s"
    for engine in ("hogwild_native", "hogwild_f32"):
        ours = rates[(tokens, engine)]
        per_round = [ours[r] / torch[r] for r in sorted(ours) if r in torch]
        line += (f" | {engine} {statistics.median(ours.values()):.1f} tok/s, ratio per round "
                 + " ".join(f"{x:.2f}" for x in per_round)
                 + f" (median {statistics.median(per_round):.2f})")
    print(line)
PY

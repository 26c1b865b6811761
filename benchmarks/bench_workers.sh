#!/usr/bin/env bash
# Aggregate decode throughput of `hogwild run` vs the number of workers on one problem, and for
# several problems at once. Each shape runs twice, with a short and a long budget; the marginal
# rate (extra tokens / extra seconds) cancels model loading and the prompt's prefill, leaving
# the decode throughput of the team.
#
#   benchmarks/bench_workers.sh [hogwild binary] [model]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/cpu/bin/hogwild}
model=${2:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
short=16
long=${LONG_BUDGET:-80}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {  # workers problems budget -> "generated_tokens seconds processed_tokens"
  local workers=$1 problems=$2 budget=$3
  {
    echo "model: $model"
    echo "workers: $workers"
    echo "budget: $budget"
    echo "batch_problems: $problems"
    echo "problems:"
    for ((p = 0; p < problems; ++p)); do echo "  - 'A shop sells pens at $((p + 2)) dollars each. How much do $((p + 3)) pens cost?'"; done
  } >"$tmp/c.yaml"
  "$bin" run "$tmp/c.yaml" --quiet --overwrite output="$tmp/r.h5" 2>&1 |
    sed -n 's/.*correct, \([0-9]*\) tokens in \([0-9.]*\) s.*passes[^,]*, \([0-9]*\) tokens processed.*/\1 \2 \3/p'
}

# generated: sampled tokens/s (what a user gets); processed: tokens through the model per second,
# step prefixes ("**Bob [3]:** ") and redundancy checks included.
printf '%-24s %16s %10s %16s %10s\n' shape generated_tok/s vs_1 processed_tok/s vs_1
base="" base_processed=""
for shape in "1 1" "2 1" "4 1" "8 1" "2 4"; do
  read -r workers problems <<<"$shape"
  read -r t1 s1 p1 <<<"$(run "$workers" "$problems" $short)"
  read -r t2 s2 p2 <<<"$(run "$workers" "$problems" "$long")"
  rate=$(awk -v a="$t1" -v b="$t2" -v x="$s1" -v y="$s2" 'BEGIN { printf "%.1f", (b - a) / (y - x) }')
  processed=$(awk -v a="$p1" -v b="$p2" -v x="$s1" -v y="$s2" 'BEGIN { printf "%.1f", (b - a) / (y - x) }')
  [[ -z $base ]] && base=$rate && base_processed=$processed
  printf '%-24s %16s %10s %16s %10s\n' "${workers} workers x ${problems} problem" "$rate" \
    "$(awk -v r="$rate" -v b="$base" 'BEGIN { printf "%.2fx", r / b }')" "$processed" \
    "$(awk -v r="$processed" -v b="$base_processed" 'BEGIN { printf "%.2fx", r / b }')"
done

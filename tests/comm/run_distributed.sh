#!/usr/bin/env bash
# `hogwild run` under mpirun: the same tokens as one process (tensor parallel over 3 ranks on
# SmolLM2), a grid that does not match the job refused, and a rank that fails mid-run taking the
# whole job down, quickly, with the rank named.
#   run_distributed.sh HOGWILD_BINARY PYTHON MPIEXEC [MPIEXEC FLAGS...]
set -uo pipefail
hogwild=$1 python=$2
shift 2
mpiexec=("$@")
root=$(cd "$(dirname "$0")/../.." && pwd)
model=$root/models/SmolLM2-135M-Instruct.Q4_1.gguf
[[ -f $model ]] || { echo "SKIP: demo model missing"; exit 0; }
"$python" -c 'import h5py' 2>/dev/null || { echo "SKIP: h5py missing"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; failures=$((failures + 1)); fi; }
# weights=f32: tokens must equal across rank layouts bit for bit; 8-bit activations (native)
# turn the different summation orders of a tensor-parallel split into different tokens.
config="$root/configs/demo.yaml model=$model budget=24 workers=2 weights=f32"

"$hogwild" run $config output="$tmp/single.h5" --quiet >"$tmp/single.log" 2>&1
check "single-process run exits 0" '[[ $? -eq 0 ]]'
"${mpiexec[@]}" -np 3 "$hogwild" run $config parallel.tensor=3 output="$tmp/tp3.h5" --quiet >"$tmp/tp3.log" 2>&1
check "tensor-parallel run over 3 ranks exits 0" '[[ $? -eq 0 ]]'
summary() { "$python" "$root/tests/app/h5_summary.py" "$1" | "$python" -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps({p: {w: v["tokens"] for w, v in d["problems"][p]["workers"].items()} for p in d["problems"]}, sort_keys=True))'; }
check "same tokens as the single process" '[[ "$(summary "$tmp/single.h5")" == "$(summary "$tmp/tp3.h5")" ]]'
check "every rank's timing breakdown is stored" '[[ "$("$python" -c "import h5py; print(len(h5py.File(\"$tmp/tp3.h5\")[\"timings\"]))")" == 3 ]]'

# Worker groups: each group computes its workers, K/V all-gathered per layer, tokens shared.
# Sampling (temperature 0.8) too: each worker's random stream must not depend on the grid.
sampled="$config workers=4 sampling.temperature=0.8 seed=5"
"$hogwild" run $sampled output="$tmp/single4.h5" --quiet >"$tmp/single4.log" 2>&1
for grid in "2 parallel.worker_groups=2" "3 parallel.worker_groups=3" "6 parallel.worker_groups=2 parallel.tensor=3"; do
  read -r ranks overrides <<<"$grid"
  name=$(echo "$overrides" | tr ' =.' '___')
  "${mpiexec[@]}" -np "$ranks" "$hogwild" run $sampled $overrides output="$tmp/$name.h5" --quiet >"$tmp/$name.log" 2>&1
  check "grid $overrides on $ranks ranks exits 0" '[[ $? -eq 0 ]]'
  check "grid $overrides: same tokens as the single process" '[[ "$(summary "$tmp/single4.h5")" == "$(summary "$tmp/$name.h5")" ]]'
done

"${mpiexec[@]}" -np 2 "$hogwild" run $config parallel.tensor=3 output="$tmp/bad.h5" --quiet >"$tmp/grid.log" 2>&1
status=$?
check "a grid that does not match the job is refused" '[[ $status -ne 0 ]] && grep -q "but the job has 2" "$tmp/grid.log"'
check "no results file after a refused start" '[[ ! -e $tmp/bad.h5 ]]'

# Ranks that run different configs are refused at start-up, every rank naming the key (the
# issue's case: different `workers` on one rank used to corrupt the heap in the K/V exchange).
start=$(date +%s)
timeout 300 "${mpiexec[@]}" -np 1 "$hogwild" run $config parallel.worker_groups=2 output="$tmp/mix.h5" --quiet : \
  -np 1 "$hogwild" run $config parallel.worker_groups=2 workers=3 output="$tmp/mix.h5" --quiet >"$tmp/mix.log" 2>&1
status=$?
elapsed=$(($(date +%s) - start))
check "ranks with different workers are refused" '[[ $status -ne 0 && $status -ne 124 ]]'
check "the refusal names the key and the ranks" 'grep -q "workers=2 on rank 0; workers=3 on rank 1" "$tmp/mix.log"'
check "no crash, no results after the refusal (took ${elapsed} s)" '! grep -qiE "corrupt|segmentation|double free|core dumped" "$tmp/mix.log" && [[ ! -e $tmp/mix.h5 && $elapsed -lt 60 ]]'
# The model is compared by content, not path: the same file under another name is accepted.
ln -s "$model" "$tmp/same-model.gguf"
"${mpiexec[@]}" -np 1 "$hogwild" run $config parallel.worker_groups=2 budget=4 output="$tmp/samemodel.h5" --quiet : \
  -np 1 "$hogwild" run $config model="$tmp/same-model.gguf" parallel.worker_groups=2 budget=4 output="$tmp/samemodel.h5" --quiet >"$tmp/samemodel.log" 2>&1
check "the same model under another path is accepted" '[[ $? -eq 0 ]]'

# Prompt files count by content too: the same path holding another text on one node (here each
# rank reads a relative path from its own working folder) is refused, naming the file and the
# ranks; the same text is accepted.
mkdir -p "$tmp/node0" "$tmp/node1"
printf 'You are {names}; work together.' >"$tmp/node0/prompt.txt"
printf 'You are {names}; work together!' >"$tmp/node1/prompt.txt"
# demo.yaml writes its user prompt inline, which a prompts.user_file may not override.
grep -v '^  user:' "$root/configs/demo.yaml" >"$tmp/demo_no_user.yaml"
file_config="$tmp/demo_no_user.yaml model=$model budget=4 workers=2 weights=f32"
prompt_job() {
  "${mpiexec[@]}" -np 1 -wdir "$tmp/node0" "$hogwild" run $file_config parallel.worker_groups=2 \
    prompts.user_file=prompt.txt output="$tmp/$1.h5" --quiet : \
    -np 1 -wdir "$tmp/node1" "$hogwild" run $file_config parallel.worker_groups=2 \
    prompts.user_file=prompt.txt output="$tmp/$1.h5" --quiet >"$tmp/$1.log" 2>&1
}
prompt_job prompt_differs
status=$?
check "a prompt file with other content on one rank is refused, naming the file and the ranks" '[[ $status -ne 0 && $status -ne 124 ]] && grep -q "prompts.user=31 bytes, hash [0-9a-f]* from prompts.user_file .prompt.txt. on rank 0; prompts.user=31 bytes, hash [0-9a-f]* from prompts.user_file .prompt.txt. on rank 1" "$tmp/prompt_differs.log" && [[ ! -e $tmp/prompt_differs.h5 ]]'
cp "$tmp/node0/prompt.txt" "$tmp/node1/prompt.txt"
prompt_job prompt_same
check "the same prompt text on every rank is accepted" '[[ $? -eq 0 && -e $tmp/prompt_same.h5 ]]'

# sync: step (one all-gather per step; the other group's tokens arrive one token late): runs,
# writes results, and is deterministic.
for attempt in 1 2; do
  "${mpiexec[@]}" -np 2 "$hogwild" run $sampled parallel.worker_groups=2 parallel.sync=step \
    output="$tmp/step$attempt.h5" --quiet >"$tmp/step$attempt.log" 2>&1
  check "sync: step run $attempt exits 0" '[[ $? -eq 0 ]]'
done
check "sync: step is deterministic" '[[ "$(summary "$tmp/step1.h5")" == "$(summary "$tmp/step2.h5")" ]]'

# A sweep under mpirun: the run whose grid matches the job's 2 ranks runs (the same tokens as the
# single process), the other is skipped with a note.
printf 'base_config: %s\noutput: %s\ngrid:\n  parallel.worker_groups: [1, 2]\n' \
  "$root/configs/demo.yaml" "$tmp/sweep" >"$tmp/sweep.yaml"
"${mpiexec[@]}" -np 2 "$hogwild" sweep "$tmp/sweep.yaml" model="$model" budget=24 workers=2 weights=f32 --quiet >"$tmp/sweep.log" 2>&1
check "a sweep under mpirun exits 0" '[[ $? -eq 0 ]]'
check "the sweep skips the run whose grid does not match, naming it" 'grep -q "skipped parallel.worker_groups=1 (parallel grid 1x1 = 1 ranks, job has 2)" "$tmp/sweep.log" && [[ ! -e "$tmp/sweep/parallel.worker_groups=1.h5" ]]'
check "the sweep's distributed run has the single process's tokens" '[[ "$(summary "$tmp/single.h5")" == "$(summary "$tmp/sweep/parallel.worker_groups=2.h5")" ]]'
# A tensor-parallel sweep: its second run reuses the loaded weights, which must reduce over the
# second run's own tensor axis (the first run's grid is gone by then).
printf 'base_config: %s\noutput: %s\ngrid:\n  budget: [16, 24]\n' \
  "$root/configs/demo.yaml" "$tmp/tpsweep" >"$tmp/tpsweep.yaml"
"${mpiexec[@]}" -np 3 "$hogwild" sweep "$tmp/tpsweep.yaml" model="$model" workers=2 weights=f32 \
  parallel.tensor=3 --quiet >"$tmp/tpsweep.log" 2>&1
check "a tensor-parallel sweep under mpirun exits 0" '[[ $? -eq 0 ]]'
check "its second run (weights reused) has the single process's tokens" '[[ "$(summary "$tmp/single.h5")" == "$(summary "$tmp/tpsweep/budget=24.h5")" ]]'

# A tiny random model with 4 KV heads (and the demo model's tokenizer) on the issue's grids.
if "$python" "$root/scripts/make_tiny_model.py" --arch llama --heads 8 --kv-heads 4 --hidden 64 \
    --head-dim 16 --ffn 128 --seed 9 --tokenizer-from "$model" --out "$tmp/tiny" >/dev/null 2>&1; then
  tiny="$root/configs/demo.yaml model=$tmp/tiny budget=12 workers=4 sampling.temperature=1.0 seed=3"
  "$hogwild" run $tiny output="$tmp/tiny1.h5" --quiet >"$tmp/tiny1.log" 2>&1
  for grid in "2 parallel.tensor=2" "2 parallel.worker_groups=2" "4 parallel.tensor=2 parallel.worker_groups=2" "4 parallel.worker_groups=4"; do
    read -r ranks overrides <<<"$grid"
    name=tiny_$(echo "$overrides" | tr ' =.' '___')
    "${mpiexec[@]}" -np "$ranks" "$hogwild" run $tiny $overrides output="$tmp/$name.h5" --quiet >"$tmp/$name.log" 2>&1
    check "tiny model, grid $overrides: same tokens as the single process" '[[ "$(summary "$tmp/tiny1.h5")" == "$(summary "$tmp/$name.h5")" ]]'
  done
  # A different model on one rank is refused, naming the model.
  "${mpiexec[@]}" -np 1 "$hogwild" run $tiny parallel.worker_groups=2 output="$tmp/mixmodel.h5" --quiet : \
    -np 1 "$hogwild" run $tiny model="$model" parallel.worker_groups=2 output="$tmp/mixmodel.h5" --quiet >"$tmp/mixmodel.log" 2>&1
  status=$?
  check "ranks with different models are refused, naming the model" '[[ $status -ne 0 ]] && grep -q "model (architecture)=.* on rank 0; model (architecture)=.* on rank 1" "$tmp/mixmodel.log"'
else
  check "tiny model made by scripts/make_tiny_model.py" 'false'
fi

start=$(date +%s)
HOGWILD_INJECT_FAULT=1:5 timeout 300 "${mpiexec[@]}" -np 3 -x HOGWILD_INJECT_FAULT "$hogwild" run $config \
  parallel.tensor=3 output="$tmp/fault.h5" --quiet >"$tmp/fault.log" 2>&1
status=$?
elapsed=$(($(date +%s) - start))
check "a failing rank makes the job exit non-zero" '[[ $status -ne 0 && $status -ne 124 ]]'
check "the failing rank is named" 'grep -q "rank 1" "$tmp/fault.log"'
check "the job ends within 120 s of starting (took ${elapsed} s)" '[[ $elapsed -lt 120 ]]'

# A rank that stops answering (not crashing): the others' watchdogs end the job.
start=$(date +%s)
HOGWILD_INJECT_FAULT=1:5:hang timeout 300 "${mpiexec[@]}" -np 2 -x HOGWILD_INJECT_FAULT "$hogwild" run $config \
  parallel.worker_groups=2 parallel.timeout_seconds=5 output="$tmp/hang.h5" --quiet >"$tmp/hang.log" 2>&1
status=$?
elapsed=$(($(date +%s) - start))
check "a hung rank makes the job exit non-zero" '[[ $status -ne 0 && $status -ne 124 ]]'
check "the watchdog of the waiting rank 0 says what it waited in" 'grep -q "rank 0: all_gather #[0-9]* on the workers axis waited [0-9]* s (timeout 5 s)" "$tmp/hang.log"'
check "the watchdog names the hung rank 1 as the stuck one" 'grep -q "stuck: rank 1 has not reached it (it is computing" "$tmp/hang.log"'
check "the hung job ends within 60 s (took ${elapsed} s)" '[[ $elapsed -lt 60 ]]'

# A rank that is stopped whole (SIGSTOP, its watchdog thread too): named by its silence.
start=$(date +%s)
HOGWILD_INJECT_FAULT=1:5:stop timeout 300 "${mpiexec[@]}" -np 2 -x HOGWILD_INJECT_FAULT "$hogwild" run $config \
  parallel.worker_groups=2 parallel.timeout_seconds=5 output="$tmp/stop.h5" --quiet >"$tmp/stop.log" 2>&1
status=$?
elapsed=$(($(date +%s) - start))
check "a stopped rank makes the job exit non-zero" '[[ $status -ne 0 && $status -ne 124 ]]'
check "the watchdog names the stopped rank 1" 'grep -q "rank 0: .* stuck: rank 1 does not answer (stopped or lost)" "$tmp/stop.log"'
check "the stopped job ends within 60 s (took ${elapsed} s)" '[[ $elapsed -lt 60 ]]'

if ((failures)); then
  for log in "$tmp"/*.log; do echo "--- $log"; tail -5 "$log"; done
  echo "$failures check(s) failed"
  exit 1
fi
echo "all distributed checks passed"

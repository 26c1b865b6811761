#!/usr/bin/env bash
# Decode step time and its breakdown (compute vs each collective) for each grid shape, on the CPU
# with MPI: `hogwild run` of the demo problem with 4 workers under mpirun, one OpenMP thread per
# rank. Prints one row per grid: ranks, step time, and the slowest rank's compute / tensor
# all-reduce / worker all-gather seconds (from the run's /timings table).
#   benchmarks/bench_grid.sh [hogwild binary] [budget]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/cpu/bin/hogwild}
budget=${2:-48}
python=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpi=(mpirun --oversubscribe --bind-to none)
[[ $(id -u) == 0 ]] && mpi+=(--allow-run-as-root)
export OMP_NUM_THREADS=1

printf '%-26s %6s %10s %12s %12s %12s %10s\n' grid ranks step_ms compute_s tensor_s workers_s comm_share
for grid in "1 1" "1 3" "2 1" "4 1" "2 3"; do
  read -r groups tensor <<<"$grid"
  ranks=$((groups * tensor))
  "${mpi[@]}" -np $ranks "$bin" run configs/demo.yaml workers=4 budget="$budget" \
    parallel.worker_groups=$groups parallel.tensor=$tensor output="$tmp/r.h5" transcript="$tmp/r.txt" --overwrite \
    --quiet >"$tmp/log" 2>&1 || { echo "grid $grid failed:"; tail -3 "$tmp/log"; exit 1; }
  "$python" - "$tmp/r.h5" "$groups x $tensor" "$ranks" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1])
passes = int(sum(f["problems"][p].attrs["forward_passes"] for p in f["problems"])) + 4  # + prompt and headers
seconds = float(f.attrs["total_seconds"])
if "timings" in f:
    t = f["timings"][:]
    compute, tensor, workers = (float(t[k].max()) for k in ("compute_seconds", "tensor_seconds", "worker_seconds"))
else:
    compute, tensor, workers = seconds, 0.0, 0.0
share = (tensor + workers) / max(compute + tensor + workers, 1e-9)
print(f"{sys.argv[2] + ' (groups x tensor)':<26} {sys.argv[3]:>6} {1000 * seconds / passes:>10.1f} "
      f"{compute:>12.2f} {tensor:>12.2f} {workers:>12.2f} {100 * share:>9.0f}%")
PY
done

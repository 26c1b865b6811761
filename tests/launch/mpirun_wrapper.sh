#!/usr/bin/env bash
# Test of launch/mpirun.sh on this machine (Open MPI; ~30 s on 2 cores):
#   - the command it builds (--dry-run): slot mapping, no binding, OMP_NUM_THREADS,
#     CUDA_DEVICE_ORDER, HOGWILD_* passed through, --allow-run-as-root as root, --host;
#   - clear errors (exit 2) for a bad -n, a missing config or binary, a stray argument;
#   - real runs of configs/demo.yaml: 2 ranks with parallel.worker_groups=2 and 3 ranks with
#     parallel.tensor=3 give the same text as 1 rank;
#     a grid that does not match -n is refused; HOGWILD_INJECT_FAULT reaches the ranks and a
#     failing rank fails the job.
#
#   bash tests/launch/mpirun_wrapper.sh      (exit 0 passed, 1 failed, 77 skipped)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
launcher=launch/mpirun.sh
say() { printf '[mpirun-test] %s\n' "$*" >&2; }
failures=0
check() { # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then
    say "ok   $name"
  else
    say "FAIL $name"
    failures=$((failures + 1))
  fi
}

bin=${HOGWILD_BIN:-build/cpu/bin/hogwild}
if [[ ! -x $bin ]]; then say "SKIP: no hogwild binary at $bin"; exit 77; fi
if [[ ! -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]]; then say "SKIP: no demo model (bash scripts/setup.sh)"; exit 77; fi
if ! command -v mpirun >/dev/null; then say "SKIP: mpirun missing (apt-get install openmpi-bin)"; exit 77; fi

tmp=$(mktemp -d /tmp/hogwild-mpirun.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ---- the command -----------------------------------------------------------------------------
dry=$(HOGWILD_SOMETHING=1 OMP_NUM_THREADS='' "$launcher" --dry-run -n 3 configs/demo.yaml parallel.tensor=3 budget=4 2>&1)
say "dry run: $dry"
has() { [[ " $dry " == *" $1 "* ]]; }
check "mpirun -np 3" has "-np 3"
check "maps by slot, binds none" eval 'has "--map-by slot" && has "--bind-to none"'
check "exports OMP_NUM_THREADS (cores / ranks, at least 1)" \
  has "-x OMP_NUM_THREADS=$(($(nproc) / 3 > 0 ? $(nproc) / 3 : 1))"
check "exports CUDA_DEVICE_ORDER=PCI_BUS_ID" has "-x CUDA_DEVICE_ORDER=PCI_BUS_ID"
check "passes HOGWILD_* through" has "-x HOGWILD_SOMETHING"
if ((EUID == 0)); then
  check "--allow-run-as-root as root" has "--allow-run-as-root"
else
  check "no --allow-run-as-root as a user" eval '! has "--allow-run-as-root"'
fi
check "runs hogwild run CONFIG overrides" has "$root/build/cpu/bin/hogwild run configs/demo.yaml parallel.tensor=3 budget=4"
dry=$("$launcher" --dry-run --threads 5 --hosts node1:4,node2:4 configs/demo.yaml parallel.tensor=4 2>&1)
check "--hosts: all slots, --host passed, --threads" \
  eval 'has "-np 8" && has "--host node1:4,node2:4" && has "-x OMP_NUM_THREADS=5"'
dry=$(OMP_NUM_THREADS=7 "$launcher" --dry-run -n 2 configs/demo.yaml 2>&1)
check "OMP_NUM_THREADS from the environment wins" has "-x OMP_NUM_THREADS=7"

# ---- errors ----------------------------------------------------------------------------------
fails_with() { # fails_with TEXT COMMAND...: exit 2 and TEXT on stderr
  local text=$1 out status=0
  shift
  out=$("$@" 2>&1 >/dev/null) || status=$?
  [[ $status -eq 2 && $out == *"$text"* ]] || { say "  got exit $status: $out"; return 1; }
}
check "bad -n" fails_with "bad number of ranks 'two'" "$launcher" -n two configs/demo.yaml
check "-n 0" fails_with "bad number of ranks '0'" "$launcher" -n 0 configs/demo.yaml
check "missing -n" fails_with "missing -n NRANKS" "$launcher" configs/demo.yaml
check "missing config" fails_with "config file 'configs/nope.yaml' not found" "$launcher" -n 2 configs/nope.yaml
check "no config at all" fails_with "missing CONFIG.yaml" "$launcher" -n 2
check "missing binary" fails_with "hogwild binary '/nonexistent/hogwild' not found" \
  env HOGWILD_BIN=/nonexistent/hogwild "$launcher" -n 2 configs/demo.yaml
check "more ranks than --hosts slots" fails_with "more than the 4 slots" \
  "$launcher" -n 5 --hosts a:2,b:2 configs/demo.yaml
check "bad --hosts entry" fails_with "bad host 'b'" "$launcher" --hosts a:2,b configs/demo.yaml
check "stray argument" fails_with "overrides look like key=value" "$launcher" -n 2 configs/demo.yaml budget
check "unknown option" fails_with "unknown option '--frobnicate'" "$launcher" --frobnicate -n 2 configs/demo.yaml

# ---- real runs -------------------------------------------------------------------------------
run() { # run NAME RANKS OVERRIDES...
  local name=$1 ranks=$2
  shift 2
  timeout 300 "$launcher" -n "$ranks" configs/demo.yaml budget=8 weights=f32 output="$tmp/$name.h5" \
    transcript="$tmp/$name.txt" --quiet "$@" >"$tmp/$name.log" 2>&1
}
text() { h5dump -d /problems/inline-0/workers/Alice/text -d /problems/inline-0/workers/Bob/text "$1" | grep -v '^HDF5 "'; }
check "1 rank runs" run one 1
check "3 ranks (parallel.tensor=3) run" run three 3 parallel.tensor=3
one_summary() { [[ $(grep -c '^\[run: ' "$tmp/$1.log") == 1 ]]; }
same_text() { cmp -s <(text "$tmp/one.h5") <(text "$tmp/$1.h5"); }
check "3 ranks: one job, one summary line" one_summary three
check "3 ranks give the same text as 1" same_text three
check "2 ranks (parallel.worker_groups=2) run" run two 2 parallel.worker_groups=2
check "2 ranks: one job, one summary line" one_summary two
check "2 ranks give the same text as 1" same_text two
refused() { ! run grid 3 && grep -q "but the job has 3" "$tmp/grid.log" && [[ ! -e $tmp/grid.h5 ]]; }
check "a grid that does not match -n is refused" refused
fault() { ! HOGWILD_INJECT_FAULT=1:3 run fault 3 parallel.tensor=3 && grep -q "rank 1" "$tmp/fault.log"; }
check "HOGWILD_INJECT_FAULT reaches rank 1 and fails the job" fault

if ((failures)); then
  say "$failures check(s) failed"
  exit 1
fi
say "all checks passed"

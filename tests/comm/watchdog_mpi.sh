#!/usr/bin/env bash
# The watchdog over MPI (watchdog_probe.cpp): on 3 ranks, rank 1 stops (SIGSTOP), keeps
# computing, or waits in another collective; the job must end non-zero within seconds, and the
# watchdog's line must name rank 1 as the stuck one and never the ranks that wait for it.
#   watchdog_mpi.sh PROBE_BINARY MPIEXEC [MPIEXEC FLAGS...]
set -uo pipefail
probe=$1
shift
mpiexec=("$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; failures=$((failures + 1)); fi; }
timeout_s=2

"${mpiexec[@]}" -np 3 "$probe" none $timeout_s >"$tmp/none.log" 2>&1
check "ranks that behave pass the probe" '[[ $? -eq 0 ]] && grep -q "every rank passed" "$tmp/none.log"'

declare -A expected=(
  [stop]="stuck: rank 1 does not answer (stopped or lost)"
  [compute]="stuck: rank 1 has not reached it (it is computing, 1 collective(s) behind on this axis)"
  [wait]="stuck: rank 1 has not reached it (it waits in barrier #2 on the world axis for"
)
for mode in stop compute wait; do
  start=$(date +%s)
  timeout 120 "${mpiexec[@]}" -np 3 "$probe" $mode $timeout_s >"$tmp/$mode.log" 2>&1
  status=$?
  elapsed=$(($(date +%s) - start))
  check "$mode: the job exits non-zero (status $status)" '[[ $status -ne 0 && $status -ne 124 ]]'
  check "$mode: the watchdog names rank 1" 'grep -qF "${expected[$mode]}" "$tmp/$mode.log"'
  check "$mode: it waited on the workers axis" 'grep -q "all_gather #4 on the workers axis waited [0-9]* s (timeout 2 s)" "$tmp/$mode.log"'
  check "$mode: no waiting rank is blamed" '! grep -qE "stuck: .*rank [02] (does not|has not)" "$tmp/$mode.log"'
  check "$mode: the job ends within 30 s (took ${elapsed} s)" '[[ $elapsed -lt 30 ]]'
done

if ((failures)); then
  for log in "$tmp"/*.log; do echo "--- $log"; cat "$log"; done
  echo "$failures check(s) failed"
  exit 1
fi
echo "all watchdog checks passed"

#!/usr/bin/env bash
# Opt-in test of launch/slurm.sbatch on a private one-node Slurm cluster on this machine.
#
#   bash tests/launch/slurm_one_node.sh        (as root, from anywhere; the CPU build must exist)
#
# Installs slurm-wlm, slurm-wlm-basic-plugins and munge from Debian when missing, starts munged,
# slurmctld and slurmd as root in the background with their own config, key, sockets, ports and
# state under a temporary folder (nothing under /etc is changed; all of them stop at exit), waits
# for the node to be idle and submits the template with `sbatch --wait`:
#   1. one task:    configs/demo.yaml budget=8
#   2. two tasks:   the same with parallel.worker_groups=2 (one worker per group)
#   3. three tasks: the same with parallel.tensor=3, once as the template chooses (srun
#      --mpi=pmix here) and once with mpirun inside the allocation. Tensor parallel over 3, not
#      2: SmolLM2-135M has 9 attention heads and 3 KV heads, so parallel.tensor is 1 or 3.
#      The node is declared with 4 CPUs whatever the machine has (SlurmdParameters=config_overrides).
# Each job must exit 0 and write an HDF5 file that h5dump (or h5py) reads; the two- and three-rank
# runs must give the same tokens as the one-rank run (greedy decoding).
#
# A job that fails, and a rank that fails mid-run (HOGWILD_INJECT_FAULT), must end the job
# with a non-zero exit and a message.
#
# Exits 0 when everything passed, 1 on a failure, 77 (skip) when Slurm cannot be brought up here
# (not root, no apt, daemons that do not start, a node that never becomes idle).
# Environment: HOGWILD_SLURM_KEEP=1 keeps the temporary folder (logs);
# HOGWILD_SLURM_LAUNCHERS: the launchers (HOGWILD_SRUN_MPI values) to run the three-rank job with,
# default "auto mpirun" (the template's own choice, then Open MPI's mpirun inside the allocation);
# add pmi2 where Open MPI was built with Slurm's PMI-2 (Debian's is not); HOGWILD_BIN as for the
# template.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
say() { printf '[slurm-test] %s\n' "$*" >&2; }
skip() {
  say "SKIP: $*"
  exit 77
}
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

((EUID == 0)) || skip "needs root (it installs packages and starts slurmd as root)"
bin=${HOGWILD_BIN:-build/cpu/bin/hogwild}
[[ -x $bin ]] || skip "no hogwild binary at $bin (cmake --preset cpu && cmake --build --preset cpu --target hogwild)"
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
[[ -f $model ]] || skip "no demo model at $model (bash scripts/setup.sh)"

# ---- packages ---------------------------------------------------------------------------------
packages=(slurm-wlm slurm-wlm-basic-plugins munge)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || skip "apt-get missing; cannot install ${missing[*]}"
  say "installing ${missing[*]} (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null 2>&1 ||
    skip "could not install ${missing[*]} with apt-get"
fi
for tool in munged slurmctld slurmd sbatch srun sinfo scontrol; do
  command -v "$tool" >/dev/null || skip "$tool missing after installing ${packages[*]}"
done

# ---- a private cluster under a temporary folder ----------------------------------------------
tmp=$(mktemp -d /tmp/hogwild-slurm.XXXXXX)
pids=()
cleanup() {
  local status=$?
  if [[ -n ${SLURM_CONF:-} && -f $SLURM_CONF ]]; then
    timeout 10 scancel --quiet --full --user=root >/dev/null 2>&1 || true
    timeout 10 scontrol shutdown >/dev/null 2>&1 || true
  fi
  local pid
  for pid in "${pids[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  sleep 1
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
  if [[ ${HOGWILD_SLURM_KEEP:-0} == 1 ]]; then
    say "kept $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_logs() {
  local log
  for log in "$tmp"/log/*.log "$tmp"/*.out; do
    [[ -s $log ]] || continue
    say "---- tail of ${log#"$tmp"/}"
    tail -n 25 "$log" >&2
  done
}

mkdir -p "$tmp"/{munge,state,spool,log,run}
chmod 711 "$tmp" "$tmp/munge" # munged wants its socket's folders searchable by all

# munge: own key and socket (slurm finds the socket through AuthInfo)
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
munge_socket=$tmp/munge/munge.socket
munged --force --foreground --key-file="$tmp/munge/munge.key" --socket="$munge_socket" \
  --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munged.seed" \
  --log-file="$tmp/log/munged.log" >>"$tmp/log/munged.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -S $munge_socket ]] && break; sleep 0.2; done
[[ -S $munge_socket ]] || { show_logs; skip "munged did not start"; }
munge --socket="$munge_socket" -n | unmunge --socket="$munge_socket" >/dev/null 2>&1 ||
  { show_logs; skip "munge round trip failed"; }

# two free TCP ports for slurmctld and slurmd (other clusters may run on this machine)
read -r ctld_port slurmd_port < <(/usr/bin/python3 - <<'PY'
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
PY
)
[[ -n ${slurmd_port:-} ]] || skip "could not find free ports"

node=$(hostname -s)
# CPUs=4 although this machine may have only 2 (config_overrides lets slurmd accept that): the
# three-rank job needs three CPUs; --overcommit does not get past --ntasks-per-node > CPUs.
cat >"$tmp/slurm.conf" <<EOF
ClusterName=hogwildtest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$munge_socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/run/slurmctld.pid
SlurmdPidFile=$tmp/run/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=60
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=4 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=30 State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf

slurmctld -D -i -f "$SLURM_CONF" >>"$tmp/log/slurmctld.stderr.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping 2>/dev/null | grep -q UP || { show_logs; skip "slurmctld did not start"; }
slurmd -D -N "$node" -f "$SLURM_CONF" >>"$tmp/log/slurmd.stderr.log" 2>&1 &
pids+=($!)

state=""
for _ in $(seq 60); do
  state=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1)
  [[ $state == idle ]] && break
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 1
done
if [[ $state != idle ]]; then
  show_logs
  skip "node $node is '${state:-unknown}', not idle (slurmd could not start here?)"
fi
say "Slurm $(sinfo -V | awk '{print $2}') up: node $node idle; mpi plugins:" \
  "$(srun --mpi=list 2>&1 | tr -s '\n\t ' ' ')"

# ---- jobs -------------------------------------------------------------------------------------
h5_text() { # h5_text FILE: every worker's text, one dataset after another
  if command -v h5dump >/dev/null; then
    h5dump -d /problems/inline-0/workers/Alice/text -d /problems/inline-0/workers/Bob/text "$1" |
      grep -v '^HDF5 "'
  else
    /usr/bin/python3 - "$1" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    for name in ("Alice", "Bob"):
        print(f[f"problems/inline-0/workers/{name}/text"][()])
PY
  fi
}

submit() { # submit NAME SBATCH_FLAGS... -- OVERRIDES...
  local name=$1
  shift
  local flags=()
  while [[ $1 != -- ]]; do flags+=("$1"); shift; done
  shift
  say "sbatch --wait ${flags[*]} launch/slurm.sbatch configs/demo.yaml $*"
  local status=0
  timeout 600 sbatch --wait --job-name="hogwild-$name" --output="$tmp/$name.out" --time=10 \
    --gpus-per-node=0 "${flags[@]}" launch/slurm.sbatch configs/demo.yaml budget=8 \
    output="$tmp/$name.h5" transcript="$tmp/$name.txt" --plain "$@" >"$tmp/$name.sbatch.log" 2>&1 ||
    status=$?
  say "  exit $status; job output:"
  sed 's/^/    /' "$tmp/$name.out" >&2 2>/dev/null
  [[ $status -eq 0 ]] || sed 's/^/    /' "$tmp/$name.sbatch.log" >&2
  return "$status"
}

check "one task: job exits 0" submit one --nodes=1 --ntasks-per-node=1 --cpus-per-task=2 --
check "one task: results file written" test -s "$tmp/one.h5"
check "one task: results readable" h5_text "$tmp/one.h5" >/dev/null

one_job() { # one_job NAME: one MPI job, not separate single-process runs
  [[ $(grep -c '^\[run: ' "$tmp/$1.out") == 1 ]] && ! grep -q 'but the job has' "$tmp/$1.out"
}
same_tokens() { cmp -s <(h5_text "$tmp/one.h5") <(h5_text "$tmp/$1.h5"); }
check "two tasks, parallel.worker_groups=2: job exits 0" \
  submit two --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 -- parallel.worker_groups=2
check "two tasks: results file written" test -s "$tmp/two.h5"
check "two tasks: one MPI job of 2 ranks" one_job two
check "two tasks: same text as one task" same_tokens two

for launcher in ${HOGWILD_SLURM_LAUNCHERS:-auto mpirun}; do
  name=three-$launcher
  if [[ $launcher == auto ]]; then unset HOGWILD_SRUN_MPI; else export HOGWILD_SRUN_MPI=$launcher; fi
  check "three tasks, parallel.tensor=3, launcher $launcher: job exits 0" \
    submit "$name" --nodes=1 --ntasks-per-node=3 --cpus-per-task=1 -- parallel.tensor=3
  check "three tasks, $launcher: results file written" test -s "$tmp/$name.h5"
  check "three tasks, $launcher: one MPI job of 3 ranks" one_job "$name"
  check "three tasks, $launcher: same text as one task" same_tokens "$name"
done
unset HOGWILD_SRUN_MPI

# a rank that fails mid-run ends the whole job (srun --kill-on-bad-exit / MPI_Abort), no hang
fault_job() {
  local start=$SECONDS status=0
  HOGWILD_INJECT_FAULT=1:3 timeout 300 sbatch --wait --output="$tmp/fault.out" --time=5 \
    --gpus-per-node=0 --ntasks-per-node=3 --cpus-per-task=1 launch/slurm.sbatch configs/demo.yaml \
    budget=8 parallel.tensor=3 output="$tmp/fault.h5" transcript="$tmp/fault.txt" --quiet \
    >/dev/null 2>&1 || status=$?
  say "  fault job: exit $status after $((SECONDS - start)) s"
  [[ $status -ne 0 && $status -ne 124 ]] && grep -q "rank 1" "$tmp/fault.out"
}
check "a failing rank (HOGWILD_INJECT_FAULT=1:3) fails the job, naming the rank" fault_job

# a bad config is refused with a clear message and a non-zero exit
bad_job() {
  ! timeout 120 sbatch --wait --output="$tmp/bad.out" --time=2 --gpus-per-node=0 --ntasks-per-node=1 \
    --cpus-per-task=1 launch/slurm.sbatch configs/no-such.yaml >/dev/null 2>&1 &&
    grep -q "config file 'configs/no-such.yaml' not found" "$tmp/bad.out"
}
check "missing config: job fails with a message" bad_job

if ((failures)); then
  show_logs
  say "$failures check(s) failed"
  exit 1
fi
say "all checks passed"

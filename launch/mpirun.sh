#!/usr/bin/env bash
# Starts `hogwild run` on several MPI ranks with Open MPI's mpirun.
#
#   launch/mpirun.sh -n NRANKS [--hosts h1:4,h2:4] [options] CONFIG.yaml [key=value ...] [--plain|--quiet]
#
# Every rank runs the same `hogwild run CONFIG.yaml key=value ...`; the config's grid
# (parallel.tensor x parallel.worker_groups) must multiply to NRANKS. Ranks are placed by slot
# (ranks 0..3 fill the first host's 4 slots, then the next host), so with parallel.tensor equal
# to the GPUs per node each tensor-parallel group stays inside one node. No CPU binding.
#
# Options:
#   -n, -np N          number of ranks (default with --hosts: all the slots listed)
#   --hosts LIST       host:slots,host:slots,... (default: this machine only)
#   --threads N        OpenMP threads per rank (default: $OMP_NUM_THREADS if set, else the
#                      cores of this machine divided by the ranks per node, at least 1)
#   --oversubscribe    allow more ranks than slots (always on when no --hosts are given)
#   --bin PATH         the hogwild binary (default: $HOGWILD_BIN, else build/cpu/bin/hogwild)
#   --dry-run          print the mpirun command instead of running it
#   -h, --help         this text
#
# Environment: MPIRUN (the mpirun to use, default mpirun), MPIRUN_ARGS (extra mpirun flags,
# split on spaces), HOGWILD_BIN. Exported to every rank: OMP_NUM_THREADS,
# CUDA_DEVICE_ORDER=PCI_BUS_ID, and every HOGWILD_*, NCCL_*, UCX_* variable set here, plus
# CUDA_VISIBLE_DEVICES and LD_LIBRARY_PATH when set. Paths (config, model, output) are relative
# to the current folder, which must exist at the same path on every host (shared filesystem).
#
# Examples:
#   launch/mpirun.sh -n 3 configs/demo.yaml parallel.tensor=3 budget=32 output=/tmp/r.h5
#   launch/mpirun.sh -n 2 configs/demo.yaml parallel.worker_groups=2
#   launch/mpirun.sh --hosts node1:4,node2:4 configs/gsm8k.yaml parallel.tensor=4 parallel.worker_groups=2
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
me=launch/mpirun.sh

die() {
  printf '%s: error: %s\n' "$me" "$*" >&2
  exit 2
}
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

ranks="" hosts="" threads="" oversubscribe=0 dry_run=0 bin="${HOGWILD_BIN:-}"
config="" args=() hogwild_args=()
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    -n | -np | --np)
      (($# >= 2)) || die "$1 needs a number of ranks"
      is_count "$2" || die "bad number of ranks '$2' for $1: expected an integer >= 1"
      ranks=$2; shift 2 ;;
    -n=* | -np=* | --np=*)
      is_count "${1#*=}" || die "bad number of ranks '${1#*=}': expected an integer >= 1"
      ranks=${1#*=}; shift ;;
    --hosts | --host)
      (($# >= 2)) || die "$1 needs host:slots,host:slots,..."
      hosts=$2; shift 2 ;;
    --hosts=* | --host=*) hosts=${1#*=}; shift ;;
    --threads)
      (($# >= 2)) || die "--threads needs a number"
      is_count "$2" || die "bad --threads '$2': expected an integer >= 1"
      threads=$2; shift 2 ;;
    --oversubscribe) oversubscribe=1; shift ;;
    --bin)
      (($# >= 2)) || die "--bin needs a path"
      bin=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; (($#)) || die "missing CONFIG.yaml after --"; config=$1; shift; args=("$@"); break ;;
    -*) die "unknown option '$1' (see $me --help)" ;;
    *) config=$1; shift; args=("$@"); break ;;
  esac
done

[[ -n $config ]] || die "missing CONFIG.yaml (usage: $me -n NRANKS [--hosts h1:4,h2:4] CONFIG.yaml [key=value ...])"
[[ -f $config ]] || die "config file '$config' not found (from $(pwd))"
[[ -r $config ]] || die "config file '$config' is not readable"
for arg in "${args[@]}"; do
  case $arg in
    --plain | --quiet) ;;
    --dry-run) dry_run=1 ;;
    -*) die "unexpected option '$arg' after the config: options of $me go before CONFIG.yaml; hogwild run takes --plain or --quiet" ;;
    *=*) [[ ${arg%%=*} =~ ^[A-Za-z_][A-Za-z0-9_.]*$ ]] || die "bad override '$arg': expected key=value" ;;
    *) die "unexpected argument '$arg': overrides look like key=value" ;;
  esac
done

# ---- hosts and ranks ------------------------------------------------------------------------
total_slots=0 max_slots=0
if [[ -n $hosts ]]; then
  IFS=, read -r -a host_list <<<"$hosts"
  ((${#host_list[@]})) || die "--hosts is empty"
  for entry in "${host_list[@]}"; do
    [[ $entry =~ ^[A-Za-z0-9._-]+:([1-9][0-9]*)$ ]] ||
      die "bad host '$entry' in --hosts: expected host:slots (e.g. node1:4)"
    slots=${BASH_REMATCH[1]}
    total_slots=$((total_slots + slots))
    ((slots > max_slots)) && max_slots=$slots
  done
  [[ -n $ranks ]] || ranks=$total_slots
  if ((ranks > total_slots && !oversubscribe)); then
    die "-n $ranks is more than the $total_slots slots in --hosts $hosts (add slots, or --oversubscribe)"
  fi
  per_node=$((ranks < max_slots ? ranks : max_slots))
else
  [[ -n $ranks ]] || die "missing -n NRANKS (or --hosts host:slots,...)"
  per_node=$ranks
fi

# ---- binary ----------------------------------------------------------------------------------
if [[ -z $bin ]]; then
  bin=$root/build/cpu/bin/hogwild
  [[ -x $bin ]] || die "hogwild binary not found at $bin: build it (cmake --preset cpu && cmake --build --preset cpu -j --target hogwild) or set HOGWILD_BIN / --bin"
else
  [[ $bin == */* ]] || bin=$(command -v "$bin" || true)
  [[ -n $bin && -f $bin ]] || die "hogwild binary '${HOGWILD_BIN:-$bin}' not found (HOGWILD_BIN / --bin)"
  [[ -x $bin ]] || die "hogwild binary '$bin' is not executable"
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
fi

mpirun_bin=${MPIRUN:-mpirun}
if ((!dry_run)) && ! command -v "$mpirun_bin" >/dev/null; then
  die "'$mpirun_bin' not found: install Open MPI (apt-get install openmpi-bin) or set MPIRUN"
fi

# ---- threads per rank ------------------------------------------------------------------------
if [[ -z $threads ]]; then
  if [[ -n ${OMP_NUM_THREADS:-} ]]; then
    is_count "$OMP_NUM_THREADS" || die "OMP_NUM_THREADS='$OMP_NUM_THREADS' is not an integer >= 1"
    threads=$OMP_NUM_THREADS
  else
    cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
    threads=$((cores / per_node))
    ((threads >= 1)) || threads=1
  fi
fi

# ---- the command -----------------------------------------------------------------------------
cmd=("$mpirun_bin")
((EUID == 0)) && cmd+=(--allow-run-as-root)
cmd+=(-np "$ranks" --map-by slot --bind-to none)
if [[ -n $hosts ]]; then
  cmd+=(--host "$hosts")
  ((oversubscribe)) && cmd+=(--oversubscribe)
else
  cmd+=(--oversubscribe) # one machine: ranks may outnumber its cores (CPU runs, tests)
fi
cmd+=(-x "OMP_NUM_THREADS=$threads" -x CUDA_DEVICE_ORDER=PCI_BUS_ID)
while IFS= read -r name; do
  cmd+=(-x "$name")
done < <(compgen -e | grep -E '^(HOGWILD_|NCCL_|UCX_)' | sort || true)
for name in CUDA_VISIBLE_DEVICES LD_LIBRARY_PATH; do
  [[ -n ${!name:-} ]] && cmd+=(-x "$name")
done
if [[ -n ${MPIRUN_ARGS:-} ]]; then
  read -r -a extra <<<"$MPIRUN_ARGS"
  cmd+=("${extra[@]}")
fi
for arg in "${args[@]}"; do
  [[ $arg == --dry-run ]] || hogwild_args+=("$arg")
done
cmd+=("$bin" run "$config" "${hogwild_args[@]}")

if ((dry_run)); then
  line=""
  for word in "${cmd[@]}"; do
    [[ $word =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]] || word=$(printf '%q' "$word")
    line+="${line:+ }$word"
  done
  printf '%s\n' "$line"
  exit 0
fi
exec "${cmd[@]}"

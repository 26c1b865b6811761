#!/usr/bin/env bash
# A sweep over grid shapes on Slurm: one job per world size, each running the same sweep file.
# Every job computes the runs whose parallel.tensor x parallel.worker_groups equals its number of
# ranks and skips the others (with a note), so together they cover the sweep; all write into the
# sweep's one results folder (each run has its own file), and a job that is stopped resumes when
# submitted again.
#
#   launch/slurm_sweep.sh SWEEP.yaml [key=value ...]            (from the repository root)
#   HOGWILD_SWEEP_SIZES="1 2 4 8" launch/slurm_sweep.sh configs/sweeps/gpu_paper.yaml
#
# Environment: HOGWILD_SWEEP_SIZES (default "1 2 4"): ranks per job, one GPU each, on one node
# up to HOGWILD_GPUS_PER_NODE (default 4), whole nodes beyond; the rest as launch/slurm.sbatch.
set -euo pipefail
(($# >= 1)) || { echo "usage: launch/slurm_sweep.sh SWEEP.yaml [key=value ...]" >&2; exit 2; }
[[ -f $1 ]] || { echo "slurm_sweep.sh: sweep file '$1' not found (from $(pwd))" >&2; exit 2; }
command -v sbatch >/dev/null || { echo "slurm_sweep.sh: sbatch not found" >&2; exit 2; }
per_node=${HOGWILD_GPUS_PER_NODE:-4}
for ranks in ${HOGWILD_SWEEP_SIZES:-1 2 4}; do
  [[ $ranks =~ ^[1-9][0-9]*$ ]] || { echo "slurm_sweep.sh: bad size '$ranks'" >&2; exit 2; }
  if ((ranks <= per_node)); then
    nodes=1 tasks=$ranks
  else
    ((ranks % per_node == 0)) || { echo "slurm_sweep.sh: $ranks ranks is not whole nodes of $per_node" >&2; exit 2; }
    nodes=$((ranks / per_node)) tasks=$per_node
  fi
  HOGWILD_COMMAND=sweep sbatch --job-name="hogwild-sweep-$ranks" --nodes="$nodes" \
    --ntasks-per-node="$tasks" --gpus-per-node="$tasks" launch/slurm.sbatch "$@"
done

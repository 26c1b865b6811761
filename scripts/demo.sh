#!/usr/bin/env bash
# The main job: a team of workers (Hogwild! inference) solves the demo problem with the demo
# model, showing each worker's text live; results go to results/demo.h5 and results/demo.txt.
# Extra arguments are config overrides, e.g.: bash scripts/demo.sh workers=4 layout=interleaved
set -euo pipefail
cd "$(dirname "$0")/.."
# --overwrite: the demo replaces its own earlier results (results/demo.*), nothing else.
build/cpu/bin/hogwild run configs/demo.yaml --overwrite "$@"
echo "--- transcript (results/demo.txt) ---"
cat results/demo.txt

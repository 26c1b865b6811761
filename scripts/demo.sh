#!/usr/bin/env bash
# The main job: the demo model answers a question, streaming its text.
set -euo pipefail
cd "$(dirname "$0")/.."
exec build/cpu/bin/hogwild generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --chat \
  --prompt "${1:-A farmer has 12 sheep and buys 5 more. How many sheep does he have? Explain briefly.}" \
  --max-tokens 96

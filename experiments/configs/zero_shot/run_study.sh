#!/usr/bin/env bash
# The zero-shot selection study (experiments/results/zero_shot/README.md): every config of
# this folder, run one after another (never two torch jobs at once on 2 cores).
#   bash experiments/configs/zero_shot/run_study.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/../../.."
out="${1:-runs/zero_shot}"
for config in experiments/configs/zero_shot/*.yaml; do
  name="$(basename "$config" .yaml)"
  echo "== $name"
  .venv/bin/pfpyro experiment "$config" --out "$out/$name" --quiet
done

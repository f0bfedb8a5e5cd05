#!/usr/bin/env bash
# A zero-shot selection study (experiments/results/zero_shot/README.md): every config of one
# folder, run one after another (never two torch jobs at once on 2 cores).
#   bash experiments/configs/zero_shot/run_study.sh OUT_DIR [CONFIG_DIR]
# CONFIG_DIR: experiments/configs/zero_shot (the demo's languages, the default) or
# experiments/configs/zero_shot/grid (the paper's grid).
set -euo pipefail
cd "$(dirname "$0")/../../.."
out="${1:-runs/zero_shot}"
configs="${2:-experiments/configs/zero_shot}"
for config in "$configs"/*.yaml; do
  name="$(basename "$config" .yaml)"
  echo "== $name"
  .venv/bin/pfpyro experiment "$config" --out "$out/$name" --quiet
done

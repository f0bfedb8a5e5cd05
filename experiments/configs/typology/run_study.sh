#!/usr/bin/env bash
# The typology-prior study (experiments/results/typology/README.md): the four configs of this
# folder, one after another (never two torch jobs at once on 2 cores), then the tables.
#   bash experiments/configs/typology/run_study.sh [OUT_DIR]
# Each run resumes where it stopped; the no-data runs hold 33 partitions each.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out="${1:-runs/typology}"
for name in nodata_typology nodata_standard paper_typology paper_standard; do
  echo "== $name"
  .venv/bin/pfpyro experiment "experiments/configs/typology/$name.yaml" --out "$out/$name" --quiet
done
.venv/bin/python experiments/configs/typology/summarize.py "$out" experiments/results/typology

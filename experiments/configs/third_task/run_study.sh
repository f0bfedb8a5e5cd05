#!/usr/bin/env bash
# The third-task study (experiments/results/third_task/README.md): the four configs of this
# folder, one after the other (never two torch jobs at once on 2 cores), then the tables.
#   bash experiments/configs/third_task/run_study.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../../.."
out="${1:-runs/third_task}"
for name in two_tasks three_tasks three_tasks_steps750 three_tasks_steps1000; do
  echo "== $name"
  .venv/bin/pfpyro experiment "experiments/configs/third_task/$name.yaml" --out "$out/$name" --quiet
done
.venv/bin/python experiments/configs/third_task/summarize.py "$out" experiments/results/third_task

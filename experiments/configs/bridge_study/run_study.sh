#!/usr/bin/env bash
# Runs the bridge study's configs into OUT/<config>, one at a time, each timed by
# /usr/bin/time -v (OUT/<config>.time). Resumable: started again with the same OUT, finished
# units are kept and the rest run. Then: python experiments/configs/bridge_study/summarize.py OUT
set -euo pipefail
out=${1:?usage: run_study.sh OUT [CONFIG...]}
shift
here=$(dirname "$0")
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(baselines pf-residual pf-residual-jm pf-adapter pf-adapter-jm
  pf-adapter-jm-fixed-base pf-lr-adapter-jm)
mkdir -p "$out"
for name in "${names[@]}"; do
  /usr/bin/time -v -o "$out/$name.time" \
    pfpyro experiment "$here/$name.yaml" --out "$out/$name" --quiet
done

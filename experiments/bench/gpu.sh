#!/usr/bin/env bash
# The CUDA path in one short run on a GPU machine (issue 10, item 7): 100 SVI steps with one
# and with four pairs per step, on the CPU and on CUDA, then the same ELBO, plug-in and BMA on
# the same draws on both, and the timings (experiments/bench/gpu_check.py). Exits non-zero
# when CPU and CUDA disagree or CUDA is missing.
#   bash experiments/bench/gpu.sh [gpu_check.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
timeout 300 "$python" experiments/bench/gpu_check.py --device cuda "$@"

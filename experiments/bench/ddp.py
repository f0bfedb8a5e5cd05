"""Data-parallel scaling: steps/s and sentences/s of 1 against 2 processes on the same work.

Both runs are ``python -m pfpyro.testing.ddp_job`` (Lightning's DDP, gloo on CPUs) on one
synthetic world: 5 seen pairs of ``--sentences`` sentences of ``--length`` words, features of
width ``--feature-dim``, PF-lr with h = ``--latent-dim`` and a hypernetwork of one hidden layer
of ``--hidden``, ``--batch-size`` sentences per process and step. One process takes 2 · S
steps and two processes S steps each, so both train on the same number of sentences
(S = ``--steps``); the first ``--warmup`` steps of each are not timed (start-up, first
allocations). It prints each run's steps/s and sentences/s and the ratios 2/1: the speed-up
of sentences/s is what a user gains (ideal 2), steps/s shows what a step costs with the
all-reduce. Each process runs one torch thread (OMP_NUM_THREADS=1; else Lightning gives each
cores / processes), so 2 processes use 2 cores and 1 process one. The runs are on CPUs
(gloo); experiments/bench/gpu.sh checks the CUDA path of one process.

Usage::

    python experiments/bench/ddp.py [--steps 150] [--feature-dim 384] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python experiments/bench/ddp.py --steps 150",
    )
    parser.add_argument("--steps", type=int, default=150, help="S: the 2-process run's steps")
    parser.add_argument("--warmup", type=int, default=10, help="steps not timed")
    parser.add_argument("--sentences", type=int, default=200, help="training sentences per pair")
    parser.add_argument("--length", type=int, default=25, help="words per sentence")
    parser.add_argument("--feature-dim", type=int, default=384, help="e")
    parser.add_argument("--latent-dim", type=int, default=10, help="h")
    parser.add_argument("--hidden", type=int, default=128, help="hidden width")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per process/step")
    parser.add_argument("--lr", type=float, default=0.003, help="optim.lr (the demo's)")
    return parser


def timed_run(devices: int, steps: int, args: argparse.Namespace, folder: Path) -> dict:
    """One ddp_job run on ``devices`` processes; its timing record (steps, seconds, world)."""
    timing = folder / f"timing{devices}.json"
    command = [
        sys.executable, "-m", "pfpyro.testing.ddp_job", "--out", str(folder / f"run{devices}"),
        "--devices", str(devices), "--steps", str(steps), "--checkpoint-every", "0",
        "--sentences", str(args.sentences), "--length", str(args.length),
        "--feature-dim", str(args.feature_dim), "--latent-dim", str(args.latent_dim),
        "--hidden", str(args.hidden), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
        "--timing", str(timing), "--warmup", str(args.warmup),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"the {devices}-process run failed:\n{done.stderr[-3000:]}")
    return json.loads(timing.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    args = build_argparse().parse_args(argv)
    if args.warmup >= args.steps:
        raise SystemExit(f"--warmup ({args.warmup}) must be below --steps ({args.steps})")
    print(f"cores: {os.cpu_count()}, batch {args.batch_size} sentences per process and step, "
          f"e = {args.feature_dim}, T = {args.length}, h = {args.latent_dim}, "
          f"hidden {args.hidden}")  # fmt: skip
    rates = {}
    with tempfile.TemporaryDirectory() as folder:
        for devices, steps in ((1, 2 * args.steps), (2, args.steps)):
            record = timed_run(devices, steps, args, Path(folder))
            steps_per_s = record["steps"] / record["seconds"]
            sentences_per_s = steps_per_s * record["world"] * args.batch_size
            rates[devices] = steps_per_s, sentences_per_s
            print(f"{devices} process{'es' if devices > 1 else ''}: {steps} steps, "
                  f"{steps_per_s:.2f} steps/s, {sentences_per_s:.1f} sentences/s")  # fmt: skip
    print(f"2/1 steps/s ratio {rates[2][0] / rates[1][0]:.2f}")
    print(f"2/1 sentences/s ratio {rates[2][1] / rates[1][1]:.2f} (ideal 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

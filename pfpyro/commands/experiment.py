"""``pfpyro experiment CONFIG --out DIR``: run (or resume) a whole grid and write its reports."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """example:
  pfpyro experiment experiments/configs/demo.yaml --out runs/demo
  pfpyro experiment experiments/configs/paper.yaml --out runs/paper --data ../shared/data

A stopped run resumes where it stopped when started again with the same --out; on a new
machine, --resume-from a committed results.csv of the same config (with its run.json beside
it) counts that grid's units as done:
  pfpyro experiment experiments/configs/paper.yaml --out runs/paper \
    --resume-from experiments/results/paper/results.csv
Outputs: results.csv, table1.md, per_pair_*.md, fig2_*.png, fig3_entropy.png,
fig4_language_posteriors.png, reliability.png, run.json (config, version, data manifest)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="train and evaluate every model of a config on its partitions and seeds",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", type=Path, help="experiment YAML (see experiments/configs)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (created or resumed)")
    parser.add_argument("--data", help="data root (else PFPYRO_DATA, else ../shared/data)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--resume-from",
        type=Path,
        metavar="RESULTS_CSV",
        help="a finished grid's results.csv of this config: its units are not run again",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pfpyro.config import load_config

    config = load_config(args.config)  # before the heavy imports: a typo fails at once

    from pfpyro.pipeline.grid import run_experiment

    summary = run_experiment(
        config, args.out, data=args.data, progress=not args.quiet, resume_from=args.resume_from
    )
    print(summary)
    return 0

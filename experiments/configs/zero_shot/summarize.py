"""Gathers the zero-shot selection study into one table (experiments/results/zero_shot).

For every (config, model): the zero-shot validation score that chose its training length,
the length chosen, the passes over the seen training data, and the held-out scores (read
once, after every choice was made). The PF variant marked "chosen" is the one with the best
validation score; the held-out columns take no part in that choice.

    python experiments/configs/zero_shot/summarize.py runs/zero_shot > table.md

With ``--combine OUT``, the baselines' run and each PF model's chosen variant are put
together in one run folder ``OUT`` (their units copied) and the grid's reports (Table 1,
per-pair tables, Figures 2-4, calibration) are written there from them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

from pfpyro.config import config_from_dict
from pfpyro.pipeline.grid import write_reports
from pfpyro.report import markdown_table

HELDOUT = [("pos", "accuracy"), ("ner", "span_f1"), ("ner", "span_f1_valid")]


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", type=Path, help="the study's output folder (run_study.sh OUT)")
    parser.add_argument(
        "--combine", type=Path, help="write the baselines + chosen PF variants' reports here"
    )
    return parser


def gather(runs: Path) -> pd.DataFrame:
    """A row per (config, model): the unit rows (validation score, selected length, epochs)
    averaged over the run's partitions and seeds, and the held-out scores averaged over every
    scored pair of every unit."""
    rows = []
    for results in sorted(runs.glob("*/results.csv")):
        frame = pd.read_csv(results)
        config = results.parent.name
        for model, part in frame.groupby("model"):
            units = part[part["task"] == "all"].groupby("metric")["value"].mean()
            row = {
                "config": config,
                "model": model,
                "validation": units.get("validation"),
                "selected": units.get("selected"),
                "epochs": units.get("epochs"),
            }
            for task, metric in HELDOUT:
                values = part[(part["task"] == task) & (part["metric"] == metric)]["value"]
                row[f"{task} {metric}"] = 100 * values.mean() if len(values) else None
            rows.append(row)
    return pd.DataFrame(rows)


def mark_chosen(table: pd.DataFrame) -> pd.DataFrame:
    """``chosen``: for each PF model (plug-in rows), the config with the best mean validation
    score; the held-out columns take no part."""
    table = table.copy()
    table["chosen"] = False
    for model in ("pf-d", "pf-lr"):
        pf = table[(table["model"] == model) & table["validation"].notna()]
        if not pf.empty:
            table.loc[pf["validation"].astype(float).idxmax(), "chosen"] = True
    return table


def main(args: list[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    table = gather(ns.runs)
    if table.empty:
        print(f"no results.csv under {ns.runs}", file=sys.stderr)
        return 2
    table = mark_chosen(table)
    print(markdown(table))
    if ns.combine:
        picked = table[table["chosen"]]
        chosen = dict(zip(picked["model"], picked["config"], strict=True))
        for path in combine(ns.runs, chosen, ns.combine):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def combine(runs: Path, chosen: dict[str, str], out: Path) -> list[Path]:
    """One run folder from the ``baselines`` run and, per PF model, the units of its chosen
    config (``chosen``: model -> config); returns the report files written."""
    out.mkdir(parents=True, exist_ok=True)
    record = json.loads((runs / "baselines" / "run.json").read_text())
    sources = [(runs / "baselines", ("ns", "ls", "jm", "bea"))]
    sources += [(runs / config, (model,)) for model, config in sorted(chosen.items())]
    for folder, models in sources:
        for unit in (folder / "units").rglob("*.csv"):
            if unit.stem.rsplit("_", 1)[-1] in models:
                target = out / unit.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(unit, target)
    if "pf-lr" in chosen:  # Figure 4's language posteriors come from a PF-lr run
        shutil.copyfile(
            runs / chosen["pf-lr"] / "language_samples.npz", out / "language_samples.npz"
        )
    record["config"]["models"] = ["ns", "ls", "jm", "bea", *sorted(chosen)]
    record["combined_from"] = {"baselines": "baselines", **chosen}
    (out / "run.json").write_text(json.dumps(record, indent=2))
    return write_reports(out, config_from_dict(record["config"]))


def markdown(table: pd.DataFrame) -> str:
    """A plain Markdown table, numbers with 2 decimals (selection scores as fractions)."""

    def cell(value) -> str:
        if isinstance(value, bool):
            return "**yes**" if value else ""
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return "–"
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    def shown(column: str, value) -> str:
        # validation scores as fractions to 4 decimals: near-ties decide the choice
        if column == "validation" and isinstance(value, float) and not pd.isna(value):
            return f"{value:.4f}"
        return cell(value)

    body = [
        [shown(c, v) for c, v in zip(table.columns, row, strict=True)]
        for row in table.itertuples(False)
    ]
    return markdown_table(list(table.columns), body).rstrip("\n")


if __name__ == "__main__":
    sys.exit(main())

"""Tables of the typology-prior study from its four runs (run_study.sh writes them).

    python experiments/configs/typology/summarize.py RUNS_DIR RESULTS_DIR

RUNS_DIR holds nodata_typology/, nodata_standard/, paper_typology/ and paper_standard/, each an
experiment folder with results.csv. Written to RESULTS_DIR: ``nodata.csv`` (every no-data
language's score per model), ``nodata.md`` (means over languages and paired win counts) and
``paper_partitions.md`` (the paper's partitions with either prior). Scores are the headline
metrics (POS accuracy, NER span F1) in points.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from pfpyro.report import markdown_table

NAMES = {
    ("nodata_typology", "pf-lr"): "PF-lr, typology prior",
    ("nodata_typology", "pf-lr-bma"): "PF-lr-bma, typology prior",
    ("nodata_standard", "pf-lr"): "PF-lr, N(0, I) prior",
    ("nodata_standard", "pf-lr-bma"): "PF-lr-bma, N(0, I) prior",
    ("nodata_typology", "ns"): "NS",
    ("nodata_typology", "jm"): "JM",
}
TASKS = {"pos": "POS acc", "ner": "NER span F1"}


def scores(run: Path) -> pd.DataFrame:
    frame = pd.read_csv(run / "results.csv")
    frame = frame[(frame.metric == "score") & (frame.task != "all")].copy()
    frame["value"] = 100 * frame["value"]
    return frame


def nodata(runs: Path) -> tuple[pd.DataFrame, str]:
    parts = []
    for run in ("nodata_typology", "nodata_standard"):
        frame = scores(runs / run)
        frame["model"] = [NAMES.get((run, m)) for m in frame["model"]]
        parts.append(frame.dropna(subset=["model"]))
    table = pd.concat(parts).pivot_table(
        index=["task", "lang"], columns="model", values="value", aggfunc="mean"
    )
    order = [name for name in NAMES.values() if name in table.columns]
    table = table[order]
    align = "-" + "r" * len(TASKS)
    body = []
    for model in order:
        cells = []
        for task in TASKS:
            column = table.loc[task, model]
            cells.append(f"{column.mean():.2f} ± {column.std():.2f} (n={column.count()})")
        body.append([model, *cells])
    ours = "PF-lr, typology prior"
    against = []
    for model in order:
        if model == ours:
            continue
        cells = []
        for task in TASKS:
            diff = (table.loc[task, ours] - table.loc[task, model]).dropna()
            cells.append(f"{(diff > 0).sum()} / {(diff < 0).sum()} (mean {diff.mean():+.2f})")
        against.append([model, *cells])
    text = markdown_table(["Model", *TASKS.values()], body, align=align)
    text += f"\nLanguages where {ours} scores higher / lower than each other model:\n\n"
    text += markdown_table(["against", *TASKS.values()], against, align=align)
    return table.round(2).reset_index(), text


def paper_partitions(runs: Path) -> str:
    rows = []
    for run, prior in (("paper_standard", "N(0, I)"), ("paper_typology", "typology")):
        frame = scores(runs / run)
        per_run = frame.groupby(["model", "task", "partition", "seed"])["value"].mean()
        for (model, task), values in per_run.groupby(level=["model", "task"]):
            rows.append((model, prior, task, values.mean(), values.std(), len(values)))
    frame = pd.DataFrame(rows, columns=["model", "prior", "task", "mean", "sd", "runs"])
    body = []
    for (model, prior), group in frame.groupby(["model", "prior"], sort=True):
        cells = []
        for task in TASKS:
            row = group[group.task == task].iloc[0]
            cells.append(f"{row['mean']:.2f} ± {row['sd']:.2f}")
        body.append([model, prior, *cells])
    return markdown_table(["Model", "prior", *TASKS.values()], body, align="--rr")


def main(argv: list[str]) -> None:
    runs, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    if (runs / "nodata_standard" / "results.csv").is_file():
        table, text = nodata(runs)
        table.to_csv(out / "nodata.csv", index=False)
        (out / "nodata.md").write_text(text, encoding="utf-8")
        print(text)
    if (runs / "paper_standard" / "results.csv").is_file():
        text = paper_partitions(runs)
        (out / "paper_partitions.md").write_text(text, encoding="utf-8")
        print(text)


if __name__ == "__main__":
    main(sys.argv[1:])

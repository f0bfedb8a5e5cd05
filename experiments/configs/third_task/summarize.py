"""Tables of the third-task study from its two runs (run_study.sh writes them).

    python experiments/configs/third_task/summarize.py RUNS_DIR RESULTS_DIR

RUNS_DIR holds the experiment folders of :data:`RUNS` (each with results.csv). Written to
RESULTS_DIR: ``third_task.csv`` (every held-out pair's headline score per model, seed and
run) and ``third_task.md``: per model and task, the mean over held-out pairs (mean ± sd over
seeds) with POS and NER only and with deprel seen as well, the paired difference per seed, and
each pair's means. Scores are the headline metrics (POS accuracy, NER span F1) in
points.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from pfpyro.report import markdown_table

RUNS = {
    "two_tasks": "POS + NER",
    "three_tasks": "+ deprel, 500 steps",
    "three_tasks_steps750": "+ deprel, 750 steps",
    "three_tasks_steps1000": "+ deprel, 1000 steps",
}
BASE = "two_tasks"


def scores(runs: Path) -> pd.DataFrame:
    """Headline scores of every held-out pair, in points, with the run's name."""
    parts = []
    for run in RUNS:
        frame = pd.read_csv(runs / run / "results.csv", keep_default_na=False, na_values=[""])
        frame = frame[(frame.metric == "score") & (frame.task != "all")].copy()
        frame["run"] = run
        frame["value"] = 100 * frame["value"]
        parts.append(frame[["run", "model", "seed", "task", "lang", "value"]])
    return pd.concat(parts, ignore_index=True)


def summary(frame: pd.DataFrame) -> str:
    """Per model and task: each run's mean over pairs (mean ± sd over seeds), and each
    deprel run's paired difference to the two-task run with the seeds it is higher on."""
    per_seed = frame.groupby(["model", "task", "run", "seed"])["value"].mean().unstack("run")
    others = [run for run in RUNS if run != BASE]
    head = [RUNS[run] for run in RUNS] + [f"{RUNS[run]} − POS + NER" for run in others]
    body = []
    for (model, task), rows in per_seed.groupby(level=["model", "task"], sort=True):
        cells = [f"{rows[run].mean():.2f} ± {rows[run].std(ddof=0):.2f}" for run in RUNS]
        for run in others:
            diff = rows[run] - rows[BASE]
            higher = int((diff > 0).sum())
            cells.append(f"{diff.mean():+.2f} ± {diff.std(ddof=0):.2f} ({higher}/{len(diff)})")
        body.append([model, task, *cells])
    return markdown_table(["Model", "Task", *head], body, align="--" + "r" * len(head)).rstrip("\n")


def per_pair(frame: pd.DataFrame) -> str:
    """Each held-out pair's mean over seeds in each run."""
    means = frame.groupby(["model", "task", "lang", "run"])["value"].mean().unstack("run")
    head = [RUNS[run] for run in RUNS]
    body = [
        [model, f"{task}/{lang}", *(f"{row[run]:.2f}" for run in RUNS)]
        for (model, task, lang), row in means.iterrows()
    ]
    return markdown_table(["Model", "Pair", *head], body, align="--" + "r" * len(head)).rstrip("\n")


def main(runs: Path, out: Path) -> None:
    frame = scores(runs)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "third_task.csv", index=False, float_format="%.4f")
    text = (
        "# A third seen task: POS and NER zero-shot scores with and without deprel\n\n"
        "Mean over the held-out pairs per seed; mean ± sd over seeds; a difference is with "
        "deprel − without, paired by seed (in brackets: seeds where it is positive).\n\n"
        f"{summary(frame)}\n\n## Per held-out pair (mean over seeds)\n\n{per_pair(frame)}\n"
    )
    (out / "third_task.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))

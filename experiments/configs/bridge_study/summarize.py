"""The bridge study's table: for each config and model, the zero-shot validation score (the
only thing a choice reads), what selection chose, and the held-out scores (read once, at the
end), mean ± std over seeds; wall time and peak memory of each config's run.

    python experiments/configs/bridge_study/summarize.py OUT \
        > experiments/results/bridge_study/table.md

The PF variant marked *chosen* (per guide) is the one with the best mean validation score.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd


def time_of(path: Path) -> tuple[str, float]:
    """(wall clock, peak RSS in GB) from a /usr/bin/time -v report."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return (wall.group(1) if wall else "?", int(rss.group(1)) / 1e6 if rss else float("nan"))


def epochs_of(unit: pd.DataFrame) -> str:
    """Mean epochs of the final fits; per task (``selection.per_task``) as "pos 5, ner 10"."""
    if "epochs" in unit:
        return f"{unit['epochs'].mean():.1f}"
    tasks = [c.split(":")[1] for c in unit.columns if c.startswith("epochs:")]
    return ", ".join(f"{t} {unit[f'epochs:{t}'].mean():.1f}" for t in sorted(tasks)) or "?"


def scales_of(unit: pd.DataFrame) -> str:
    """The chosen offset scale of each seed (per task: "pos 3/3/0; ner 1/1/1")."""
    if "offset_scale" in unit:
        return ", ".join(f"{v:g}" for v in unit["offset_scale"])
    tasks = [c.split(":")[1] for c in unit.columns if c.startswith("offset_scale:")]
    return "; ".join(
        f"{t} " + "/".join(f"{v:g}" for v in unit[f"offset_scale:{t}"]) for t in sorted(tasks)
    )


def rows(out: Path) -> pd.DataFrame:
    found = []
    for results in sorted(out.glob("*/results.csv")):
        config = results.parent.name
        frame = pd.read_csv(results)
        wall, rss = time_of(out / f"{config}.time")
        for model, mine in frame.groupby("model"):
            if model.endswith("-bma"):
                continue
            unit = mine[mine["task"] == "all"].pivot_table(
                index="seed", columns="metric", values="value"
            )
            scored = mine[mine["task"] != "all"]
            pos = scored[(scored.task == "pos") & (scored.metric == "score")]
            ner = scored[(scored.task == "ner") & (scored.metric == "span_f1")]
            per_seed_pos = pos.groupby("seed")["value"].mean() * 100
            per_seed_ner = ner.groupby("seed")["value"].mean() * 100
            found.append({
                "config": config, "model": model, "seeds": len(unit),
                "validation": unit["validation"].mean(),
                "validation_sd": unit["validation"].std(ddof=1),
                "validation_se": unit.get("validation_se", pd.Series(dtype=float)).mean(),
                "epochs": epochs_of(unit),
                "scale": scales_of(unit),
                "pos": per_seed_pos.mean(), "pos_sd": per_seed_pos.std(ddof=1),
                "ner": per_seed_ner.mean(), "ner_sd": per_seed_ner.std(ddof=1),
                "wall": wall, "rss": rss,
            })  # fmt: skip
    return pd.DataFrame(found)


def main() -> None:
    out = Path(sys.argv[1])
    table = rows(out)
    chosen = set()
    for _, group in table[table.model.str.startswith("pf")].groupby("model"):
        chosen.add(group.loc[group.validation.idxmax(), "config"] + "/" + group.iloc[0].model)
    print(
        "| config | model | validation (sd over seeds; mean SE) | epochs | offset scale per "
        "seed | POS acc | NER span F1 | wall | peak RSS | chosen |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for _, r in table.sort_values(["model", "config"]).iterrows():
        mark = "**yes**" if f"{r.config}/{r.model}" in chosen else ""
        print(
            f"| {r.config} | {r.model} | {r.validation:.4f} ({r.validation_sd:.4f}; "
            f"{r.validation_se:.4f}) | {r.epochs} | {r.scale} | {r.pos:.2f} ± {r.pos_sd:.2f} "
            f"| {r.ner:.2f} ± {r.ner_sd:.2f} | {r.wall} | {r.rss:.1f} GB | {mark} |"
        )


if __name__ == "__main__":
    main()

"""Extending a trained run with a new language against retraining from scratch (issue 9).

Leave one language out over a config's languages: for each language L, a base PF model is
trained on both tasks of every other language; `pfpyro.infer.extend.extend` then adds L from
its POS training data alone, and NER in L is scored zero-shot on its test data. The same
model retrained from scratch with POS in L among its training pairs is the reference. Both
use the config's training settings (early stopping on the training pairs' own dev data) and
the same seed; nothing is chosen by the NER test scores, which are read once per model.

    python experiments/extend_study.py experiments/configs/demo.yaml --out runs/extend
    # writes runs/extend/extend_study.csv and prints a Markdown table
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from pfpyro.config import load_config
from pfpyro.evaluate import HEADLINE, score_pair
from pfpyro.experiment import feature_store, load_catalog
from pfpyro.infer import PFPredictor, train
from pfpyro.infer.extend import extend

SEEN, TARGET = "pos", "ner"


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="experiment config (languages, caps, train)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the table")
    parser.add_argument("--steps", type=int, default=500, help="extension steps (default 500)")
    parser.add_argument("--guide", default="d", help="PF guide (default d)")
    return parser


def main(args: list[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    config = load_config(ns.config)
    catalog = load_catalog(config)
    store = feature_store(config, catalog, progress=False)
    langs = config.data.languages or catalog.target_languages()
    present = set(catalog.pairs())
    settings = config.train_config(config.seeds[0], progress=False)
    architecture = config.model.with_guide(ns.guide)
    rows = []
    for lang in langs:
        if (SEEN, lang) not in present or (TARGET, lang) not in present:
            continue
        others = [p for p in sorted(present) if p[1] in langs and p[1] != lang]
        train_data = store.split_tensors(others, "train", "seen")
        dev_data = store.split_tensors(others, "dev", "seen")
        new = store.get(SEEN, lang, "train", "seen").tensors
        test = store.get(TARGET, lang, "test", "heldout").tensors
        tasks, all_langs = sorted({t for t, _ in others}), sorted({x for _, x in others})
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            started = time.perf_counter()
            train(train_data, dev_data, settings, model=architecture, out_dir=scratch / "base")
            base_seconds = time.perf_counter() - started
            extended = extend(
                scratch / "base",
                {(SEEN, lang): new},
                scratch / "ext",
                steps=ns.steps,
                progress=False,
            )
            started = time.perf_counter()
            retrained = train(
                {**train_data, (SEEN, lang): new},
                dev_data,
                settings,
                model=architecture,
                tasks=tasks,
                langs=[*all_langs, lang],
            )
            retrain_seconds = time.perf_counter() - started
        for name, model, seconds in (
            ("extend", extended, extended.seconds),
            ("retrain", retrained, retrain_seconds),
        ):
            predictor = PFPredictor(model.factorization, model.guide, mode="plugin")
            probs = predictor.predict_proba(TARGET, lang, test.features.float(), test.mask)
            score = score_pair(TARGET, probs, test.labels, test.mask)[HEADLINE[TARGET]]
            rows.append(
                {
                    "language": lang,
                    "method": name,
                    HEADLINE[TARGET]: 100 * score,
                    "seconds": seconds,
                    "base_seconds": base_seconds if name == "extend" else None,
                }
            )
            print(f"{lang}\t{name}\t{100 * score:.2f}\t{seconds:.1f} s", file=sys.stderr)
    table = pd.DataFrame(rows)
    ns.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(ns.out / "extend_study.csv", index=False)
    print(markdown(table))
    return 0


def markdown(table: pd.DataFrame) -> str:
    """Per language: the NER score and seconds of extending and of retraining; then means."""
    metric = HEADLINE[TARGET]
    wide = table.pivot(index="language", columns="method", values=[metric, "seconds"])
    wide.loc["mean"] = wide.mean()
    lines = [
        f"| language | extend: NER {metric} | retrain: NER {metric} | extend s | retrain s |",
        "|---|---|---|---|---|",
    ]
    for lang, row in wide.iterrows():
        cells = [row[metric, "extend"], row[metric, "retrain"]]
        cells += [row["seconds", "extend"], row["seconds", "retrain"]]
        lines.append(f"| {lang} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

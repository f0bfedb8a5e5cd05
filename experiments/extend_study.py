"""Extending a trained run with a new language (or task) against retraining (issue 9).

A new language: leave one language out over a config's languages. For each language L, a
base PF model is trained on both tasks of every other language; `pfpyro.infer.extend.extend`
then adds L from its POS training data alone, and NER in L is scored zero-shot on its test
data. The same
model retrained from scratch with POS in L among its training pairs is the reference. Both
use the config's training settings (early stopping on the training pairs' own dev data) and
the same seed; nothing is chosen by the NER test scores, which are read once per model.

    python experiments/extend_study.py experiments/configs/demo.yaml --out runs/extend
    # writes runs/extend/extend_study.csv and prints a Markdown table

A new task (``--task T``), over the config's one partition: a base PF model is trained on the
seen pairs of every task but T; `extend` then adds T from its seen pairs alone (q(t_new)
fitted, everything else fixed), and T's held-out pairs are scored zero-shot. The reference
retrains the same model from scratch on all seen pairs, T's included, as `pfpyro experiment`
does. Every seed of the config; nothing is chosen by the test scores.

    python experiments/extend_study.py experiments/configs/third_task/three_tasks.yaml \\
        --task pos --out runs/extend_task
    # writes runs/extend_task/extend_task_study.csv and prints a Markdown table
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from pfpyro.config import ExperimentConfig, ModelConfig, load_config
from pfpyro.data.catalog import Catalog
from pfpyro.encode.store import FeatureStore
from pfpyro.evaluate import headline_metric, score_pair
from pfpyro.infer import PFPredictor, train
from pfpyro.infer.extend import extend
from pfpyro.pipeline.setup import build_partitions, feature_store, load_catalog
from pfpyro.report import markdown_table

SEEN, TARGET = "pos", "ner"


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="experiment config (languages, caps, train)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the table")
    parser.add_argument("--steps", type=int, default=500, help="extension steps (default 500)")
    parser.add_argument("--guide", default="d", help="PF guide (default d)")
    parser.add_argument("--task", help="add this task instead of a language (see above)")
    return parser


def main(args: list[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    config = load_config(ns.config)
    catalog = load_catalog(config)
    store = feature_store(config, catalog, progress=False)
    langs = config.data.languages or catalog.target_languages()
    architecture = config.model.with_guide(ns.guide)
    if ns.task:
        return new_task_study(ns, config, catalog, store, langs, architecture)
    present = set(catalog.pairs())
    settings = config.train_config(config.seeds[0], progress=False)
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
            score = score_pair(TARGET, probs, test.labels, test.mask)[headline_metric(TARGET)]
            rows.append(
                {
                    "language": lang,
                    "method": name,
                    headline_metric(TARGET): 100 * score,
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
    metric = headline_metric(TARGET)
    wide = table.pivot(index="language", columns="method", values=[metric, "seconds"])
    wide.loc["mean"] = wide.mean()
    header = ["language", f"extend: NER {metric}", f"retrain: NER {metric}"]
    header += ["extend s", "retrain s"]
    body = []
    for lang, row in wide.iterrows():
        cells = [row[metric, "extend"], row[metric, "retrain"]]
        cells += [row["seconds", "extend"], row["seconds", "retrain"]]
        body.append([lang, *(f"{v:.2f}" for v in cells)])
    return markdown_table(header, body).rstrip("\n")


def new_task_study(
    ns: argparse.Namespace,
    config: ExperimentConfig,
    catalog: Catalog,
    store: FeatureStore,
    langs: list[str],
    architecture: ModelConfig,
) -> int:
    """The ``--task`` study (module notes): extend by the task, or retrain with it."""
    pairs = [p for p in catalog.pairs() if p[1] in langs]  # as `pfpyro experiment` does
    partitions = build_partitions(config, pairs, langs)
    if len(partitions) != 1:
        sys.exit(f"{ns.config}: the study takes one partition, the config gives {len(partitions)}")
    ((_, partition),) = partitions
    new_seen = [p for p in partition.seen if p[0] == ns.task]
    new_heldout = [p for p in partition.heldout if p[0] == ns.task]
    if not new_seen or not new_heldout:
        sys.exit(f"{ns.config}: task {ns.task!r} needs seen and held-out pairs in the partition")
    base_pairs = [p for p in partition.seen if p[0] != ns.task]
    train_data = store.split_tensors(base_pairs, "train", "seen")
    dev_data = store.split_tensors(base_pairs, "dev", "seen")
    new_train = store.split_tensors(new_seen, "train", "seen")
    new_dev = store.split_tensors(new_seen, "dev", "seen")
    tests = {pair: store.get(*pair, "test", "heldout").tensors for pair in new_heldout}
    rows = []
    for seed in config.seeds:
        settings = config.train_config(seed, progress=False)
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            started = time.perf_counter()
            train(train_data, dev_data, settings, model=architecture, out_dir=scratch / "base")
            base_seconds = time.perf_counter() - started
            extended = extend(
                scratch / "base", new_train, scratch / "ext", steps=ns.steps, seed=seed,
                progress=False,
            )  # fmt: skip
            started = time.perf_counter()
            retrained = train(
                {**train_data, **new_train}, {**dev_data, **new_dev}, settings, model=architecture
            )
            retrain_seconds = time.perf_counter() - started
        for name, model, seconds in (
            ("extend", extended, extended.seconds),
            ("retrain", retrained, retrain_seconds),
        ):
            predictor = PFPredictor(model.factorization, model.guide, mode="plugin")
            for (task, lang), test in tests.items():
                probs = predictor.predict_proba(task, lang, test.features.float(), test.mask)
                score = score_pair(task, probs, test.labels, test.mask)[headline_metric(task)]
                rows.append(
                    {
                        "seed": seed,
                        "language": lang,
                        "method": name,
                        headline_metric(task): 100 * score,
                        "seconds": seconds,
                        "base_seconds": base_seconds if name == "extend" else None,
                    }
                )
                print(
                    f"{seed}\t{lang}\t{name}\t{100 * score:.2f}\t{seconds:.1f} s", file=sys.stderr
                )
    table = pd.DataFrame(rows)
    ns.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(ns.out / "extend_task_study.csv", index=False)
    print(task_markdown(table, ns.task))
    return 0


def task_markdown(table: pd.DataFrame, task: str) -> str:
    """Per held-out language: the task's score (mean over seeds) of extending and of
    retraining; then the mean over languages and the mean seconds per model."""
    metric = headline_metric(task)
    wide = table.groupby(["language", "method"])[metric].mean().unstack("method")
    wide.loc["mean"] = wide.mean()
    seconds = table.groupby("method")["seconds"].mean()
    header = ["language", f"extend: {task} {metric}", f"retrain: {task} {metric}"]
    body = [
        [lang, f"{row['extend']:.2f}", f"{row['retrain']:.2f}"] for lang, row in wide.iterrows()
    ]
    lines = [markdown_table(header, body).rstrip("\n")]
    lines.append(
        f"\nseconds per model (mean over seeds): extend {seconds['extend']:.2f}, "
        f"retrain {seconds['retrain']:.2f}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""``pfpyro fewshot CONFIG --out OUT``: learning curves of the unseen pairs (issue 9, item 4).

For one partition and seed of an experiment config: the PF model is trained as
``pfpyro experiment`` trains it (:func:`pfpyro.pipeline.fit.fit_pf`), then every held-out pair
gets k of its own labelled training sentences, for each k of ``ks``:

- PF: :func:`pfpyro.infer.pair_posterior.fit_pair` updates q(l_j) and q(θ_ij) on the pair's k
  sentences, the run held fixed (k = 0: the zero-shot model);
- JM: retrained on its usual data plus the same k sentences of every held-out pair, with the
  config's baseline settings and seen-dev early stopping.

The k sentences of a pair are the first k of its (capped) training sentences in an order
drawn with the seed, so the 10 are among the 50, which are among the 100. A pair whose
training sentences come from its test file (``test_as_train``, or a file both splits list)
is left out: its shots would be test sentences. Each model is scored on each held-out pair's
test data (POS accuracy, NER span F1). Written to OUT: ``fewshot.csv`` (model, k, task, lang,
score, shots), ``fewshot.md`` and ``fewshot.png``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from pfpyro.atomic import atomic_write_text
from pfpyro.config import PF_MODELS, ExperimentConfig
from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair
from pfpyro.data.partition import Partition
from pfpyro.errors import ConfigError
from pfpyro.evaluate import headline_score
from pfpyro.infer.pair_posterior import FewShotPredictor, FewShotSettings, fit_pair
from pfpyro.pipeline.fit import fit_baseline_model, fit_pf, pf_model_config
from pfpyro.pipeline.grid import heldout_predictions
from pfpyro.pipeline.setup import Setup, prepare
from pfpyro.report import figure_fewshot, markdown_table

log = logging.getLogger(__name__)

DEFAULT_KS = (0, 10, 50, 100)


def shot_pool(setup: Setup, partition: Partition, seed: int) -> dict[Pair, PairTensors]:
    """Each usable held-out pair's training sentences, in the seeded order whose first k are
    its k shots (see the module doc for the pairs left out)."""
    pool = {}
    for task, lang in partition.heldout:
        train_files = set(setup.catalog.files(task, lang, "train", "seen"))
        test_files = set(setup.catalog.files(task, lang, "test", "heldout"))
        if not train_files or train_files & test_files:
            log.warning("%s/%s: no training sentences apart from its test data; left out",
                        task, lang)  # fmt: skip
            continue
        tensors = setup.store.split_tensors([(task, lang)], "train", "seen").get((task, lang))
        if tensors is None or len(tensors) == 0:
            continue
        order = torch.randperm(len(tensors), generator=torch.Generator().manual_seed(seed))
        pool[task, lang] = tensors.batch(order)
    return pool


def first(tensors: PairTensors, k: int) -> PairTensors:
    """The first ``k`` sentences (all of them when there are fewer)."""
    return tensors.batch(torch.arange(min(k, len(tensors))))


def run_fewshot(
    config: ExperimentConfig,
    out_dir: Path,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    partition_name: str | None = None,
    model: str = "pf-lr",
    settings: FewShotSettings | None = None,
    data: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """The learning curves of the config's partition (default: its first), for ``model``
    (a PF model of the config) against JM; writes OUT/fewshot.{csv,md,png}."""
    if model not in PF_MODELS:
        raise ConfigError(f"--model must be one of {', '.join(PF_MODELS)}, not {model!r}")
    if any(k < 0 for k in ks) or not ks:
        raise ConfigError(f"k must be non-negative integers, got {list(ks)}")
    if config.selection.mode != "seen-dev":
        raise ConfigError(
            f"{config.source or 'config'}: few-shot curves use selection mode seen-dev (the "
            f"config has {config.selection.mode!r}): JM retrains for every k on seen dev data"
        )
    settings = settings or FewShotSettings(seed=config.seeds[0])
    settings.validate()
    setup = prepare(config, out_dir, data=data, progress=progress)
    names = [name for name, _ in setup.partitions]
    name = partition_name or names[0]
    if name not in names:
        raise ConfigError(f"unknown partition {name!r}; this config has: {', '.join(names)}")
    partition = dict(setup.partitions)[name]
    seed = config.seeds[0]
    stem = f"{name}_seed{seed}_{model}"
    fit = fit_pf(
        setup,
        name,
        partition,
        pf_model_config(config, model),
        config.train_config(seed, progress=progress),
        run_dir=out_dir / "train" / stem,
        select_dir=out_dir / "train" / f"{stem}.select",
    )
    factorization, guide = fit.result.factorization, fit.result.guide
    pool = shot_pool(setup, partition, seed)
    scored = Partition(seen=partition.seen, heldout=tuple(pool))
    rows = []
    for k in sorted(set(ks)):
        shots = {pair: first(tensors, k) for pair, tensors in pool.items()} if k else {}
        posteriors = {
            pair: fit_pair(factorization, guide, *pair, tensors, settings)
            for pair, tensors in shots.items()
        }
        jm = fit_baseline_model(setup, "jm", {**fit.data.train, **shots}, fit.data.dev, seed)
        predictors = {model: FewShotPredictor(factorization, guide, posteriors), "jm": jm}
        for task, lang, who, probs, test in heldout_predictions(setup.store, scored, predictors):
            score = 100 * headline_score(task, probs, test.labels, test.mask)
            rows.append((who, k, task, lang, score, len(shots.get((task, lang), ())) if k else 0))
            log.info("k=%d %s %s/%s: %.2f", k, who, task, lang, score)
    frame = pd.DataFrame(rows, columns=["model", "k", "task", "lang", "score", "shots"])
    atomic_write_text(out_dir / "fewshot.csv", frame.to_csv(index=False))
    atomic_write_text(out_dir / "fewshot.md", markdown(frame))
    figure_fewshot(frame, out_dir / "fewshot.png")
    return frame


def markdown(frame: pd.DataFrame) -> str:
    """Mean score over each task's held-out pairs, per model and k."""
    table = frame.pivot_table(index=["task", "model"], columns="k", values="score", aggfunc="mean")
    header = ["task", "model", *(f"k={k}" for k in table.columns)]
    body = [[task, model, *(f"{v:.2f}" for v in row)] for (task, model), row in table.iterrows()]
    return markdown_table(header, body, align="--" + "r" * len(table.columns))


__all__ = ["DEFAULT_KS", "run_fewshot", "shot_pool"]

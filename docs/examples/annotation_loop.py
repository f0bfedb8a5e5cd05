"""Posterior-guided annotation in Python: suggest, annotate, update, predict, and again.

``annotate`` stands for the person who labels the chosen sentences: a function from the
chosen sentences to their labels (one label per word). The tests run the loop on a small
synthetic run, passing word features directly and the world's gold labels as the annotator;
on a real run, ``features=None`` lets the run's own encoder encode the words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

import pfpyro
from pfpyro.api import FittedPosterior, Prediction
from pfpyro.infer.pair_posterior import FewShotSettings

Words = Sequence[str]


def rows(features: torch.Tensor | None, index: list[int]) -> torch.Tensor | None:
    """The features of the pool sentences ``index`` (None: the run's encoder encodes)."""
    return None if features is None else features[index]


def annotation_round(
    run: FittedPosterior,
    task: str,
    lang: str,
    pool: Sequence[Words],
    annotate: Callable[[list[Words]], list[list[str]]],
    labelled: dict[int, list[str]],
    budget: int = 10,
    features: torch.Tensor | None = None,
) -> list[int]:
    """One round: the pool indices chosen now, among those not yet in ``labelled`` (pool
    index: labels), whose labels join ``labelled``; then the pair is updated on all of them,
    so that the run's next suggest and predict use the update."""
    # --8<-- [start:suggest]
    left = [k for k in range(len(pool)) if k not in labelled]  # not labelled yet
    todo = run.suggest(task, lang, [pool[k] for k in left], budget=budget, strategy="bald",
                       features=rows(features, left))  # fmt: skip
    chosen = [left[k] for k in todo["index"]]  # the sentences most worth labelling
    # --8<-- [end:suggest]
    # --8<-- [start:update]
    labels = annotate([pool[k] for k in chosen])  # a person labels them: one label per word
    labelled.update(zip(chosen, labels, strict=True))
    done = list(labelled)  # every sentence labelled so far: each update starts from the run
    run.update(task, lang, [pool[k] for k in done], [labelled[k] for k in done],
               FewShotSettings(steps=300), features=rows(features, done))  # fmt: skip
    # --8<-- [end:update]
    return chosen


def annotation_loop(
    run_dir: str | Path,
    task: str,
    lang: str,
    pool: Sequence[Words],
    annotate: Callable[[list[Words]], list[list[str]]],
    rounds: int = 2,
    budget: int = 10,
    features: torch.Tensor | None = None,
) -> tuple[FittedPosterior, list[list[int]], Prediction]:
    """``rounds`` rounds on the run of ``run_dir``: the run with the pair updated on every
    label, the pool indices chosen in each round, and the pool tagged by the updated pair."""
    # --8<-- [start:loop]
    run = pfpyro.load(run_dir)
    labelled: dict[int, list[str]] = {}
    chosen = [
        annotation_round(run, task, lang, pool, annotate, labelled, budget, features)
        for _ in range(rounds)
    ]
    tagged = run.predict(task, lang, pool, features=features)  # with the pair's update
    # --8<-- [end:loop]
    return run, chosen, tagged

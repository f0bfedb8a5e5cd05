"""One round of posterior-guided annotation in Python: suggest, annotate, update, predict.

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
from pfpyro.data.batch import PairTensors
from pfpyro.infer.pair_posterior import FewShotPredictor, FewShotSettings, fit_pair

Words = Sequence[str]


def annotation_round(
    run_dir: str | Path,
    task: str,
    lang: str,
    pool: Sequence[Words],
    annotate: Callable[[list[Words]], list[list[str]]],
    budget: int = 10,
    features: torch.Tensor | None = None,
) -> tuple[list[int], FewShotPredictor]:
    """The pool indices chosen, and the predictor of the pair after their labels."""
    # --8<-- [start:suggest]
    run = pfpyro.load(run_dir)
    todo = run.suggest(task, lang, pool, budget=budget, strategy="bald", features=features)
    chosen = [pool[k] for k in todo["index"]]  # the sentences most worth labelling
    # --8<-- [end:suggest]
    # --8<-- [start:update]
    labels = annotate(chosen)  # a person labels them: one label per word
    names = run.label_names(task)
    ids = [[names.index(label) for label in sentence] for sentence in labels]
    if features is None:
        vectors = run.encoder().encode(chosen)  # [n_words, e] per sentence
    else:
        vectors = [features[k, : len(pool[k])] for k in todo["index"]]
    data = PairTensors.from_arrays(vectors, ids)
    pair = fit_pair(run.factorization, run.guide, task, lang, data, FewShotSettings(steps=300))
    predictor = FewShotPredictor(run.factorization, run.guide, {(task, lang): pair})
    # --8<-- [end:update]
    return list(todo["index"]), predictor

"""A baseline of one's own, in one file: the nearest class centroid of each task.

For every task, the mean feature vector of each label over the pooled training words of all
seen languages; a word of any language gets a softmax over its negative squared distances to
the centroids. It needs nothing from the run but the seen pairs, so it declares nothing; a
baseline that needs the source language's data or the catalog's language table says so with a
class attribute (``needs_source_data``, ``needs_language_table``; see
:mod:`pfpyro.model.capabilities`) and the pipeline hands it ``english_train=`` or
``similarity=``, as it does for LS and NS, without naming it.

A baseline is a class with ``fit(train, dev, *, seed, config, ...)`` returning an object with
``predict_proba(task, lang, features, mask)`` (:class:`pfpyro.predictor.TokenPredictor`);
``@register_baseline("centroid")`` makes :func:`pfpyro.baselines.fit_baseline` and the pipeline
find it, and listing the name in :data:`pfpyro.config.BASELINE_MODELS` lets a config's
``models:`` name it.

Run it: ``python docs/examples/centroid_baseline.py`` (fits and scores on a synthetic world).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from pfpyro.baselines import fit_baseline, register_baseline
from pfpyro.baselines.linear import LinearConfig
from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair
from pfpyro.evaluate import token_accuracy
from pfpyro.testing.synthetic import make_world


# --8<-- [start:baseline]
@register_baseline("centroid")
class NearestCentroid:
    """Each task's label centroids over all its seen languages' training words."""

    def __init__(self, centroids: Mapping[str, Tensor]) -> None:
        self.centroids = dict(centroids)  # task -> [c, e]

    @classmethod
    def fit(
        cls,
        train: Mapping[Pair, PairTensors],
        dev: Mapping[Pair, PairTensors] | None = None,
        *,
        seed: int = 0,
        config: LinearConfig | None = None,  # the run's baseline settings; none used here
    ) -> NearestCentroid:
        centroids = {}
        for task in sorted({t for t, _ in train}):
            pairs = [train[p] for p in train if p[0] == task]
            words = torch.cat([p.features[p.mask].float() for p in pairs])
            labels = torch.cat([p.labels[p.mask] for p in pairs])
            count = int(labels.max()) + 1
            sums = torch.zeros(count, words.shape[1]).index_add_(0, labels, words)
            sizes = torch.bincount(labels, minlength=count).clamp(min=1).unsqueeze(1)
            centroids[task] = sums / sizes
        return cls(centroids)

    def predict_proba(self, task: str, lang: str, features: Tensor, mask: Tensor) -> Tensor:
        distance = torch.cdist(features.float(), self.centroids[task].expand(len(features), -1, -1))
        return (-distance.pow(2)).softmax(-1)


# --8<-- [end:baseline]


def demo(seed: int = 0) -> dict[Pair, float]:
    """Fit the centroid baseline on a synthetic world's seen pairs; score the held-out ones."""
    # --8<-- [start:use]
    world = make_world(num_tasks=2, num_langs=4, feature_dim=8, latent_dim=3, seed=seed)
    heldout = [("task0", "lang1"), ("task1", "lang3")]
    seen = {pair: world.train[pair] for pair in world.pairs() if pair not in heldout}
    predictor = fit_baseline("centroid", seen, seed=seed, epochs=30)  # as the pipeline does
    scores = {}
    for task, lang in heldout:
        test = world.test[task, lang]
        probs = predictor.predict_proba(task, lang, test.features.float(), test.mask)
        scores[task, lang] = token_accuracy(test.labels, probs.argmax(-1), test.mask)
    # --8<-- [end:use]
    return scores


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(args: Sequence[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    for (task, lang), accuracy in demo(ns.seed).items():
        print(f"{task}/{lang}: accuracy {accuracy:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""NS: transfer from the nearest source language (paper §4.3, first baseline).

For a held-out (task, language), NS uses the classifier of the seen language of the same task
whose URIEL vector (lang2vec ``syntax_knn+phonology_knn+inventory_knn``) is closest to the
target's by cosine similarity. The similarity is injectable, so tests (and users with other
typological data) can replace URIEL.

:class:`SourceClassifiers`, the memoised language-specific classifiers, lives here because NS
is their simplest user; BEA ensembles the same classifiers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping

from torch import Tensor

from pfpyro.baselines.linear import LinearConfig, LinearTagger
from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair
from pfpyro.data.tasks import label_set
from pfpyro.data.uriel import uriel_similarity
from pfpyro.encode.top import EncoderTop
from pfpyro.errors import ConfigError

Similarity = Callable[[str, str], float]


def pair_seed(seed: int, *parts: str) -> int:
    """A seed for one classifier, stable across runs (unlike ``hash``) and distinct per pair."""
    return (seed * 1_000_003 + zlib.crc32("/".join(parts).encode())) % 2**31


class SourceClassifiers:
    """One :class:`LinearTagger` per seen (task, language), trained on first use and kept.

    Each is trained on its pair's training tensors, with early stopping on that pair's dev
    tensors when ``dev`` has them (seen pairs only: held-out labels are never touched).
    """

    def __init__(
        self,
        train: Mapping[Pair, PairTensors],
        dev: Mapping[Pair, PairTensors] | None = None,
        *,
        config: LinearConfig | None = None,
        seed: int = 0,
        top: EncoderTop | None = None,
    ):
        if not train:
            raise ConfigError("no seen pairs: the baselines need training data")
        self.train = dict(train)
        self.dev = dict(dev or {})
        self.config = config or LinearConfig()
        self.seed = seed
        self.top = top  # each classifier trains its own copy of the encoder's top, if any
        self._taggers: dict[Pair, LinearTagger] = {}

    def languages(self, task: str) -> tuple[str, ...]:
        """The seen languages of ``task``, sorted."""
        return tuple(sorted(lang for t, lang in self.train if t == task))

    def get(self, task: str, lang: str) -> LinearTagger:
        """The classifier of the seen pair (task, lang), trained now if it is new."""
        key = (task, lang)
        if key not in self.train:
            raise ConfigError(f"({task}, {lang}) is not a seen pair: it has no classifier")
        if key not in self._taggers:
            self._taggers[key] = LinearTagger.fit(
                self.train[key],
                self.dev.get(key),
                num_classes=len(label_set(task)),
                config=self.config,
                seed=pair_seed(self.seed, task, lang),
                top=self.top,
            )
        return self._taggers[key]

    @property
    def trained(self) -> tuple[Pair, ...]:
        """The pairs whose classifiers exist so far (for tests and logs)."""
        return tuple(sorted(self._taggers))


class NearestSource:
    """NS: each held-out pair is tagged by its most similar seen language's classifier."""

    #: Ranks sources by URIEL similarity: each language's code from the run's language table
    #: (the pipeline passes ``similarity=``, with the catalog's codes).
    needs_language_table = True

    name = "ns"

    def __init__(self, classifiers: SourceClassifiers, similarity: Similarity | None = None):
        self.classifiers = classifiers
        self.similarity = similarity or uriel_similarity

    @classmethod
    def fit(
        cls,
        train: Mapping[Pair, PairTensors],
        dev: Mapping[Pair, PairTensors] | None = None,
        *,
        similarity: Similarity | None = None,
        config: LinearConfig | None = None,
        seed: int = 0,
        top: EncoderTop | None = None,
    ) -> NearestSource:
        """Set up NS; classifiers are trained lazily, when a target first needs one."""
        return cls(SourceClassifiers(train, dev, config=config, seed=seed, top=top), similarity)

    def nearest_source(self, task: str, lang: str) -> str:
        """The seen language of ``task`` most similar to ``lang`` (never ``lang`` itself).

        Ties go to the alphabetically first language, so the choice is reproducible.
        """
        candidates = [s for s in self.classifiers.languages(task) if s != lang]
        if not candidates:
            raise ConfigError(f"no seen language of task {task!r} to transfer from to {lang!r}")
        return min(candidates, key=lambda s: (-self.similarity(lang, s), s))

    def predict_proba(self, task: str, lang: str, features: Tensor, mask: Tensor) -> Tensor:
        source = self.nearest_source(task, lang)
        return self.classifiers.get(task, source).predict_proba(features, mask)

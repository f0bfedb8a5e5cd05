"""Sentences of a pair → cached encoder features → padded tensors, memoised per run.

This is where the data layer (catalog, caps) meets the encoder; models only ever see the
:class:`~pfpyro.data.batch.PairTensors` it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from pfpyro.data.batch import PairTensors
from pfpyro.data.catalog import Catalog
from pfpyro.data.labels import label_set
from pfpyro.data.sampling import cap_sentences
from pfpyro.data.sentence import Sentence
from pfpyro.encode import WordEncoder

Pair = tuple[str, str]


@dataclass
class PairData:
    """The sentences of one pair and split, and their tensors (same order)."""

    sentences: list[Sentence]
    tensors: PairTensors


class FeatureStore:
    """Gives each (task, lang, split, role) its capped sentences and their features once."""

    def __init__(
        self,
        catalog: Catalog,
        encoder: WordEncoder,
        caps: dict[str, int | None] | None = None,
        cap_seed: int = 0,
    ) -> None:
        self.catalog = catalog
        self.encoder = encoder
        self.caps = dict(caps or {})
        self.cap_seed = cap_seed
        self._memo: dict[tuple[str, str, str, str, int | None], PairData | None] = {}

    def sentences(
        self, task: str, lang: str, split: str, role: str, cap: int | None = None
    ) -> list[Sentence]:
        """The pair's sentences of ``split`` as used in ``role`` ("seen" or "heldout"), capped."""
        found = self.catalog.sentences(task, lang, split, role)
        limit = cap if cap is not None else self.caps.get(split)
        return cap_sentences(found, limit, self.cap_seed)

    def get(
        self, task: str, lang: str, split: str, role: str, cap: int | None = None
    ) -> PairData | None:
        """Features of the pair's split, or None when the split has no sentences."""
        key = (task, lang, split, role, cap)
        if key not in self._memo:
            sentences = self.sentences(task, lang, split, role, cap)
            self._memo[key] = self._encode(task, sentences) if sentences else None
        return self._memo[key]

    def _encode(self, task: str, sentences: list[Sentence]) -> PairData:
        labels = label_set(task)
        index = {label: k for k, label in enumerate(labels)}
        features = self.encoder.encode([s.words for s in sentences])
        label_ids = [[index[label] for label in s.labels] for s in sentences]
        return PairData(sentences, PairTensors.from_arrays(features, label_ids))

    def split_tensors(self, pairs: list[Pair], split: str, role: str) -> dict[Pair, PairTensors]:
        """{pair: tensors} for every pair that has data in ``split``."""
        out = {}
        for task, lang in pairs:
            data = self.get(task, lang, split, role)
            if data is not None:
                out[task, lang] = data.tensors
        return out

"""Sentences of a pair → cached encoder features → padded tensors, memoised per run.

This is where the data layer (catalog, caps) meets the encoder; models only ever see the
:class:`~pfpyro.data.batch.PairTensors` it returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pfpyro.data.batch import PairTensors
from pfpyro.data.catalog import Catalog
from pfpyro.data.pairs import Pair
from pfpyro.data.sampling import cap_sentences
from pfpyro.data.sentence import Sentence
from pfpyro.data.tasks import label_set
from pfpyro.encode import WordEncoder
from pfpyro.encode.top import EncoderTop
from pfpyro.errors import ConfigError

ALL = "all"
"""``cap=ALL``: every sentence of the split, whatever the run's caps (the LS source's POS)."""


class SealedPairError(ConfigError):
    """A sealed pair's data was asked for: model selection touching a held-out pair."""


@dataclass
class PairData:
    """The sentences of one pair and split, and their tensors (same order)."""

    sentences: list[Sentence]
    tensors: PairTensors


class FeatureStore:
    """Gives each (task, lang, split, role) its capped sentences and their features once.

    With ``train_top`` k ≥ 1 the pairs' tensors also hold the subword states of the layer
    below the encoder's top k layers, which every model then trains (:meth:`encoder_top`).
    """

    def __init__(
        self,
        catalog: Catalog,
        encoder: WordEncoder,
        caps: dict[str, int | None] | None = None,
        cap_seed: int = 0,
        train_top: int = 0,
    ) -> None:
        self.catalog = catalog
        self.encoder = encoder
        self.caps = dict(caps or {})
        self.cap_seed = cap_seed
        self.train_top = int(train_top)
        if self.train_top:
            encoder.top(self.train_top)  # a bad k fails here, before any encoding
        self._memo: dict[tuple[str, str, str, str, int | str | None], PairData | None] = {}
        self._sealed: frozenset[Pair] = frozenset()

    @contextlib.contextmanager
    def sealing(self, pairs: Iterable[Pair]) -> Iterator[None]:
        """Within the block, asking for any data of ``pairs`` raises :class:`SealedPairError`:
        model selection runs sealed against the held-out pairs, so it cannot read them."""
        before = self._sealed
        self._sealed = before | {tuple(p) for p in pairs}
        try:
            yield
        finally:
            self._sealed = before

    def sentences(
        self, task: str, lang: str, split: str, role: str, cap: int | str | None = None
    ) -> list[Sentence]:
        """The pair's sentences of ``split`` as used in ``role`` ("seen" or "heldout"), capped
        (``cap``: a number, :data:`ALL` for no cap, None for the run's cap of ``split``)."""
        found = self.catalog.sentences(task, lang, split, role)
        limit = None if cap == ALL else cap if cap is not None else self.caps.get(split)
        return cap_sentences(found, limit, self.cap_seed)

    def get(
        self, task: str, lang: str, split: str, role: str, cap: int | str | None = None
    ) -> PairData | None:
        """Features of the pair's split, or None when the split has no sentences."""
        if (task, lang) in self._sealed:
            raise SealedPairError(
                f"{task}/{lang} is held out: its {split} data cannot be read during model "
                "selection (only the final test reads held-out pairs)"
            )
        key = (task, lang, split, role, cap)
        if key not in self._memo:
            self._memo[key] = self._load(task, lang, split, role, cap)
        return self._memo[key]

    def _load(
        self, task: str, lang: str, split: str, role: str, cap: int | str | None
    ) -> PairData | None:
        sentences = self.sentences(task, lang, split, role, cap)
        return self._encode(task, sentences) if sentences else None

    def _encode(self, task: str, sentences: list[Sentence]) -> PairData:
        labels = label_set(task)
        index = {label: k for k, label in enumerate(labels)}
        words = [s.words for s in sentences]
        features = self.encoder.encode_flat(words)  # memory-mapped from the cache
        subwords = None
        if self.train_top:
            below = self.encoder.num_layers - self.train_top
            subwords = self.encoder.encode_subwords(words, below)
        label_ids = [[index[label] for label in s.labels] for s in sentences]
        tensors = PairTensors.from_flat(features, [len(w) for w in words], label_ids, subwords)
        return PairData(sentences, tensors)

    def encoder_top(self) -> EncoderTop | None:
        """A fresh copy of the encoder's top ``train_top`` layers, pretrained weights (None
        when the encoder stays frozen): each model trains its own."""
        return self.encoder.top(self.train_top) if self.train_top else None

    def split_tensors(
        self, pairs: list[Pair], split: str, role: str, cap: int | str | None = None
    ) -> dict[Pair, PairTensors]:
        """{pair: tensors} for every pair that has data in ``split`` (``cap`` as in :meth:`get`)."""
        out = {}
        for task, lang in pairs:
            data = self.get(task, lang, split, role, cap)
            if data is not None:
                out[task, lang] = data.tensors
        return out

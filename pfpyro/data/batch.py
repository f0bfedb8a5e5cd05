"""Padded tensors of one task–language pair: what every model and baseline consumes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pfpyro.data.subwords import SubwordStates


class PairTensors:
    """Word features, label ids and a padding mask for the sentences of one pair and split.

    ``features`` is [N, T, e] (fp16 in a pair's store; :meth:`batch` returns fp32),
    ``labels`` is [N, T] of label ids (0 at padding, or all 0 when the data is unlabelled),
    ``mask`` is [N, T] and True on real words, a prefix of each row. T is the longest
    sentence of the pair. ``subwords``, when the encoder's top is trained
    (``encoder.train_top``), are the states of the layer below it, what such a model reads
    instead of ``features``; :attr:`inputs` is what a model takes.

    Storage. Features may be given padded, [N, T, e], or flat, [W, e]: the real words' rows
    in reading order (``features[mask]``), which is how :meth:`from_arrays` stores a pair, so
    that a pair's memory grows with its words and not with N times its longest sentence
    (padding was 15 times the words on full data, ``experiments/results/full6``). The
    :attr:`features` of a flat pair are padded when asked for; :meth:`batch` pads only the
    chosen sentences, and :meth:`words` is the flat table itself.
    """

    def __init__(
        self,
        features: Tensor,
        labels: Tensor,
        mask: Tensor,
        subwords: SubwordStates | None = None,
    ) -> None:
        self.labels, self.mask, self.subwords = labels, mask, subwords
        n, t = mask.shape
        flat = features.dim() == 2
        if labels.shape != (n, t) or (
            features.shape[0] != int(mask.sum()) if flat else features.shape[:2] != (n, t)
        ):
            raise ValueError(
                f"features {tuple(features.shape)}, labels {tuple(labels.shape)} and mask "
                f"{tuple(mask.shape)} disagree (features: [N, T, e], or [W, e] for W real words)"
            )
        if subwords is not None and tuple(subwords.first.shape) != (n, t):
            raise ValueError(
                f"subword positions {tuple(subwords.first.shape)} and mask {(n, t)} "
                "disagree on [N, T]"
            )
        self._features = features
        self._starts: Tensor | None = None  # first row of each sentence (flat features)
        self._counts: Tensor | None = None

    def __repr__(self) -> str:
        layout = "flat" if self.is_flat else "padded"
        return (
            f"PairTensors({len(self)} sentences, {self.num_words} words, width "
            f"{self.feature_dim}, {layout} {self._features.dtype}"
            f"{', subwords' if self.subwords is not None else ''})"
        )

    @property
    def feature_bytes(self) -> int:
        """Bytes the stored features take (flat: words × e; padded: N × T × e), for the memory
        bench and tests; labels and mask stay padded, 9 bytes a slot against 768 a word."""
        return self._features.numel() * self._features.element_size()

    @property
    def is_flat(self) -> bool:
        """Whether the features are stored by word ([W, e]) rather than padded."""
        return self._features.dim() == 2

    @property
    def features(self) -> Tensor:
        """[N, T, e] features (padded here when they are stored flat)."""
        if not self.is_flat:
            return self._features
        out = self._features.new_zeros(*self.mask.shape, self._features.shape[-1])
        out[self.mask] = self._features
        return out

    @property
    def inputs(self) -> Tensor | SubwordStates:
        """What a model reads: the subword states when there are any, else the features (in
        fp32; a batch's already are)."""
        return self.subwords if self.subwords is not None else self.features.float()

    @classmethod
    def from_arrays(
        cls,
        features: Sequence[np.ndarray | Tensor],
        label_ids: Sequence[Sequence[int]] | None = None,
        subwords: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    ) -> PairTensors:
        """One pair's tensors from per-sentence [n_words, e] arrays (and label id lists, and
        subword layouts of :meth:`WordEncoder.encode_subwords`); features stored by word."""
        if len(features) == 0:
            raise ValueError("a pair needs at least one sentence")
        dim = int(features[0].shape[-1])
        rows = [
            torch.as_tensor(np.asarray(f)) if not isinstance(f, Tensor) else f for f in features
        ]
        if any(f.dim() != 2 or int(f.shape[-1]) != dim for f in rows):
            raise ValueError(f"feature arrays must all be [n_words, {dim}]")
        flat = torch.cat([f.to(torch.float16) for f in rows])
        return cls.from_flat(flat, [int(f.shape[0]) for f in rows], label_ids, subwords)

    @classmethod
    def from_flat(
        cls,
        features: np.ndarray | Tensor,
        lengths: Sequence[int],
        label_ids: Sequence[Sequence[int]] | None = None,
        subwords: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    ) -> PairTensors:
        """One pair's tensors from its words' features stacked in order, ``[sum(lengths), e]``
        (kept as given, e.g. memory-mapped from the feature cache, when fp16)."""
        if len(lengths) == 0:
            raise ValueError("a pair needs at least one sentence")
        if label_ids is not None and len(label_ids) != len(lengths):
            raise ValueError(f"{len(lengths)} sentences but {len(label_ids)} label lists")
        flat = torch.from_numpy(features) if isinstance(features, np.ndarray) else features
        if flat.dtype != torch.float16:
            flat = flat.to(torch.float16)
        longest = max(lengths)
        labels = torch.zeros(len(lengths), longest, dtype=torch.long)
        mask = torch.arange(longest)[None, :] < torch.as_tensor(list(lengths))[:, None]
        if label_ids is not None:
            for k, n in enumerate(lengths):
                if len(label_ids[k]) != n:
                    raise ValueError(
                        f"sentence {k}: {n} feature rows but {len(label_ids[k])} labels"
                    )
                labels[k, :n] = torch.as_tensor(list(label_ids[k]), dtype=torch.long)
        states = None
        if subwords is not None:
            if len(subwords) != len(lengths):
                raise ValueError(f"{len(lengths)} sentences but {len(subwords)} subword layouts")
            states = SubwordStates.from_arrays(subwords, longest)
        return cls(flat, labels, mask, states)

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self._features.shape[-1])

    @property
    def num_words(self) -> int:
        return int(self.mask.sum())

    def batch(
        self, index: Tensor | Sequence[int], device: torch.device | None = None
    ) -> PairTensors:
        """The sentences at ``index``, trimmed to their longest, features in fp32."""
        index = torch.as_tensor(index, dtype=torch.long)
        mask = self.mask[index]
        longest = max(int(mask.sum(-1).max()), 1) if len(index) else 1
        mask = mask[:, :longest]
        if self.is_flat:
            features = self._features.new_zeros(len(index), longest, self.feature_dim)
            features[mask] = self._features[self.word_rows(index)]
            features = features.to(device=device, dtype=torch.float32)
        else:
            features = self._features[index, :longest].to(device=device, dtype=torch.float32)
        subwords = self.subwords
        return PairTensors(
            features,
            self.labels[index, :longest].to(device),
            mask.to(device),
            None if subwords is None else subwords.batch(index, longest, device),
        )

    def word_rows(self, index: Tensor) -> Tensor:
        """The rows of the flat features that hold the words of sentences ``index``, in order."""
        if self._starts is None:  # once per pair: this runs at every mini-batch
            self._counts = self.mask.sum(-1)
            self._starts = torch.cumsum(self._counts, 0) - self._counts
        lengths = self._counts[index]
        first = torch.repeat_interleave(self._starts[index], lengths)
        offset = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
        return first + torch.arange(int(lengths.sum())) - offset

    def select(self, index: Tensor | Sequence[int]) -> PairTensors:
        """The sentences at ``index``, stored as these are (no trimming, no conversion)."""
        index = torch.as_tensor(index, dtype=torch.long)
        subwords = None if self.subwords is None else self.subwords.select(index)
        features = self._features[self.word_rows(index)] if self.is_flat else self._features[index]
        return PairTensors(features, self.labels[index], self.mask[index], subwords)

    @classmethod
    def concat(cls, batches: Sequence[PairTensors]) -> PairTensors:
        """Batches (as :meth:`batch` gives them) one after another, padded to the longest."""
        length = max(int(b.mask.shape[1]) for b in batches)

        def pad(x: Tensor, size: int, dim: int, value: float = 0) -> Tensor:
            widths = [0, 0] * (x.dim() - 1 - dim) + [0, size - x.shape[dim]]
            return torch.nn.functional.pad(x, widths, value=value)

        subwords = None
        if all(b.subwords is not None for b in batches):
            width = max(int(b.subwords.segments.shape[1]) for b in batches)
            subwords = SubwordStates(
                torch.cat([pad(b.subwords.states, width, 1) for b in batches]),
                torch.cat([pad(b.subwords.segments, width, 1, -1) for b in batches]),
                torch.cat([pad(b.subwords.first, length, 1) for b in batches]),
            )
        return cls(
            torch.cat([pad(b.features, length, 1) for b in batches]),
            torch.cat([pad(b.labels, length, 1) for b in batches]),
            torch.cat([pad(b.mask, length, 1) for b in batches]),
            subwords,
        )

    def words(self) -> Tensor:
        """The features of the real words, [W, e] (padding dropped)."""
        return self._features if self.is_flat else self._features[self.mask]

    def to(self, device: torch.device) -> PairTensors:
        subwords = None if self.subwords is None else self.subwords.to(device)
        return PairTensors(
            self._features.to(device), self.labels.to(device), self.mask.to(device), subwords
        )


@dataclass
class PairsBatch:
    """Mini-batches of P pairs stacked for one SVI step over all of them (P = ``len(pairs)``).

    ``features`` [P, B, T, e], ``labels`` and ``mask`` [P, B, T]: each pair's batch padded to
    the step's longest batch and sentence (padding masked out); ``scale`` [P] is each pair's
    likelihood weight in the step (see :meth:`ParameterFactorization.model_pairs`).
    """

    pairs: tuple[tuple[str, str], ...]
    features: Tensor
    labels: Tensor
    mask: Tensor
    scale: Tensor

    @classmethod
    def stack(
        cls,
        pairs: Sequence[tuple[str, str]],
        batches: Sequence[PairTensors],
        scale: Sequence[float],
    ) -> PairsBatch:
        """One step's batches of ``pairs`` (as :meth:`PairTensors.batch` gives them), padded
        to a common [B, T] and stacked."""
        if not pairs or len(pairs) != len(batches) or len(pairs) != len(scale):
            raise ValueError("stack needs one batch and one scale per pair, and a pair at least")
        if any(b.subwords is not None for b in batches):
            raise ValueError("several pairs per step do not take a trainable encoder top")
        sentences = max(len(b) for b in batches)
        length = max(int(b.mask.shape[1]) for b in batches)
        first = batches[0].features
        features = first.new_zeros(len(batches), sentences, length, first.shape[-1])
        labels = torch.zeros(len(batches), sentences, length, dtype=torch.long, device=first.device)
        mask = torch.zeros(len(batches), sentences, length, dtype=torch.bool, device=first.device)
        for p, batch in enumerate(batches):
            n, t = batch.mask.shape
            features[p, :n, :t] = batch.features
            labels[p, :n, :t] = batch.labels
            mask[p, :n, :t] = batch.mask
        weights = torch.as_tensor(list(scale), dtype=first.dtype, device=first.device)
        return cls(tuple(tuple(p) for p in pairs), features, labels, mask, weights)


def sentence_chunks(
    features: Tensor | SubwordStates, mask: Tensor, size: int, device: torch.device
) -> Iterator[tuple[Tensor | SubwordStates, Tensor]]:
    """(features, mask) in chunks of at most ``size`` sentences, fp32 and bool on ``device``
    (subword states for a trained encoder top are chunked alike)."""
    for start in range(0, len(features), size):
        stop = start + size
        if isinstance(features, SubwordStates):
            chunk = features.batch(slice(start, stop), mask.shape[1], device)
        else:
            chunk = features[start:stop].to(device, torch.float32)
        yield chunk, mask[start:stop].to(device, torch.bool)


def feature_moments(features: Tensor, chunk: int = 65536) -> tuple[Tensor, Tensor]:
    """Per-feature mean and standard deviation of word features [W, e], in float64 by chunks.

    Encoder states are anisotropic (a large shared offset, uneven scales); standardising them
    by the training words' moments makes a linear head on top far better conditioned.
    """
    total = torch.zeros(features.shape[-1], dtype=torch.float64)
    square = torch.zeros_like(total)
    for lo in range(0, features.shape[0], chunk):
        x = features[lo : lo + chunk].to(torch.float64)
        total += x.sum(0)
        square += (x * x).sum(0)
    n = max(features.shape[0], 1)
    mean = total / n
    std = (square / n - mean * mean).clamp(min=0).sqrt()
    # A constant feature carries nothing; leave it unscaled rather than divide by zero.
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return mean.float(), std.float()

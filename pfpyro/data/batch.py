"""Padded tensors of one task–language pair: what every model and baseline consumes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pfpyro.data.subwords import SubwordStates


@dataclass
class PairTensors:
    """Word features, label ids and a padding mask for the sentences of one pair and split.

    ``features`` is [N, T, e] (stored in fp16 to halve memory; :meth:`batch` returns fp32),
    ``labels`` is [N, T] of label ids (0 at padding, or all 0 when the data is unlabelled),
    ``mask`` is [N, T] and True on real words. T is the longest sentence of the pair.
    ``subwords``, when the encoder's top is trained (``encoder.train_top``), are the states
    of the layer below it, what such a model reads instead of ``features``; :attr:`inputs`
    is what a model takes.
    """

    features: Tensor
    labels: Tensor
    mask: Tensor
    subwords: SubwordStates | None = None

    def __post_init__(self) -> None:
        n, t = self.mask.shape
        if self.features.shape[:2] != (n, t) or self.labels.shape != (n, t):
            raise ValueError(
                f"features {tuple(self.features.shape)}, labels {tuple(self.labels.shape)} and "
                f"mask {tuple(self.mask.shape)} disagree on [N, T]"
            )
        if self.subwords is not None and tuple(self.subwords.first.shape) != (n, t):
            raise ValueError(
                f"subword positions {tuple(self.subwords.first.shape)} and mask {(n, t)} "
                "disagree on [N, T]"
            )

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
        """Pad per-sentence [n_words, e] arrays (and label id lists, and subword layouts of
        :meth:`WordEncoder.encode_subwords`) into one pair's tensors."""
        if len(features) == 0:
            raise ValueError("a pair needs at least one sentence")
        if label_ids is not None and len(label_ids) != len(features):
            raise ValueError(f"{len(features)} feature arrays but {len(label_ids)} label lists")
        dim = int(features[0].shape[-1])
        longest = max(int(f.shape[0]) for f in features)
        out = torch.zeros(len(features), longest, dim, dtype=torch.float16)
        labels = torch.zeros(len(features), longest, dtype=torch.long)
        mask = torch.zeros(len(features), longest, dtype=torch.bool)
        for k, f in enumerate(features):
            f = torch.as_tensor(np.asarray(f)) if not isinstance(f, Tensor) else f
            n = f.shape[0]
            out[k, :n] = f.to(torch.float16)
            mask[k, :n] = True
            if label_ids is not None:
                if len(label_ids[k]) != n:
                    raise ValueError(
                        f"sentence {k}: {n} feature rows but {len(label_ids[k])} labels"
                    )
                labels[k, :n] = torch.as_tensor(list(label_ids[k]), dtype=torch.long)
        states = None
        if subwords is not None:
            if len(subwords) != len(features):
                raise ValueError(f"{len(features)} feature arrays but {len(subwords)} layouts")
            states = SubwordStates.from_arrays(subwords, longest)
        return cls(out, labels, mask, states)

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[-1])

    @property
    def num_words(self) -> int:
        return int(self.mask.sum())

    def batch(
        self, index: Tensor | Sequence[int], device: torch.device | None = None
    ) -> PairTensors:
        """The sentences at ``index``, trimmed to their longest, features in fp32."""
        index = torch.as_tensor(index, dtype=torch.long)
        mask = self.mask[index]
        longest = max(int(mask.sum(-1).max()), 1)
        subwords = self.subwords
        return PairTensors(
            self.features[index, :longest].to(device=device, dtype=torch.float32),
            self.labels[index, :longest].to(device),
            mask[:, :longest].to(device),
            None if subwords is None else subwords.batch(index, longest, device),
        )

    def select(self, index: Tensor | Sequence[int]) -> PairTensors:
        """The sentences at ``index``, as stored (no trimming, no conversion)."""
        index = torch.as_tensor(index, dtype=torch.long)
        subwords = None if self.subwords is None else self.subwords.select(index)
        return PairTensors(self.features[index], self.labels[index], self.mask[index], subwords)

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
        return self.features[self.mask]

    def to(self, device: torch.device) -> PairTensors:
        subwords = None if self.subwords is None else self.subwords.to(device)
        return PairTensors(
            self.features.to(device), self.labels.to(device), self.mask.to(device), subwords
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

"""How good a predictor's probabilities are, not just its argmax: entropy and calibration.

Inputs are ``probs`` [N, T, c] (rows sum to one), ``gold`` [N, T] label ids and ``mask``
[N, T] (True on real words); padding never counts. Everything is computed in float64.

- Predictive entropy ``H = -sum_y p(y) ln p(y)`` (nats), with ``0 ln 0 = 0`` (``xlogy``), per
  word; averaged per sentence and per pair (paper §5.3). It lies in ``[0, ln c]``.
- Expected calibration error (Guo et al., 2017): words binned by confidence (their largest
  probability) into equal-width bins on [0, 1]; ``ECE = sum_b n_b / n |acc_b - conf_b|``.
- Negative log-likelihood of the gold label, per word.
- Brier score, multi-class form: ``sum_y (p(y) - 1[y = gold])^2`` per word, in ``[0, 2]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

NLL_FLOOR = 1e-12
"""Probabilities are floored here before the log, so one zero cannot make the NLL infinite."""


Array = Tensor | np.ndarray
"""What the functions here read: a tensor or an array."""


def token_entropy(probs: Array) -> Tensor:
    """``-sum p ln p`` over the last dimension, with ``0 ln 0 = 0``, in float64; shape
    ``probs.shape[:-1]``."""
    p = torch.as_tensor(probs).detach().to(dtype=torch.float64)
    return -torch.special.xlogy(p, p).sum(-1)


def _as_float64(probs: Array) -> Tensor:
    return torch.as_tensor(probs).detach().to(dtype=torch.float64)


def _checked(probs: Array, gold: Array | None, mask: Array) -> tuple[Tensor, Tensor | None, Tensor]:
    probs = _as_float64(probs)
    mask = torch.as_tensor(mask, device=probs.device).bool()
    if probs.dim() < 1 or probs.shape[:-1] != mask.shape:
        raise ValueError(f"probs {tuple(probs.shape)} must be mask {tuple(mask.shape)} + [c]")
    if not bool(mask.any()):
        raise ValueError("the mask selects no words: there is nothing to score")
    if gold is not None:
        gold = torch.as_tensor(gold, device=probs.device).long()
        if gold.shape != mask.shape:
            raise ValueError(f"gold {tuple(gold.shape)} and mask {tuple(mask.shape)} differ")
        real = gold[mask]
        if int(real.min()) < 0 or int(real.max()) >= probs.shape[-1]:
            raise ValueError(f"gold ids must lie in [0, {probs.shape[-1]}) on real words")
    return probs, gold, mask


def sentence_entropy(probs: Array, mask: Array) -> Tensor:
    """[N]: each sentence's mean word entropy (0 for a sentence without words)."""
    probs, _, mask = _checked(probs, None, mask)
    h = token_entropy(probs) * mask
    return h.sum(-1) / mask.sum(-1).clamp(min=1)


def mean_entropy(probs: Array, mask: Array) -> float:
    """The pair's mean entropy over all its real words."""
    probs, _, mask = _checked(probs, None, mask)
    return float(token_entropy(probs)[mask].mean())


def negative_log_likelihood(probs: Array, gold: Array, mask: Array) -> float:
    """Mean over real words of ``-ln p(gold)`` (p floored at :data:`NLL_FLOOR`)."""
    probs, gold, mask = _checked(probs, gold, mask)
    p_gold = probs.gather(-1, gold.unsqueeze(-1)).squeeze(-1)[mask]
    return float(-p_gold.clamp(min=NLL_FLOOR).log().mean())


def brier_score(probs: Array, gold: Array, mask: Array) -> float:
    """Mean over real words of ``sum_y (p(y) - 1[y = gold])^2``."""
    probs, gold, mask = _checked(probs, gold, mask)
    onehot = torch.nn.functional.one_hot(gold, probs.shape[-1]).to(probs.dtype)
    return float(((probs - onehot) ** 2).sum(-1)[mask].mean())


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Per confidence bin: mean confidence, accuracy and word count (a reliability diagram).

    ``edges`` has ``n_bins + 1`` entries; bin b holds confidences in ``(edges[b], edges[b+1]]``
    (the first bin also takes 0). Empty bins have ``nan`` confidence and accuracy and count 0.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean gap |accuracy - confidence|."""
        return ece_from_bins(self.count, self.confidence, self.accuracy)


def ece_from_bins(count: ArrayLike, confidence: ArrayLike, accuracy: ArrayLike) -> float:
    """Expected calibration error from per-bin word counts, mean confidences and accuracies:
    the count-weighted mean gap |accuracy - confidence| over the bins that hold words (an empty
    bin's nan confidence and accuracy are skipped); nan when no bin holds a word."""
    count, confidence, accuracy = (np.asarray(a) for a in (count, confidence, accuracy))
    total = count.sum()
    if not total > 0:
        return math.nan
    used = count > 0
    gaps = np.abs(accuracy[used] - confidence[used])
    return float((count[used] * gaps).sum() / total)


def reliability_diagram(
    probs: Array, gold: Array, mask: Array, n_bins: int = 15
) -> ReliabilityDiagram:
    """Bin the real words by confidence (largest probability) into ``n_bins`` equal-width bins."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be positive, got {n_bins}")
    probs, gold, mask = _checked(probs, gold, mask)
    confidence, predicted = probs.max(-1)
    confidence, correct = confidence[mask], (predicted == gold)[mask].to(torch.float64)
    # Right-closed bins: ceil(conf * B) - 1, so conf = 1.0 lands in the last bin.
    index = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins).to(torch.float64)
    conf_sum = torch.bincount(index, weights=confidence, minlength=n_bins)
    correct_sum = torch.bincount(index, weights=correct, minlength=n_bins)
    return ReliabilityDiagram(  # 0 / 0 in torch is a quiet nan: empty bins
        edges=np.linspace(0.0, 1.0, n_bins + 1),
        confidence=(conf_sum / count).cpu().numpy(),
        accuracy=(correct_sum / count).cpu().numpy(),
        count=count.cpu().numpy().astype(np.int64),
    )


def expected_calibration_error(probs: Array, gold: Array, mask: Array, n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (15 by default: docs/design.md §7)."""
    return reliability_diagram(probs, gold, mask, n_bins).ece

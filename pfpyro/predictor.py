"""The one predict interface shared by the PF model and every baseline, and the per-word
quantities every layer reads off a prediction: its entropy and its accuracy (the trainer's
default dev score, below the layers that score whole tasks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor


@runtime_checkable
class TokenPredictor(Protocol):
    """Anything that turns word features of a (task, language) pair into label probabilities.

    ``features`` is [N, T, e] fp32, ``mask`` [N, T] bool; the result is [N, T, c_task]
    probabilities over the task's labels in :func:`pfpyro.data.tasks.label_set` order (rows
    at padding are arbitrary but finite).
    """

    def predict_proba(self, task: str, lang: str, features: Tensor, mask: Tensor) -> Tensor: ...


def token_entropy(probs: Tensor | np.ndarray) -> Tensor:
    """``-sum p ln p`` over the last dimension, with ``0 ln 0 = 0``, in float64; shape
    ``probs.shape[:-1]``."""
    p = torch.as_tensor(probs).detach().to(dtype=torch.float64)
    return -torch.special.xlogy(p, p).sum(-1)


ArrayLike = Tensor | np.ndarray | Sequence


def _numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def real_words(gold: ArrayLike, pred: ArrayLike, mask: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The gold and predicted ids of the real words only, flattened in reading order."""
    gold, pred, mask = _numpy(gold), _numpy(pred), _numpy(mask).astype(bool)
    if gold.shape != pred.shape or gold.shape != mask.shape:
        raise ValueError(
            f"gold {gold.shape}, pred {pred.shape} and mask {mask.shape} must have one shape"
        )
    if not mask.any():
        raise ValueError("the mask selects no words: there is nothing to score")
    return gold[mask], pred[mask]


def token_accuracy(gold: ArrayLike, pred: ArrayLike, mask: ArrayLike) -> float:
    """The share of real words whose predicted id equals the gold id (POS's score)."""
    g, p = real_words(gold, pred, mask)
    return float((g == p).mean())

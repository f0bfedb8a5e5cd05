"""The one predict interface shared by the PF model and every baseline (the metrics of a
prediction are :mod:`pfpyro.evaluate`'s)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class TokenPredictor(Protocol):
    """Anything that turns word features of a (task, language) pair into label probabilities.

    ``features`` is [N, T, e] fp32, ``mask`` [N, T] bool; the result is [N, T, c_task]
    probabilities over the task's labels in :func:`pfpyro.data.tasks.label_set` order (rows
    at padding are arbitrary but finite).
    """

    def predict_proba(self, task: str, lang: str, features: Tensor, mask: Tensor) -> Tensor: ...

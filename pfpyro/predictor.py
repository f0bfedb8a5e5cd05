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


class TaskRouter:
    """A predictor per task behind the one interface: ``selection.per_task`` chooses a model
    (a length, an offset scale) for each task, and each task's pairs are predicted by its own."""

    def __init__(self, by_task: dict[str, TokenPredictor]) -> None:
        self.by_task = dict(by_task)

    def predict_proba(self, task: str, lang: str, features: Tensor, mask: Tensor) -> Tensor:
        if task not in self.by_task:
            raise KeyError(
                f"no model was chosen for task {task!r}; chosen for: {', '.join(self.by_task)}"
            )
        return self.by_task[task].predict_proba(task, lang, features, mask)

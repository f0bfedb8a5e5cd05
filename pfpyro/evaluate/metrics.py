"""Task scores from predicted and gold label ids: POS accuracy, NER span F1 and token F1.

Every function takes ``(gold, pred, mask)`` in that order (as scikit-learn and seqeval do):
``gold`` and ``pred`` are [N, T] label ids, ``mask`` [N, T] is True on real words; padding is
never scored. Ids index :func:`pfpyro.data.tasks.label_set` of the task.

Two F1s for NER (docs/design.md §7): the headline is entity-level span F1 with seqeval's default
(conlleval-style) chunking of IOB2 tags; token-level micro F1 over the non-O tags is kept for
comparison with the paper's numbers, whose code scored tokens. Neither lets 'O' count as a hit
(the authors' code did, which turns "F1" into something close to token accuracy).

Undefined ratios follow seqeval's ``zero_division=0``: when there is nothing to find and
nothing was predicted, precision, recall and F1 are 0.0 (not 1.0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

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


def ids_to_tags(ids: ArrayLike, mask: ArrayLike, labels: Sequence[str]) -> list[list[str]]:
    """Per sentence, the label strings of its real words (padding dropped)."""
    ids, mask = _numpy(ids), _numpy(mask).astype(bool)
    if ids.shape != mask.shape:
        raise ValueError(f"ids {ids.shape} and mask {mask.shape} must have one shape")
    if mask.any() and (ids[mask].min() < 0 or ids[mask].max() >= len(labels)):
        raise ValueError(f"label ids must lie in [0, {len(labels)}) on real words")
    return [[labels[int(i)] for i in row[keep]] for row, keep in zip(ids, mask, strict=True)]


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1, with the counts they came from."""

    precision: float
    recall: float
    f1: float
    n_gold: int
    n_pred: int
    n_correct: int


def _prf(n_correct: int, n_gold: int, n_pred: int) -> PRF:
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return PRF(precision, recall, f1, n_gold, n_pred, n_correct)


def span_prf(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> PRF:
    """Entity-level micro precision, recall and F1 over all sentences, as seqeval scores them.

    An entity counts as correct only when its type, start and end all match. Chunking is
    seqeval's default (``mode=None``): an ``I-X`` after ``O`` or after another type opens a
    new entity, as in conlleval.
    """
    # here, not at import: seqeval brings scikit-learn, ~0.9 s of every command's start-up
    from seqeval.metrics.sequence_labeling import get_entities

    if len(gold_tags) != len(pred_tags):
        raise ValueError(f"{len(gold_tags)} gold sentences but {len(pred_tags)} predicted")
    n_gold = n_pred = n_correct = 0
    for k, (g, p) in enumerate(zip(gold_tags, pred_tags, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {k}: {len(g)} gold tags but {len(p)} predicted")
        # Entities as (type, start, end) within the sentence, by seqeval's own chunker.
        ge, pe = set(get_entities(list(g))), set(get_entities(list(p)))
        n_gold, n_pred, n_correct = n_gold + len(ge), n_pred + len(pe), n_correct + len(ge & pe)
    return _prf(n_correct, n_gold, n_pred)


def span_f1(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> float:
    """Entity-level micro F1 (seqeval's default conventions); see :func:`span_prf`."""
    return span_prf(gold_tags, pred_tags).f1


def token_prf(gold: ArrayLike, pred: ArrayLike, mask: ArrayLike, *, outside: int = 0) -> PRF:
    """Token-level micro precision, recall and F1 over the tags other than ``outside`` ('O').

    A real word is a gold positive when its gold tag is not O, a predicted positive when its
    predicted tag is not O, and correct when it is a gold positive predicted with the exact
    tag (B-PER is not I-PER). O–O agreement counts for nothing.
    """
    g, p = real_words(gold, pred, mask)
    n_gold = int((g != outside).sum())
    n_pred = int((p != outside).sum())
    n_correct = int(((g == p) & (g != outside)).sum())
    return _prf(n_correct, n_gold, n_pred)


def token_f1(gold: ArrayLike, pred: ArrayLike, mask: ArrayLike, *, outside: int = 0) -> float:
    """Token-level micro F1 over the non-O tags; see :func:`token_prf`."""
    return token_prf(gold, pred, mask, outside=outside).f1


def argmax_labels(probs: Tensor) -> Tensor:
    """The most probable label id of every position of [N, T, c] probabilities."""
    return torch.as_tensor(probs).argmax(dim=-1)

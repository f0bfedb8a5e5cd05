"""Constrained decoding: the most probable *valid* IOB2 tag sequence of each sentence.

A per-word argmax often yields sequences that are not valid IOB2 (``I-PER`` after ``O``, a
sentence that opens with ``I-LOC``, ``B-ORG`` followed by ``I-PER``); seqeval's chunker then
opens a new entity at the stray ``I-``, which costs span F1. Viterbi decoding over the words'
log-probabilities, with the forbidden transitions removed, returns instead the valid sequence
whose product of per-word probabilities is largest (as a CRF layer does at test time, here
with the per-word marginals the predictor already gives).

Transitions are derived from the tag strings, so any IOB2 label set works: ``I-X`` may only
follow ``B-X`` or ``I-X`` and may not open a sentence; every other transition is allowed. Tags
that are neither ``B-X`` nor ``I-X`` (``O``, or POS tags) are unconstrained, so for a label set
without ``I-`` tags the decoding is the argmax.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

_TINY = 1e-30  # probabilities are clamped here before the log, so log 0 stays finite


def _entity_type(tag: str, prefix: str) -> str | None:
    """``X`` when ``tag`` is ``prefix + X`` (e.g. ``"I-PER"`` with ``"I-"``), else None."""
    return tag[len(prefix) :] if tag.startswith(prefix) else None


def bio_transitions(labels: Sequence[str]) -> tuple[Tensor, Tensor]:
    """The allowed IOB2 transitions of ``labels``: ``allowed`` [c, c] and ``start`` [c].

    ``allowed[i, j]`` is True when tag ``j`` may follow tag ``i``; ``start[j]`` when a sentence
    may open with tag ``j``. Only ``I-X`` is constrained: it must follow ``B-X`` or ``I-X``.
    """
    c = len(labels)
    allowed = torch.ones(c, c, dtype=torch.bool)
    start = torch.ones(c, dtype=torch.bool)
    for j, tag in enumerate(labels):
        kind = _entity_type(tag, "I-")
        if kind is None:
            continue
        start[j] = False
        for i, prev in enumerate(labels):
            allowed[i, j] = kind in (_entity_type(prev, "B-"), _entity_type(prev, "I-"))
    return allowed, start


def is_valid_bio(
    ids: Tensor | np.ndarray, mask: Tensor | np.ndarray, labels: Sequence[str]
) -> Tensor:
    """Per sentence, whether its real words' tags (padding skipped) form a valid IOB2 sequence.

    Returns a bool tensor [N].
    """
    ids, mask = torch.as_tensor(ids).long(), torch.as_tensor(mask).bool()
    allowed, start = bio_transitions(labels)
    valid = torch.ones(ids.shape[0], dtype=torch.bool)
    for n in range(ids.shape[0]):
        words = ids[n][mask[n]]
        if len(words):
            valid[n] = bool(start[words[0]]) and bool(allowed[words[:-1], words[1:]].all())
    return valid


def viterbi_decode(
    probs: Tensor | np.ndarray, mask: Tensor | np.ndarray, labels: Sequence[str]
) -> Tensor:
    """The highest-probability valid IOB2 label ids of each sentence: a long tensor [N, T].

    ``probs`` [N, T, c] are per-word distributions over ``labels``; ``mask`` [N, T] is True on
    real words. Padding is skipped (the transition runs from the last real word to the next),
    and padded positions hold the plain argmax. Vectorised over sentences, a loop over words.
    """
    probs = torch.as_tensor(probs)
    mask = torch.as_tensor(mask).bool()
    if probs.dim() != 3 or probs.shape[-1] != len(labels) or probs.shape[:2] != mask.shape:
        raise ValueError(
            f"probs must be [N, T, {len(labels)}] and mask [N, T], "
            f"got {tuple(probs.shape)} and {tuple(mask.shape)}"
        )
    n, t, c = probs.shape
    allowed, start = bio_transitions(labels)
    forbidden = torch.tensor(-torch.inf, dtype=torch.float64)
    transition = torch.where(allowed, 0.0, forbidden)  # [c_prev, c_next]
    opening = torch.where(start, 0.0, forbidden)  # [c]
    emission = probs.detach().cpu().double().clamp_min(_TINY).log()
    mask = mask.cpu()
    stay = torch.arange(c).expand(n, c)  # the back-pointer of a skipped (padded) position
    score = torch.zeros(n, c, dtype=torch.float64)
    started = torch.zeros(n, dtype=torch.bool)
    back = []
    for k in range(t):
        best, arg = (score.unsqueeze(-1) + transition).max(dim=1)  # over the previous tag
        step = torch.where(started.unsqueeze(-1), best, opening) + emission[:, k]
        arg = torch.where(started.unsqueeze(-1), arg, stay)
        real = mask[:, k].unsqueeze(-1)
        score = torch.where(real, step, score)
        back.append(torch.where(real, arg, stay))
        started |= mask[:, k]
    path = probs.detach().cpu().argmax(-1)
    state = score.argmax(-1)
    rows = torch.arange(n)
    for k in reversed(range(t)):
        path[:, k] = torch.where(mask[:, k], state, path[:, k])
        state = back[k][rows, state]
    return path.to(probs.device)

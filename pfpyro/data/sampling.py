"""Seeded caps on the number of sentences per split, so CPU runs stay small and repeatable."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from pfpyro.errors import ConfigError

T = TypeVar("T")


def cap_sentences(
    sentences: Sequence[T], cap: int | None, seed: int, *, sizes: Sequence[int] | None = None
) -> list[T]:
    """At most ``cap`` sentences drawn at random without replacement, in their original order.

    ``cap=None`` (or a cap at least the number of sentences) keeps all of them. The subset
    depends only on ``seed`` and the number of sentences, so the same seed on the same file
    always keeps the same sentences.

    With ``sizes`` (one non-negative number per sentence, e.g. its words), ``cap`` bounds their
    total instead: sentences are taken in a seeded random order while the total still fits.
    """
    if cap is None:
        return list(sentences)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        raise ConfigError(f"a sentence cap must be a non-negative integer or None, not {cap!r}")
    if sizes is not None:
        if len(sizes) != len(sentences):
            raise ValueError(f"{len(sizes)} sizes for {len(sentences)} sentences")
        keep, total = [], 0
        for i in random.Random(seed).sample(range(len(sentences)), len(sentences)):
            total += sizes[i]
            if total > cap:
                break
            keep.append(i)
        keep.sort()
    elif cap >= len(sentences):
        return list(sentences)
    else:
        keep = sorted(random.Random(seed).sample(range(len(sentences)), cap))
    return [sentences[i] for i in keep]

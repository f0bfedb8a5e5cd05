"""A (task, language) pair: the unit every layer counts data, models and scores by."""

from __future__ import annotations

Pair = tuple[str, str]
"""``(task, lang)``, e.g. ``("ner", "wo")``."""


def pair_name(pair: Pair) -> str:
    """``"task/lang"``, as logs, errors and result files spell a pair."""
    return f"{pair[0]}/{pair[1]}"


__all__ = ["Pair", "pair_name"]

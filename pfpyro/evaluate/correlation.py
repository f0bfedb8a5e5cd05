"""Does a pair's uncertainty predict its score? Pearson and Spearman, with p-values.

The paper (§5.3) correlates each task–language pair's mean predictive entropy with its
score and reports Pearson's ρ = −0.914 (two-tailed p = 1.0e-26). Spearman's rank correlation
is added here because it does not assume a linear relation. POS and NER entropies live on
different scales (ln 17 vs ln 7 nats at most), so :func:`correlate_by_group` also gives one
correlation per task beside the pooled one.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

POOLED = "pooled"
"""The key of the correlation over all pairs in :func:`correlate_by_group`."""


@dataclass(frozen=True)
class Correlation:
    """Pearson's r and Spearman's rho of n paired values, each with its two-tailed p-value."""

    pearson: float
    pearson_p: float
    spearman: float
    spearman_p: float
    n: int


def correlate(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> Correlation:
    """Pearson and Spearman correlation of ``x`` with ``y`` (scipy), two-tailed.

    Needs at least three finite pairs. A constant side has no defined correlation: all four
    numbers are then ``nan`` (rather than scipy's warning).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x {x.shape} and y {y.shape} must be two vectors of one length")
    if len(x) < 3:
        raise ValueError(f"a correlation needs at least 3 pairs, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite (drop the pairs without a score first)")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        nan = float("nan")
        return Correlation(nan, nan, nan, nan, len(x))
    from scipy import stats  # here, not at import: scipy.stats costs ~0.7 s of start-up

    pearson = stats.pearsonr(x, y)
    spearman = stats.spearmanr(x, y)
    return Correlation(
        float(pearson.statistic),
        float(pearson.pvalue),
        float(spearman.statistic),
        float(spearman.pvalue),
        len(x),
    )


def _correlate_or_nan(x: np.ndarray, y: np.ndarray) -> Correlation:
    """:func:`correlate`, or all-NaN when there are fewer than 3 pairs (a task may have few)."""
    if len(x) < 3:
        nan = float("nan")
        return Correlation(nan, nan, nan, nan, len(x))
    return correlate(x, y)


def correlate_by_group(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    groups: Sequence[str] | np.ndarray,
    names: Iterable[str] | None = None,
) -> dict[str, Correlation]:
    """The correlation of ``x`` with ``y`` over all pairs (key :data:`POOLED`) and per group.

    ``groups`` labels each pair (e.g. its task). ``names`` are the groups reported, in order
    (default: those in ``groups``, by first appearance); a group with fewer than 3 pairs gets
    NaNs and its count instead of an error.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    groups = np.asarray(groups, dtype=object)
    if groups.shape != x.shape:
        raise ValueError(f"groups {groups.shape} must match x {x.shape}")
    names = list(dict.fromkeys(groups)) if names is None else list(names)
    if POOLED in names:
        raise ValueError(f"{POOLED!r} names the correlation over all groups, not a group")
    out = {POOLED: _correlate_or_nan(x, y)}
    for name in names:
        chosen = groups == name
        out[str(name)] = _correlate_or_nan(x[chosen], y[chosen])
    return out


def entropy_score_correlation(
    results: Mapping[Hashable, Mapping[str, float]],
    *,
    entropy_key: str = "entropy",
    score_key: str = "score",
) -> Correlation:
    """Correlate the pairs' mean entropies with their scores.

    ``results`` maps each pair (e.g. ``(task, lang)``) to its metrics, as
    :func:`pfpyro.evaluate.scoring.score_pair` returns them; ``score`` there is each task's
    headline metric (POS accuracy, NER span F1), so both tasks pool as in the paper.
    """
    missing = [k for k, m in results.items() if entropy_key not in m or score_key not in m]
    if missing:
        raise KeyError(f"pairs without {entropy_key!r} or {score_key!r}: {missing[:5]}")
    keys = list(results)
    return correlate([results[k][entropy_key] for k in keys], [results[k][score_key] for k in keys])

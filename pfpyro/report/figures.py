"""The paper's figures (Fig. 2, 3, 4) and reliability diagrams, written as PNG files.

Every figure is a :class:`matplotlib.figure.Figure` drawn on its own Agg canvas, never through
pyplot: nothing global is switched (no backend change at import), no window can open, and
figures can be drawn from several threads. Each function writes its PNG atomically (temporary
file, then ``os.replace``) and returns the path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy import stats

from pfpyro.atomic import atomic_write
from pfpyro.data.tasks import find_task
from pfpyro.errors import PfpyroError
from pfpyro.evaluate.correlation import POOLED, Correlation, correlate_by_group
from pfpyro.evaluate.scoring import headline_metric
from pfpyro.evaluate.uncertainty import ece_from_bins
from pfpyro.report.tables import (
    as_frame,
    check_columns,
    check_results,
    display_name,
    order_models,
    per_pair_table,
    task_colour,
    task_title,
    tasks_in,
)

ENTROPY_COLUMNS: tuple[str, ...] = (
    "model",
    "partition",
    "seed",
    "task",
    "lang",
    "sentence",
    "entropy",
)
RELIABILITY_COLUMNS: tuple[str, ...] = ("model", "task", "bin", "confidence", "accuracy", "count")

_SCORE_TITLE = {"accuracy": "accuracy (%)", "span_f1": "span F1 (%)", "token_f1": "token F1 (%)"}
_METRIC_NAME = {"accuracy": "accuracy", "span_f1": "span F1", "token_f1": "token F1"}
_DPI = 150


def _colours(n: int) -> list:
    """n distinct colours: tab10 while it lasts, then tab20, then an even spread of a hue map."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["hsv"](i / n) for i in range(n)]


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG at ``path``, all or nothing."""
    return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=_DPI))


# --- Fig. 2: per-language scores -----------------------------------------------------------


def figure_per_language(
    results: pd.DataFrame | str | os.PathLike[str],
    task: str,
    path: str | os.PathLike[str],
    metric: str | None = None,
    models: Sequence[str] | None = None,
) -> Path:
    """Fig. 2: per held-out language of ``task``, grouped bars of each model's score.

    Bars are the mean over seeds of the headline metric (or ``metric``), error bars the std.
    """
    frame = check_results(results)
    metric = metric or headline_metric(task)
    table = per_pair_table(frame, task, metric, models)
    if table.empty:
        raise PfpyroError(f"results hold no {metric} scores for task {task!r}")
    langs = list(table.index)
    models = list(dict.fromkeys(table.columns.get_level_values(0)))
    width = min(max(8.0, 1.5 + len(langs) * (0.12 * len(models) + 0.25)), 28.0)
    fig = _new_figure(width, 4.5)
    ax = fig.add_subplot()
    x = np.arange(len(langs))
    bar = 0.8 / max(len(models), 1)
    for i, (model, colour) in enumerate(zip(models, _colours(len(models)), strict=True)):
        mean = table[(model, "mean")].to_numpy(dtype=float) * 100
        std = table[(model, "std")].to_numpy(dtype=float) * 100
        run = ~np.isnan(mean)
        ax.bar(
            (x - 0.4 + bar * (i + 0.5))[run],
            mean[run],
            bar,
            yerr=np.nan_to_num(std[run]),
            label=display_name(model),
            color=colour,
            error_kw={"elinewidth": 0.8, "capsize": 1.5},
        )
    ax.set_xticks(x, langs)
    ax.set_xlim(-0.6, len(langs) - 0.4)
    ax.set_ylim(0, 100)
    ax.set_xlabel("held-out language (ISO 639 code)")
    ax.set_ylabel(_SCORE_TITLE.get(metric, metric))
    ax.set_title(
        f"{task_title(task)}: zero-shot {_METRIC_NAME.get(metric, metric)} per held-out "
        "language (mean ± std over seeds)"
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(title="model", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return save_png(fig, path)


# --- Fig. 3: entropy of the predictive distribution ------------------------------------------


@dataclass(frozen=True)
class EntropyFigure:
    """What :func:`figure_entropy` made: the PNG's path and the entropy–score correlations.

    ``correlations`` holds the pooled one (key ``"pooled"``) and one per task (``"pos"``,
    ``"ner"``); ``correlation`` is the pooled one. It unpacks as
    ``path, correlation = figure_entropy(...)``.
    """

    path: Path
    correlations: dict[str, Correlation]

    @property
    def correlation(self) -> Correlation:
        """The correlation over all pairs, both tasks pooled (as the paper reports it)."""
        return self.correlations[POOLED]

    def __iter__(self) -> Iterator[Path | Correlation]:
        return iter((self.path, self.correlation))


def _entropy_rows(
    sentence_entropy: pd.DataFrame | str | os.PathLike[str],
    model: str,
    tasks: Sequence[str] | None,
) -> pd.DataFrame:
    """The checked sentence-entropy rows of ``model`` (and ``tasks``), entropy made numeric."""
    ent = as_frame(sentence_entropy, "sentence entropy")
    check_columns(ent, ENTROPY_COLUMNS, "sentence entropy")
    ent = ent[ent["model"] == model]
    if tasks is not None:
        ent = ent[ent["task"].isin(list(tasks))]
    if ent.empty:
        raise PfpyroError(f"sentence entropy holds no rows for model {model!r}")
    entropy = pd.to_numeric(ent["entropy"], errors="coerce")
    if entropy.isna().any():
        row = int(np.flatnonzero(entropy.isna().to_numpy())[0])
        raise PfpyroError(
            f"sentence entropy: column entropy must be numeric, found "
            f"{ent['entropy'].iloc[row]!r} in row {ent.index[row]}"
        )
    return ent.assign(entropy=entropy, task=ent["task"].astype(str), lang=ent["lang"].astype(str))


def entropy_correlations(pairs: pd.DataFrame) -> dict[str, Correlation]:
    """Pooled and per-task correlations of the pairs' mean entropy with their score.

    ``pairs`` is :func:`entropy_by_pair`'s frame; pairs without a score are left out. Keys are
    ``"pooled"`` and each task of ``pairs`` (POS, NER first); fewer than 3 pairs give NaNs.
    """
    scored = pairs.dropna(subset=["score"])
    return correlate_by_group(
        scored["entropy"].to_numpy(float),
        scored["score"].to_numpy(float),
        scored["task"].to_numpy(str),
        names=tasks_in(pairs),
    )


def entropy_by_pair(
    sentence_entropy: pd.DataFrame | str | os.PathLike[str],
    results: pd.DataFrame | str | os.PathLike[str],
    model: str = "pf-lr-bma",
    tasks: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, Correlation]:
    """Per task–language pair of ``model``: mean sentence entropy and headline score.

    The entropy is the mean over all the pair's sentences (seeds and partitions pooled); the
    score is the headline metric's mean over seeds. Returns the frame (columns task, lang,
    entropy, median, score; score NaN where the pair has none) and the pooled correlation over
    the pairs that have both (per task: :func:`entropy_correlations` of the frame).
    """
    ent = _entropy_rows(sentence_entropy, model, tasks)
    frame = check_results(results)
    grouped = ent.groupby(["task", "lang"])["entropy"]
    pairs = pd.DataFrame({"entropy": grouped.mean(), "median": grouped.median()}).reset_index()
    scores = frame[frame["model"] == model].dropna(subset=["value"])
    scores = scores.assign(task=scores["task"].astype(str), lang=scores["lang"].astype(str))
    score = []
    for task, lang in zip(pairs["task"], pairs["lang"], strict=True):
        metric = headline_metric(task)
        rows = scores[(scores["task"] == task) & (scores["lang"] == lang)]
        rows = rows[rows["metric"] == metric]
        per_seed = rows.groupby("seed")["value"].mean()
        score.append(float(per_seed.mean()) if len(per_seed) else math.nan)
    pairs["score"] = score
    return pairs, entropy_correlations(pairs)[POOLED]


def _p_text(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.2g}"


def correlation_text(corr: Correlation, *, compact: bool = False) -> str:
    """One line: "Pearson r = -0.914 (p = 1e-26), Spearman ρ = -0.880 (p = 3e-20), 78 pairs".

    ``compact`` drops the "entropy vs score" lead and breaks the line after Pearson's r.
    """
    if math.isnan(corr.pearson):
        undefined = f"correlation undefined ({corr.n} scored pairs)"
        return undefined if compact else f"entropy vs score: {undefined}"
    pearson = f"Pearson r = {corr.pearson:.3f} (p = {_p_text(corr.pearson_p)})"
    spearman = f"Spearman ρ = {corr.spearman:.3f} (p = {_p_text(corr.spearman_p)})"
    if compact:
        return f"{pearson}\n{spearman}, {corr.n} pairs"
    return f"entropy vs score: {pearson}, {spearman}, {corr.n} pairs"


def _panel_title(task: str) -> str:
    return "all tasks pooled" if task == POOLED else task_title(task)


def _entropy_legend(tasks: Sequence[str]) -> list:
    """Legend handles: one patch per task's colour and its maximum-entropy line (ln c)."""
    handles: list = [Patch(color=task_colour(t), alpha=0.7, label=task_title(t)) for t in tasks]
    for t in tasks:
        spec = find_task(t)
        if spec is not None:
            label = f"max entropy {task_title(t)} (ln {len(spec.labels)})"
            handles.append(Line2D([], [], ls="--", lw=0.8, color=task_colour(t), label=label))
    return handles


def _entropy_boxes(ax, ent: pd.DataFrame, pairs: pd.DataFrame, task: str) -> None:
    """Box plots of each pair's sentence entropies, in the order of ``pairs`` (by median)."""
    data = [
        ent.loc[(ent["task"] == t) & (ent["lang"] == lang), "entropy"].to_numpy(float)
        for t, lang in zip(pairs["task"], pairs["lang"], strict=True)
    ]
    colours = [task_colour(t) for t in pairs["task"]]
    boxes = ax.boxplot(
        data,
        positions=np.arange(len(pairs)),
        widths=0.6,
        patch_artist=True,
        showfliers=True,
        flierprops={"markersize": 2, "alpha": 0.4},
        medianprops={"color": "black"},
    )
    for patch, colour in zip(boxes["boxes"], colours, strict=True):
        patch.set_facecolor(colour)
        patch.set_alpha(0.7)
    ax.set_xticks(np.arange(len(pairs)), list(pairs["lang"]), fontsize="small")
    for tick, colour in zip(ax.get_xticklabels(), colours, strict=True):
        tick.set_color(colour)
    for t in tasks_in(pairs):
        spec = find_task(t)
        if spec is not None:
            ax.axhline(math.log(len(spec.labels)), ls="--", lw=0.8, color=task_colour(t))
    ax.set_xlim(-0.7, len(pairs) - 0.3)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("held-out language (ordered by median entropy)")
    ax.set_ylabel("sentence entropy (nats)")
    ax.set_title(f"{_panel_title(task)}: predictive entropy per held-out pair", fontsize="medium")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _entropy_scatter(ax, pairs: pd.DataFrame, task: str, corr: Correlation) -> None:
    """Each scored pair's mean entropy against its headline score, with the correlation."""
    scored = pairs.dropna(subset=["score"])
    for t in tasks_in(scored):
        rows = scored[scored["task"] == t]
        x, y = rows["entropy"].to_numpy(float), 100 * rows["score"].to_numpy(float)
        ax.scatter(x, y, s=14, alpha=0.8, color=task_colour(t))
        for xi, yi, lang in zip(x, y, rows["lang"], strict=True):
            ax.annotate(lang, (xi, yi), xytext=(2, 2), textcoords="offset points", fontsize=5)
    ax.set_xlim(left=0)
    ax.set_ylim(0, 100)
    ax.set_xlabel("mean sentence entropy (nats)")
    if task == POOLED:
        ax.set_ylabel("headline score (%)")
    else:
        ax.set_ylabel(_SCORE_TITLE.get(headline_metric(task), "score (%)"))
    ax.set_title(correlation_text(corr, compact=True), fontsize="small")
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)


def figure_entropy(
    sentence_entropy: pd.DataFrame | str | os.PathLike[str],
    results: pd.DataFrame | str | os.PathLike[str],
    path: str | os.PathLike[str],
    model: str = "pf-lr-bma",
    tasks: Sequence[str] | None = None,
) -> EntropyFigure:
    """Fig. 3: per task, then pooled, the pairs' sentence entropies and their link to the score.

    One row per task (and a pooled row when there are several tasks, since POS and NER
    entropies live on different scales): box plots of each pair's sentence entropies ordered by
    median, coloured by task, dashed at the task's maximum entropy (ln of its label count); and
    beside them each pair's mean entropy against its headline score, titled with the Pearson
    and Spearman correlations (p-values) of that row's pairs. Returns the path and the
    correlations.
    """
    ent = _entropy_rows(sentence_entropy, model, tasks)
    pairs, _ = entropy_by_pair(ent, results, model, tasks)
    correlations = entropy_correlations(pairs)
    pairs = pairs.sort_values(["median", "task", "lang"], kind="stable").reset_index(drop=True)
    shown = tasks_in(pairs)
    rows = [(t, pairs[pairs["task"] == t].reset_index(drop=True)) for t in shown]
    if len(shown) > 1:
        rows.append((POOLED, pairs))
    box_width = min(max(6.0, 1.0 + 0.28 * len(pairs)), 24.0)
    fig = _new_figure(box_width + 4.5, 3.4 * len(rows) + 0.8)
    axes = fig.subplots(len(rows), 2, squeeze=False, gridspec_kw={"width_ratios": [box_width, 4.0]})
    for (task, subset), (box_ax, scatter_ax) in zip(rows, axes, strict=True):
        _entropy_boxes(box_ax, ent, subset, task)
        _entropy_scatter(scatter_ax, subset, task, correlations[task])
    fig.legend(
        handles=_entropy_legend(shown), loc="outside lower center", ncols=4, fontsize="small"
    )
    fig.suptitle(
        f"{display_name(model)}: predictive entropy per held-out pair, and its correlation "
        "with the score"
    )
    return EntropyFigure(save_png(fig, path), correlations)


# --- Fig. 4: language posteriors -------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Samples of several languages projected on the principal axes of all of them together."""

    langs: list[str]
    scores: dict[str, np.ndarray]  # lang -> [S, k]
    explained: np.ndarray  # [k] share of the total variance along each axis


def pca_project(
    samples: Mapping[str, np.ndarray], langs: Sequence[str] | None = None, k: int = 4
) -> Projection:
    """Project each language's samples [S, h] on the top ``k`` principal axes (numpy SVD).

    The axes are fitted on the chosen languages' samples stacked together and centred on their
    joint mean, so all languages share one coordinate system.
    """
    langs = list(samples) if langs is None else list(langs)
    if not langs:
        raise PfpyroError("language posteriors: no language to plot")
    unknown = [lang for lang in langs if lang not in samples]
    if unknown:
        raise PfpyroError(
            f"language posteriors: no samples for {', '.join(unknown)}; "
            f"known: {', '.join(map(str, samples))}"
        )
    arrays = {lang: np.asarray(samples[lang], dtype=float) for lang in langs}
    dims = {a.shape[1] for a in arrays.values() if a.ndim == 2}
    bad = [lang for lang, a in arrays.items() if a.ndim != 2 or a.shape[0] < 1]
    if bad or len(dims) != 1:
        shapes = ", ".join(f"{lang}: {arrays[lang].shape}" for lang in langs)
        raise PfpyroError(f"language posteriors: expected arrays [S, h] with one h, found {shapes}")
    stacked = np.concatenate([arrays[lang] for lang in langs])
    centre = stacked.mean(axis=0)
    _, sing, vt = np.linalg.svd(stacked - centre, full_matrices=False)
    k = min(k, vt.shape[0])
    total = float((sing**2).sum())
    explained = sing[:k] ** 2 / total if total > 0 else np.zeros(k)
    scores = {lang: (arrays[lang] - centre) @ vt[:k].T for lang in langs}
    return Projection(langs, scores, explained)


def _density(values: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """Gaussian KDE of ``values`` on ``grid``; None when the values are too few or constant."""
    if len(values) < 2 or np.ptp(values) == 0:
        return None
    try:
        return stats.gaussian_kde(values)(grid)
    except np.linalg.LinAlgError:
        return None


def figure_language_posteriors(
    samples: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    langs: Sequence[str] | None = None,
    k: int = 4,
) -> Path:
    """Fig. 4: posterior samples of l_j, PCA-reduced to ``k`` dimensions; one density per language.

    One panel per principal component; densities are Gaussian KDEs (a histogram where a KDE is
    undefined, e.g. a single sample).
    """
    proj = pca_project(samples, langs, k)
    k = len(proj.explained)
    cols = min(k, 2)
    rows = math.ceil(k / cols)
    fig = _new_figure(5.0 * cols, 3.4 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colours = _colours(len(proj.langs))
    for d in range(k):
        ax = axes[d]
        values = np.concatenate([proj.scores[lang][:, d] for lang in proj.langs])
        lo, hi = float(values.min()), float(values.max())
        pad = 0.1 * (hi - lo) if hi > lo else 1.0
        grid = np.linspace(lo - pad, hi + pad, 256)
        for lang, colour in zip(proj.langs, colours, strict=True):
            column = proj.scores[lang][:, d]
            dens = _density(column, grid)
            if dens is None:
                ax.hist(
                    column,
                    bins=20,
                    range=(grid[0], grid[-1]),
                    density=True,
                    color=colour,
                    alpha=0.5,
                    label=lang,
                )
            else:
                ax.plot(grid, dens, color=colour, label=lang)
                ax.fill_between(grid, dens, color=colour, alpha=0.15)
        ax.set_title(f"PC{d + 1} ({100 * proj.explained[d]:.1f}% of variance)")
        ax.set_xlabel(f"projection on PC{d + 1}")
        ax.set_ylabel("density")
        ax.set_ylim(bottom=0)
    for ax in axes[k:]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        title="language",
        loc="outside right upper",
        fontsize="small",
        ncols=1 + len(proj.langs) // 25,
    )
    fig.suptitle(f"Posterior samples of the language latents, PCA to {k} dimensions")
    return save_png(fig, path)


# --- reliability diagrams --------------------------------------------------------------------


def pool_reliability(
    reliability: pd.DataFrame | str | os.PathLike[str], n_bins: int = 15
) -> pd.DataFrame:
    """Per (model, task, bin): count-weighted mean confidence and accuracy, and the total count.

    Rows already aggregated pass through unchanged; finer rows (per pair, per seed) are pooled.
    Empty bins (count 0, whose confidence and accuracy may be NaN) are dropped.
    """
    frame = as_frame(reliability, "reliability")
    check_columns(frame, RELIABILITY_COLUMNS, "reliability")
    numbers = frame[["bin", "confidence", "accuracy", "count"]].apply(
        pd.to_numeric, errors="coerce"
    )
    if numbers[["bin", "count"]].isna().to_numpy().any():
        raise PfpyroError("reliability: columns bin and count must hold numbers in every row")
    used = numbers["count"] > 0
    if numbers.loc[used, ["confidence", "accuracy"]].isna().to_numpy().any():
        raise PfpyroError("reliability: a bin with a count needs numeric confidence and accuracy")
    if ((numbers["bin"] < 0) | (numbers["bin"] >= n_bins)).any() or (numbers["count"] < 0).any():
        raise PfpyroError(f"reliability: expected bins in 0..{n_bins - 1} and counts >= 0")
    frame, numbers = frame[used], numbers[used]
    frame = frame.assign(
        model=frame["model"].astype(str),
        task=frame["task"].astype(str),
        bin=numbers["bin"].astype(int),
        count=numbers["count"],
        conf_w=numbers["confidence"] * numbers["count"],
        acc_w=numbers["accuracy"] * numbers["count"],
    )
    pooled = frame.groupby(["model", "task", "bin"], as_index=False)[
        ["count", "conf_w", "acc_w"]
    ].sum()
    return pd.DataFrame(
        {
            "model": pooled["model"],
            "task": pooled["task"],
            "bin": pooled["bin"],
            "confidence": pooled["conf_w"] / pooled["count"],
            "accuracy": pooled["acc_w"] / pooled["count"],
            "count": pooled["count"],
        }
    ).reset_index(drop=True)


def figure_reliability(
    reliability: pd.DataFrame | str | os.PathLike[str],
    path: str | os.PathLike[str],
    n_bins: int = 15,
) -> Path:
    """Reliability diagrams: one panel per (task, model), accuracy against confidence per bin.

    Bars span their confidence bin and rise to the bin's accuracy; a hatched bar shows the gap to
    the bin's mean confidence; the diagonal is perfect calibration; the title gives the ECE.
    """
    bins = pool_reliability(reliability, n_bins)
    if bins.empty:
        raise PfpyroError("reliability: no bin holds any prediction")
    tasks = tasks_in(bins)
    models = order_models(bins["model"])
    fig = _new_figure(2.9 * len(models) + 0.5, 3.0 * len(tasks) + 0.4)
    axes = fig.subplots(len(tasks), len(models), squeeze=False, sharex=True, sharey=True)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    for r, task in enumerate(tasks):
        for c, model in enumerate(models):
            ax = axes[r, c]
            cell = bins[(bins["task"] == task) & (bins["model"] == model)]
            ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=0.8, label="perfect calibration")
            if cell.empty:
                ax.set_title(f"{display_name(model)} · {task_title(task)}: not run")
            else:
                left = edges[cell["bin"].to_numpy()]
                width = np.diff(edges)[cell["bin"].to_numpy()]
                acc = cell["accuracy"].to_numpy()
                conf = cell["confidence"].to_numpy()
                ax.bar(
                    left,
                    acc,
                    width,
                    align="edge",
                    color="tab:blue",
                    edgecolor="white",
                    lw=0.5,
                    label="accuracy",
                )
                ax.bar(
                    left,
                    conf - acc,
                    width,
                    bottom=acc,
                    align="edge",
                    color="none",
                    edgecolor="tab:red",
                    hatch="//",
                    lw=0.6,
                    label="gap to confidence",
                )
                ece = 100 * ece_from_bins(cell["count"], conf, acc)
                ax.set_title(
                    f"{display_name(model)} · {task_title(task)}: ECE {ece:.2f}%",
                    fontsize="medium",
                )
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_aspect("equal")
            if r == len(tasks) - 1:
                ax.set_xlabel("confidence")
            if c == 0:
                ax.set_ylabel("accuracy")
    handles = [
        Line2D([], [], ls="--", color="gray", lw=0.8, label="perfect calibration"),
        Patch(facecolor="tab:blue", label="accuracy per bin"),
        Patch(facecolor="none", edgecolor="tab:red", hatch="//", label="gap to mean confidence"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize="small")
    fig.suptitle(f"Reliability diagrams ({n_bins} confidence bins)")
    return save_png(fig, path)


# --- few-shot learning curves ----------------------------------------------------------------


def figure_fewshot(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Learning curves of the unseen pairs: the mean headline score over the held-out pairs of
    each task (one panel per task) against k, the labelled sentences each pair got, one line
    per model. ``frame`` has columns model, k, task, lang, score (points)."""
    tasks = sorted(frame["task"].unique())
    if not tasks:
        raise PfpyroError("no few-shot scores to draw")
    fig = _new_figure(4.2 * len(tasks), 3.4)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    models = order_models(frame["model"].unique())
    for ax, task in zip(axes, tasks, strict=True):
        for model, colour in zip(models, _colours(len(models)), strict=True):
            rows = frame[(frame["task"] == task) & (frame["model"] == model)]
            curve = rows.groupby("k")["score"].agg(["mean", "std", "count"]).sort_index()
            ax.errorbar(curve.index, curve["mean"], yerr=curve["std"] / np.sqrt(curve["count"]),
                        marker="o", capsize=3, color=colour, label=display_name(model))  # fmt: skip
        ax.set_xlabel("k labelled sentences of the unseen pair")
        ax.set_ylabel(_SCORE_TITLE.get(headline_metric(task), "score (%)"))
        ax.set_title(f"{task.upper()}: {frame[frame['task'] == task]['lang'].nunique()} pairs")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return save_png(fig, path)


# --- all of them --------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureSet:
    """What :func:`write_figures` wrote, and Fig. 3's correlations when it was drawn.

    ``entropy_correlation`` is the pooled one; ``entropy_correlations`` adds one per task.
    """

    paths: list[Path]
    entropy_correlation: Correlation | None = None
    entropy_correlations: dict[str, Correlation] | None = None


def write_figures(
    out_dir: str | os.PathLike[str],
    results: pd.DataFrame | str | os.PathLike[str] | None = None,
    sentence_entropy: pd.DataFrame | str | os.PathLike[str] | None = None,
    reliability: pd.DataFrame | str | os.PathLike[str] | None = None,
    posterior_samples: Mapping[str, np.ndarray] | None = None,
    entropy_model: str = "pf-lr-bma",
    posterior_langs: Sequence[str] | None = None,
) -> FigureSet:
    """Write every figure whose inputs are given into ``out_dir``.

    fig2_<task>.png per task in ``results``; fig3_entropy.png (needs results and sentence
    entropy); fig4_language_posteriors.png; reliability.png.
    """
    out = Path(out_dir)
    paths: list[Path] = []
    fig3 = None
    if results is not None:
        frame = check_results(results)
        for task in tasks_in(frame):
            paths.append(figure_per_language(frame, task, out / f"fig2_{task}.png"))
        if sentence_entropy is not None:
            fig3 = figure_entropy(
                sentence_entropy, frame, out / "fig3_entropy.png", model=entropy_model
            )
            paths.append(fig3.path)
    if posterior_samples is not None:
        paths.append(
            figure_language_posteriors(
                posterior_samples, out / "fig4_language_posteriors.png", posterior_langs
            )
        )
    if reliability is not None:
        paths.append(figure_reliability(reliability, out / "reliability.png"))
    if fig3 is None:
        return FigureSet(paths)
    return FigureSet(paths, fig3.correlation, fig3.correlations)

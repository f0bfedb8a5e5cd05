"""The paper's tables (Table 1, Table 2, per-pair scores) from the runner's long result frames.

A result frame has one row per model × partition × seed × task–language pair × metric, with the
columns of :data:`RESULT_COLUMNS`; values are fractions in [0, 1]. Every table here follows one
recipe (docs/design.md §7): average the headline metric over the held-out pairs within each
seed, then report the mean ± std over seeds. Partitions are pooled, since across the two paper
partitions each pair is held out exactly once (a pair scored in several partitions counts once,
averaged).

Tables are DataFrames of fractions with two-level columns ``(label, stat)``, where ``stat`` is
``mean``, ``std`` (over seeds, ``ddof=0``, so a single seed gives 0) and ``seeds`` (how many
seeds the cell rests on). A combination that was never run is NaN there and blank in Markdown,
where numbers are percentages with two decimals ("71.23 ± 0.45").
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pfpyro.atomic import atomic_write_text
from pfpyro.data.tasks import find_task, task_order
from pfpyro.errors import DataFormatError, PfpyroError
from pfpyro.evaluate.scoring import headline_metric
from pfpyro.report.markdown import markdown_table

RESULT_COLUMNS: tuple[str, ...] = ("model", "partition", "seed", "task", "lang", "metric", "value")

# The baselines first, then the two guides of the factorization (the paper's Table 1 order,
# with the weakest single-source baseline first); any other model follows alphabetically.
MODEL_ORDER: tuple[str, ...] = ("ns", "ls", "bea", "jm", "pf-d", "pf-lr", "pf")

# A table column's label after the task's short name ("POS acc", "NER F1 (valid BIO)").
_COLUMN_LABEL = {
    "accuracy": "acc",
    "span_f1": "F1",
    "span_f1_valid": "F1 (valid BIO)",
    "token_f1": "token F1",
    "score": "score",
}

# Metrics added after the first results were written: their columns show only when some
# result has them, so older result files give the tables they always gave.
OPTIONAL_METRICS: frozenset[str] = frozenset({"span_f1_valid"})

# (metric, label) of the calibration table, per task: ECE is a fraction, NLL nats per word.
CALIBRATION_METRICS: tuple[tuple[str, str], ...] = (("ece", "ECE"), ("nll", "NLL"))

# A model's Bayesian-model-averaging twin is reported as ``<model>-bma`` (the runner's naming).
BMA_SUFFIX = "-bma"

STATS: tuple[str, ...] = ("mean", "std", "seeds")

_DISPLAY = {"ns": "NS", "ls": "LS", "bea": "BEA", "jm": "JM", "pf-d": "PF-d", "pf-lr": "PF-lr",
            "pf": "PF"}  # fmt: skip


def display_name(model: str) -> str:
    """The paper's spelling of a model name ("pf-lr" → "PF-lr", "pf-lr-bma" → "PF-lr-bma")."""
    for key in sorted(_DISPLAY, key=len, reverse=True):
        if model == key or model.startswith(key + "-"):
            return _DISPLAY[key] + model[len(key) :]
    return model


def order_models(models: Iterable[str]) -> list[str]:
    """Distinct ``models`` in the canonical order of :data:`MODEL_ORDER`, then the rest sorted."""
    distinct = set(models)
    known = [m for m in MODEL_ORDER if m in distinct]
    return known + sorted(distinct - set(MODEL_ORDER))


def task_headlines(task: str) -> list[tuple[str, str, str]]:
    """(task, metric, column label) of a task's columns in Table 1: its headline metric, and
    for an IOB2 span task also the span F1 of the valid (constrained Viterbi) decoding and the
    token F1 that the paper's NER numbers correspond to."""
    spec = find_task(task)
    short = spec.abbreviation if spec is not None else task
    metrics = [headline_metric(task)]
    if spec is not None and spec.spans:
        metrics += ["span_f1_valid", "token_f1"]
    return [(task, m, f"{short} {_COLUMN_LABEL.get(m, m)}") for m in metrics]


def check_columns(frame: pd.DataFrame, required: Sequence[str], what: str) -> None:
    """Raise a PfpyroError naming every column of ``required`` that ``frame`` lacks."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PfpyroError(
            f"{what} lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(required)}, found {', '.join(map(str, frame.columns)) or 'none'}"
        )


def as_frame(source: pd.DataFrame | str | os.PathLike[str], what: str) -> pd.DataFrame:
    """A DataFrame as given, or read from a CSV path (a missing file is a PfpyroError)."""
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if not path.is_file():
        raise PfpyroError(f"{path}: {what} file not found")
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])  # "nan" may be a lang
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise PfpyroError(f"{path}: expected a CSV {what} file ({err})") from None


def check_results(results: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    """The result frame with its columns checked and ``value`` made numeric."""
    frame = as_frame(results, "results")
    check_columns(frame, RESULT_COLUMNS, "results")
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = values.isna() & frame["value"].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        found = frame["value"].iloc[row]
        if isinstance(results, pd.DataFrame):
            raise PfpyroError(
                f"results: column value must be numeric, found {found!r} in row {row}"
            )
        # the CSV's line: a header line, then 1-based rows
        raise DataFormatError(results, row + 2, "a number in column value", str(found))
    frame = frame.copy()
    frame["value"] = values
    return frame


def headlines(*frames: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The :func:`task_headlines` of the frames' tasks, but the optional metrics that no frame
    holds."""
    present = set().union(*(set(frame["metric"].astype(str)) for frame in frames))
    tasks = task_order(set().union(*(tasks_in(frame) for frame in frames)))
    rows = [h for task in tasks for h in task_headlines(task)]
    return [h for h in rows if h[1] not in OPTIONAL_METRICS or h[1] in present]


def tasks_in(frame: pd.DataFrame) -> list[str]:
    """The tasks of a frame in :func:`~pfpyro.data.tasks.task_order` (POS, NER, ...)."""
    return task_order(set(frame["task"].astype(str)) - {"all"})


def task_title(task: str, *, short: bool = False) -> str:
    """A task's display name ("POS tagging"), or its short one ("POS")."""
    spec = find_task(task)
    if spec is None:
        return task
    return spec.abbreviation if short else spec.title


def task_colour(task: str) -> str:
    """A task's colour in figures (its description's)."""
    spec = find_task(task)
    return spec.colour if spec is not None else "tab:gray"


def _pair_scores(results: pd.DataFrame) -> pd.DataFrame:
    """One score per (model, seed, task, lang, metric): partitions pooled, NaNs dropped."""
    rows = results.dropna(subset=["value"])
    keys = ["model", "seed", "task", "lang", "metric"]
    return rows.groupby(keys, as_index=False, sort=False)["value"].mean()


def _over_seeds(per_seed: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean, std (ddof=0) and count over seeds of ``value``, per ``keys``."""
    grouped = per_seed.groupby(keys, sort=False)["value"]
    out = pd.DataFrame(
        {"mean": grouped.mean(), "std": grouped.std(ddof=0), "seeds": grouped.count()}
    )
    return out.reset_index()


def _empty_table(index: Sequence[str], labels: Sequence[str], index_name: str) -> pd.DataFrame:
    columns = pd.MultiIndex.from_product([list(labels), list(STATS)], names=["column", "stat"])
    frame = pd.DataFrame(np.nan, index=pd.Index(list(index), name=index_name), columns=columns)
    return frame.astype({(label, "seeds"): "Int64" for label in labels})


def _fill(table: pd.DataFrame, row: str, label: str, stats: Mapping[str, float]) -> None:
    for stat in STATS:
        table.loc[row, (label, stat)] = stats[stat]


def _fill_models(
    table: pd.DataFrame, scores: pd.DataFrame, task: str, metric: str, label: str
) -> None:
    """Fill column ``label`` with ``task``'s ``metric``: pairs averaged per seed, then seeds.

    Rows are models; the recipe is Table 1's (module docstring).
    """
    chosen = scores[(scores["task"] == task) & (scores["metric"] == metric)]
    per_seed = chosen.groupby(["model", "seed"], as_index=False)["value"].mean()
    for _, stat in _over_seeds(per_seed, ["model"]).iterrows():
        if stat["model"] in table.index:
            _fill(table, stat["model"], label, stat)


def table1(
    results: pd.DataFrame | str | os.PathLike[str], models: Sequence[str] | None = None
) -> pd.DataFrame:
    """The paper's Table 1: per model, each task's headline score averaged over held-out pairs.

    Rows are models (canonical order, or ``models`` as given), columns ``(label, stat)`` for the
    labels of :func:`headlines` (an optional metric only when the results hold it). A value is
    the mean over pairs within a (model, seed), then the mean and std over seeds.
    """
    frame = check_results(results)
    rows = order_models(frame["model"]) if models is None else list(models)
    shown = headlines(frame)
    table = _empty_table(rows, [label for _, _, label in shown], "model")
    scores = _pair_scores(frame)
    for task, metric, label in shown:
        _fill_models(table, scores, task, metric, label)
    return table


def averaging_twins(models: Iterable[str]) -> list[str]:
    """Each plug-in model that has a model-averaging twin, followed by that twin (``-bma``)."""
    distinct = set(models)
    plugin = [m for m in order_models(distinct) if m + BMA_SUFFIX in distinct]
    return [name for m in plugin for name in (m, m + BMA_SUFFIX)]


def calibration_table(
    results: pd.DataFrame | str | os.PathLike[str], models: Sequence[str] | None = None
) -> pd.DataFrame:
    """Calibration of model averaging vs the plug-in posterior mean: ECE and NLL per task.

    Rows default to :func:`averaging_twins` (e.g. pf-lr, pf-lr-bma); columns are
    ``("POS ECE", stat)``, ``("POS NLL", stat)``, ... for the tasks in the results. Values
    follow Table 1's recipe: mean over held-out pairs within a seed, then mean ± std over seeds.
    """
    frame = check_results(results)
    rows = averaging_twins(frame["model"]) if models is None else list(models)
    columns = [
        (task, metric, f"{task.upper()} {name}")
        for task in tasks_in(frame)
        for metric, name in CALIBRATION_METRICS
    ]
    table = _empty_table(rows, [label for _, _, label in columns], "model")
    scores = _pair_scores(frame)
    for task, metric, label in columns:
        _fill_models(table, scores, task, metric, label)
    return table


def per_pair_table(
    results: pd.DataFrame | str | os.PathLike[str],
    task: str,
    metric: str | None = None,
    models: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per held-out language of ``task``, every model's score: mean ± std over seeds.

    Rows are languages (sorted codes), columns ``(model, stat)``; ``metric`` defaults to the
    task's headline metric.
    """
    frame = check_results(results)
    metric = metric or headline_metric(task)
    scores = _pair_scores(frame)
    chosen = scores[(scores["task"] == task) & (scores["metric"] == metric)]
    if models is None:
        models = order_models(chosen["model"]) if len(chosen) else order_models(frame["model"])
    langs = sorted(chosen["lang"].astype(str).unique())
    table = _empty_table(langs, list(models), "lang")
    for _, stat in _over_seeds(chosen, ["lang", "model"]).iterrows():
        if stat["model"] in set(models):
            _fill(table, str(stat["lang"]), stat["model"], stat)
    return table


def table2(
    results_by_subset: Mapping[str, pd.DataFrame | str | os.PathLike[str]],
    model: str = "pf-lr",
) -> pd.DataFrame:
    """The paper's Table 2: ``model``'s headline scores per language subset.

    ``results_by_subset`` maps a column name (e.g. "|L|=11 Sim") to that subset's result frame;
    columns keep the mapping's order. Rows are the labels of :func:`headlines`; columns
    ``(subset, stat)``.
    """
    frames = {subset: check_results(results) for subset, results in results_by_subset.items()}
    shown = headlines(*frames.values())
    table = _empty_table([label for _, _, label in shown], list(frames), "metric")
    for subset, frame in frames.items():
        scores = _pair_scores(frame[frame["model"] == model])
        for task, metric, label in shown:
            chosen = scores[(scores["task"] == task) & (scores["metric"] == metric)]
            if chosen.empty:
                continue
            per_seed = chosen.groupby("seed", as_index=False)["value"].mean()
            per_seed["model"] = model
            stat = _over_seeds(per_seed, ["model"]).iloc[0]
            _fill(table, label, subset, stat)
    return table


def format_cell(mean: float, std: float, *, percent: bool = True) -> str:
    """A fraction's mean ± std as percentages with two decimals; blank when there is no value.

    With ``percent=False`` (quantities that are not fractions, e.g. NLL in nats) the numbers
    are shown as they are, with three decimals.
    """
    if mean is None or pd.isna(mean):
        return ""
    scale, digits = (100.0, 2) if percent else (1.0, 3)
    text = f"{scale * float(mean):.{digits}f}"
    if std is not None and not pd.isna(std):
        text += f" ± {scale * float(std):.{digits}f}"
    return text


def _markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A padded pipe table: first column left-aligned (names), the others right-aligned."""
    return markdown_table(header, body, align="l" + "r" * (len(header) - 1), pad=True)


def table_markdown(
    table: pd.DataFrame,
    corner: str | None = None,
    names: Mapping[str, str] | None = None,
    plain: Collection[str] = (),
) -> str:
    """Any table of this module as a Markdown pipe table of "mean ± std" percentages.

    ``names`` renames row and column labels (e.g. model codes to display names); columns
    labelled in ``plain`` are not fractions and are shown unscaled (:func:`format_cell`).
    """
    names = dict(names or {})
    labels = list(dict.fromkeys(table.columns.get_level_values(0)))
    header = [corner if corner is not None else str(table.index.name or "")]
    header += [names.get(str(label), str(label)) for label in labels]
    body = []
    for row in table.index:
        cells = [names.get(str(row), str(row))]
        cells += [
            format_cell(
                table.loc[row, (lab, "mean")],
                table.loc[row, (lab, "std")],
                percent=str(lab) not in plain,
            )
            for lab in labels
        ]
        body.append(cells)
    return _markdown(header, body)


def _model_names(models: Iterable[str]) -> dict[str, str]:
    return {m: display_name(m) for m in models}


def table1_markdown(table: pd.DataFrame) -> str:
    """Table 1 as Markdown: one row per model (paper spelling), "71.23 ± 0.45" cells."""
    return table_markdown(table, corner="Model", names=_model_names(table.index))


def calibration_markdown(table: pd.DataFrame) -> str:
    """The calibration table as Markdown: ECE in %, NLL in nats per word."""
    labels = table.columns.get_level_values(0)
    nll = {str(label) for label in labels if str(label).endswith(" NLL")}
    return table_markdown(table, corner="Model", names=_model_names(table.index), plain=nll)


def per_pair_markdown(table: pd.DataFrame) -> str:
    """A per-pair table as Markdown: one row per language, one column per model."""
    models = table.columns.get_level_values(0)
    return table_markdown(table, corner="Lang", names=_model_names(models))


def table2_markdown(table: pd.DataFrame) -> str:
    """Table 2 as Markdown: one row per task metric, one column per language subset."""
    return table_markdown(table, corner="Task")


def flat_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The table with one-level columns "label mean", "label std", "label seeds" (for CSV)."""
    flat = table.copy()
    flat.columns = [f"{label} {stat}" for label, stat in table.columns]
    return flat


_METRIC_TITLE = {
    "accuracy": "accuracy",
    "span_f1": "span F1",
    "span_f1_valid": "span F1 of the valid-BIO decoding",
    "token_f1": "token F1",
}


def _per_pair_document(results: pd.DataFrame, task: str) -> str:
    metrics = [metric for t, metric, _ in headlines(results) if t == task]
    metrics = metrics or [headline_metric(task)]
    parts = []
    for metric in metrics:
        table = per_pair_table(results, task, metric)
        if table.empty:
            continue
        title = f"{task_title(task, short=True)} {_METRIC_TITLE.get(metric, metric)}"
        parts.append(
            f"## {title} (%) per held-out language, mean ± std over seeds\n\n"
            + per_pair_markdown(table)
        )
    return "\n".join(parts)


def write_tables(
    results: pd.DataFrame | str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Write table1.md, table1.csv and per_pair_<task>.md (tasks with results) into ``out_dir``.

    Each file is written atomically; the CSV keeps fractions, the Markdown shows percentages.
    Returns the paths written, in that order.
    """
    frame = check_results(results)
    out = Path(out_dir)
    table = table1(frame)
    heading = "# Table 1: headline scores (%) averaged over held-out pairs, mean ± std over seeds"
    written = [
        atomic_write_text(out / "table1.md", f"{heading}\n\n{table1_markdown(table)}"),
        atomic_write_text(out / "table1.csv", flat_columns(table).to_csv(float_format="%.6g")),
    ]
    for task in tasks_in(frame):
        document = _per_pair_document(frame, task)
        if document:
            written.append(atomic_write_text(out / f"per_pair_{task}.md", document))
    return written


def write_calibration(
    results: pd.DataFrame | str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Write calibration.md and calibration.csv (plug-in vs model averaging) into ``out_dir``.

    Nothing is written (and ``[]`` returned) when no model has a model-averaging twin.
    """
    table = calibration_table(check_results(results))
    if table.empty:
        return []
    out = Path(out_dir)
    heading = (
        "# Calibration: plug-in posterior mean vs model averaging (-bma), per task\n\n"
        "ECE (%, 15 bins) and NLL (nats per word), averaged over held-out pairs, "
        "mean ± std over seeds; lower is better."
    )
    return [
        atomic_write_text(out / "calibration.md", f"{heading}\n\n{calibration_markdown(table)}"),
        atomic_write_text(out / "calibration.csv", flat_columns(table).to_csv(float_format="%.6g")),
    ]

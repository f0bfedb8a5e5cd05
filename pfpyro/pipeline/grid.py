"""``pfpyro experiment CONFIG``: the paper's grid, end to end, resumable.

For each partition and seed: encode (cached), train every model the config names
(:mod:`pfpyro.pipeline.fit`), score each held-out pair's test data, and write one CSV per
(partition, seed, model) unit. A unit whose CSV exists is not run again, so a stopped
experiment resumes where it stopped. At the end the units are gathered into ``results.csv``,
Table 1, per-pair tables and the figures (:mod:`pfpyro.report`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pfpyro.atomic import atomic_write_text
from pfpyro.config import ExperimentConfig
from pfpyro.data.batch import PairTensors
from pfpyro.data.partition import Partition
from pfpyro.encode.store import FeatureStore
from pfpyro.errors import ConfigError
from pfpyro.evaluate import reliability_diagram, score_pair, sentence_entropy
from pfpyro.pipeline.fit import fit_predictors, predict_probs
from pfpyro.pipeline.setup import Setup, prepare, run_record, same_config
from pfpyro.predictor import TokenPredictor

log = logging.getLogger(__name__)

# The paper's Fig. 4 shows four languages' posteriors; these four are in every paper config.
FIG4_LANGUAGES = ("wo", "yo", "ta", "te")

UNIT_COLUMNS = ["model", "partition", "seed", "task", "lang", "metric", "value"]


def units(setup: Setup) -> Iterator[tuple[str, Partition, int, str]]:
    """Every (partition name, partition, seed, model) of the grid, in run order: seed by seed,
    so that a grid stopped part way holds every partition and model of its first seeds."""
    for seed in setup.config.seeds:
        for name, partition in setup.partitions:
            for model in setup.config.models:
                yield name, partition, seed, model


def unit_path(out_dir: Path, partition: str, seed: int, model: str) -> Path:
    """The unit's result file, whose presence marks it done."""
    return out_dir / "units" / f"{partition}_seed{seed}_{model}.csv"


def run_unit(setup: Setup, partition_name: str, partition: Partition, seed: int, model: str):
    """Train one model for one partition and seed; score every held-out pair."""
    started = time.perf_counter()
    fitted = fit_predictors(setup, partition_name, partition, seed, model)
    rows, entropy_rows, reliability_rows = [], [], []
    for task, lang, name, probs, tensors in heldout_predictions(
        setup.store, partition, fitted.predictors
    ):
        scores = score_pair(task, probs, tensors.labels, tensors.mask)
        rows += [(name, partition_name, seed, task, lang, k, float(v)) for k, v in scores.items()]
        bins = reliability_diagram(probs, tensors.labels, tensors.mask)
        for b in range(len(bins.count)):
            reliability_rows.append(
                (name, task, b, bins.confidence[b], bins.accuracy[b], int(bins.count[b]))
            )
        entropy = sentence_entropy(probs, tensors.mask).numpy()
        cap = setup.config.predict.entropy_sentences
        for k, value in enumerate(entropy[:cap] if cap else entropy):
            entropy_rows.append((name, partition_name, seed, task, lang, k, float(value)))
    elapsed = time.perf_counter() - started
    rows.append((model, partition_name, seed, "all", "all", "seconds", elapsed))
    for metric in ("selected", "epochs", "validation", "validation_se", "offset_scale"):
        if getattr(fitted, metric) is not None:
            rows.append(
                (model, partition_name, seed, "all", "all", metric, getattr(fitted, metric))
            )
    for task, chosen in fitted.per_task.items():  # selection.per_task: "epochs:pos", ...
        for metric, value in chosen.items():
            if value is not None:
                rows.append((model, partition_name, seed, "all", "all", f"{metric}:{task}", value))
    out = setup.out_dir
    stem = f"{partition_name}_seed{seed}_{model}"
    ent = pd.DataFrame(entropy_rows, columns=[*UNIT_COLUMNS[:5], "sentence", "entropy"])
    atomic_write_text(out / "units" / "entropy" / f"{stem}.csv", ent.to_csv(index=False))
    rel = pd.DataFrame(
        reliability_rows, columns=["model", "task", "bin", "confidence", "accuracy", "count"]
    )
    atomic_write_text(out / "units" / "reliability" / f"{stem}.csv", rel.to_csv(index=False))
    # The unit's result file is written last: its presence marks the unit done.
    frame = pd.DataFrame(rows, columns=UNIT_COLUMNS)
    atomic_write_text(unit_path(out, partition_name, seed, model), frame.to_csv(index=False))
    return frame


def heldout_predictions(
    store: FeatureStore, partition: Partition, predictors: dict[str, TokenPredictor]
) -> Iterator[tuple[str, str, str, torch.Tensor, PairTensors]]:
    """``(task, lang, predictor name, probs, test tensors)`` for each held-out pair with test
    data and each predictor: the final test, read here and nowhere before."""
    for task, lang in partition.heldout:
        test = store.get(task, lang, "test", "heldout")
        if test is None:
            log.warning("no test data for held-out pair (%s, %s); not scored", task, lang)
            continue
        tensors = test.tensors
        features = tensors.inputs
        for name, predictor in predictors.items():
            probs = predict_probs(predictor, task, lang, features, tensors.mask)
            yield task, lang, name, probs, tensors


def gather(out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All finished units' results, sentence entropies and reliability bins."""
    units_dir = out_dir / "units"

    def read_all(folder: Path) -> pd.DataFrame:
        frames = [pd.read_csv(p) for p in sorted(folder.glob("*.csv")) if p.stat().st_size > 0]
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return read_all(units_dir), read_all(units_dir / "entropy"), read_all(units_dir / "reliability")


def language_samples(out_dir: Path) -> dict[str, np.ndarray] | None:
    """The q(l_j) draws a run saved for Fig. 4, by language (None when it saved none)."""
    path = out_dir / "language_samples.npz"
    if not path.exists():
        return None
    with np.load(path) as data:
        return {lang: data[lang] for lang in data.files}


def write_reports(out_dir: Path, config: ExperimentConfig) -> list[Path]:
    """results.csv, tables (Table 1, per pair, calibration) and figures
    (:func:`pfpyro.report.write_figures`) from the finished units."""
    from pfpyro.report import write_calibration, write_figures, write_tables

    results, entropy, reliability = gather(out_dir)
    scored = results[results["task"] != "all"]
    written = []
    path = out_dir / "results.csv"
    atomic_write_text(path, results.to_csv(index=False))
    written.append(path)
    written += write_tables(scored, out_dir)
    written += write_calibration(scored, out_dir)
    # Fig. 3's model: PF-lr's model averaging as in the paper, else another PF model's.
    entropy_model = next((f"{m}-bma" for m in ("pf-lr", "pf-d", "pf") if m in config.models), None)
    samples = language_samples(out_dir)
    shown = [lang for lang in FIG4_LANGUAGES if samples and lang in samples] or None
    figures = write_figures(
        out_dir,
        results=scored,
        sentence_entropy=entropy if entropy_model and not entropy.empty else None,
        reliability=reliability if not reliability.empty else None,
        posterior_samples=samples,
        entropy_model=entropy_model or "pf-lr-bma",
        posterior_langs=shown,
    )
    written += figures.paths
    if figures.entropy_correlations is not None:
        # {"pooled": {...}, "pos": {...}, "ner": {...}}: POS and NER entropies differ in scale.
        correlations = {
            key: dataclasses.asdict(c) for key, c in figures.entropy_correlations.items()
        }
        path = out_dir / "entropy_correlation.json"
        atomic_write_text(path, json.dumps(correlations, indent=2, default=float))
        written.append(path)
    return written


def recorded_config_matches(run_json: Path, record: dict) -> bool:
    """Whether the run.json at ``run_json`` records the config of ``record``."""
    old = json.loads(run_json.read_text(encoding="utf-8"))
    return same_config(old.get("config", {}), record["config"])


def units_from_results(setup: Setup, results_csv: Path, record: dict) -> int:
    """Mark the units of a finished grid's ``results.csv`` (a committed one, say) done in
    ``setup.out_dir``: each (partition, seed, model) of this grid found there gets its unit
    file, unless it has one already. The folder's ``run.json`` must hold this grid's config.
    Returns how many units were written. Their sentence entropies and reliability bins are not
    in ``results.csv``, so Fig. 3 and ``reliability.png`` cover only the units run here (the
    calibration tables read ``results.csv``, so all of them)."""
    results_csv = Path(results_csv)
    recorded = results_csv.parent / "run.json"
    if not recorded.exists():
        raise ConfigError(f"{results_csv}: no run.json beside it to say which config made it")
    if not recorded_config_matches(recorded, record):
        raise ConfigError(f"{recorded}: a run of another config; its units cannot resume this one")
    try:
        frame = pd.read_csv(results_csv)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{results_csv}: not a results table ({error})") from None
    if list(frame.columns) != UNIT_COLUMNS:
        raise ConfigError(
            f"{results_csv}, line 1: expected the columns {','.join(UNIT_COLUMNS)}, got "
            f"{','.join(map(str, frame.columns))}"
        )
    models = set(setup.config.models)
    # A unit's file holds its model's rows and its model-averaged ("-bma") predictor's.
    unit_model = frame["model"].where(
        frame["model"].isin(models), frame["model"].str.removesuffix("-bma")
    )
    written = 0
    for name, _, seed, model in units(setup):
        rows = frame[(unit_model == model) & (frame["partition"] == name) & (frame["seed"] == seed)]
        path = unit_path(setup.out_dir, name, seed, model)
        if rows.empty or path.exists():
            continue
        atomic_write_text(path, rows.to_csv(index=False))
        written += 1
    return written


def run_experiment(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    data: str | None = None,
    progress: bool = True,
    resume_from: str | Path | None = None,
) -> str:
    """Run every unfinished unit of the grid, then write the reports; returns Table 1.
    ``resume_from``: a finished grid's ``results.csv`` whose units count as done
    (:func:`units_from_results`)."""
    from pfpyro.report import table1, table1_markdown

    out_dir = Path(out_dir)
    if "seed" in config.train:
        log.warning(
            "%s: train.seed is ignored by an experiment, which runs each of seeds %s",
            config.source or "config",
            config.seeds,
        )
    setup = prepare(config, out_dir, data=data, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = run_record(setup)
    previous = out_dir / "run.json"
    if previous.exists() and not recorded_config_matches(previous, record):
        raise ConfigError(
            f"{out_dir} holds a run of another config; use a new --out or delete the folder"
        )
    if resume_from is not None:  # checked before anything is written
        count = units_from_results(setup, Path(resume_from), record)
        log.info("%d units taken from %s", count, resume_from)
        if progress:
            print(f"{count} units taken from {resume_from}", flush=True)
    atomic_write_text(previous, json.dumps(record, indent=2))
    todo = [u for u in units(setup) if not unit_path(out_dir, u[0], u[2], u[3]).exists()]
    log.info("%d of %d units to run", len(todo), len(list(units(setup))))
    for k, (name, partition, seed, model) in enumerate(todo, 1):
        if progress:
            print(f"[{k}/{len(todo)}] {model} on {name}, seed {seed}", flush=True)
        run_unit(setup, name, partition, seed, model)
    write_reports(out_dir, config)
    results, _, _ = gather(out_dir)
    return table1_markdown(table1(results[results["task"] != "all"]))


__all__ = [
    "FIG4_LANGUAGES",
    "UNIT_COLUMNS",
    "gather",
    "heldout_predictions",
    "language_samples",
    "run_experiment",
    "run_unit",
    "unit_path",
    "units",
    "units_from_results",
    "write_reports",
]

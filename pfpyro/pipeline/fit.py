"""Fitting a unit's models: the PF model and the baselines, each trained for the length its
selection rule chooses (an SVI step count, an epoch count), on the data the partition lets
it read.

Every command that trains a model of a config trains it here, the one way: ``pfpyro
experiment`` (:mod:`pfpyro.pipeline.grid`), ``pfpyro train``, ``pfpyro fewshot``. What a
component needs from the run (a language table, the source language's data) it declares
(:mod:`pfpyro.model.capabilities`); this module supplies it without knowing any by name.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pfpyro.atomic import atomic_write
from pfpyro.baselines import baseline_class, fit_baseline
from pfpyro.baselines.ls import source_capped
from pfpyro.config import (
    COMPONENT_KINDS,
    PF_GUIDES,
    PF_MODELS,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
)
from pfpyro.data.batch import PairTensors
from pfpyro.data.catalog import Catalog
from pfpyro.data.pairs import Pair
from pfpyro.data.partition import Partition
from pfpyro.data.uriel import uriel_similarity
from pfpyro.encode.store import ALL
from pfpyro.errors import ConfigError
from pfpyro.evaluate import headline_score
from pfpyro.infer import PFPredictor, TrainResult, train
from pfpyro.model.anchor import start_at_joint_classifier
from pfpyro.model.capabilities import declares
from pfpyro.model.registry import lookup
from pfpyro.pipeline.setup import Setup, validation_split
from pfpyro.predictor import TaskRouter, TokenPredictor

log = logging.getLogger(__name__)


# -- what the components need from the run ------------------------------------------------------
def with_language_data(model: ModelConfig, langs: list[str], catalog: Catalog) -> ModelConfig:
    """``model`` itself, or, for each component that declares ``needs_language_table`` (the
    typology prior), with the arguments its ``complete_args`` derives for ``langs`` from the
    catalog's language table (the URIEL vectors, which then travel in model.json)."""
    for kind in COMPONENT_KINDS:
        name, args = model.component(kind)
        factory = lookup(kind, name)
        if not declares(factory, "needs_language_table"):
            continue
        completed = factory.complete_args(args, langs, catalog.language_table)
        if completed != args:
            model = model.with_component(kind, name, **completed)
    return model


def pf_model_config(config: ExperimentConfig, model: str) -> ModelConfig:
    """The architecture a PF unit trains: the config's ``model:`` section, with the guide
    that ``pf-d`` and ``pf-lr`` name (PF-lr keeps the section's rank); ``pf`` takes the
    section's own guide, a registered extension included."""
    if model not in PF_GUIDES:
        return config.model
    return config.model.with_guide(PF_GUIDES[model])


def catalog_similarity(catalog: Catalog) -> Callable[[str, str], float]:
    """URIEL similarity, with each language's code from ``catalog`` (for a baseline that
    declares ``needs_language_table``)."""
    return functools.partial(uriel_similarity, languages=catalog.language_table)


def source_tensors(setup: Setup, train_tensors: dict[Pair, PairTensors]) -> dict[Pair, PairTensors]:
    """The source language's training tensors per task (for a baseline that declares
    ``needs_source_data``: LS). The paper's cap (footnote 12) is applied here and only here:
    a task whose description says ``source_cap`` (NER) gets as many source sentences as all
    seen languages of the task together; the others (POS) get the whole split."""
    source = setup.config.data.source_language
    out = {}
    for task in setup.catalog.tasks():
        total = sum(len(t) for (tk, _), t in train_tensors.items() if tk == task)
        if not total:
            continue
        cap = total if source_capped(task) else ALL
        data = setup.store.get(task, source, "train", "seen", cap=cap)
        if data is not None:
            out[task, source] = data.tensors
    return out


# -- a unit's data ------------------------------------------------------------------------------
@dataclass
class Fitted:
    """A unit's predictors by reported name, and how long it trained."""

    predictors: dict[str, TokenPredictor]
    selected: float | None = None  # PF: the SVI step; baselines: epochs (None: not known)
    epochs: float | None = None  # passes over the seen training data of the final fit
    validation: float | None = None  # the zero-shot validation score of the selected length
    validation_se: float | None = None  # its standard error over the validation pairs
    offset_scale: float | None = None  # PF: the language offset's scale that selection chose
    # selection.per_task: each task's own rows (selected, epochs, offset_scale)
    per_task: dict[str, dict[str, float | None]] = dataclasses.field(default_factory=dict)


@dataclass
class UnitData:
    """A unit's training data, read with the held-out pairs sealed: the seen pairs' train and
    dev splits and, under zero-shot selection, the selection split's pairs to train on and its
    validation pairs' dev data."""

    train: dict[Pair, PairTensors]
    dev: dict[Pair, PairTensors]
    split: Partition | None = None
    select_train: dict[Pair, PairTensors] | None = None
    validation: dict[Pair, PairTensors] | None = None


def unit_data(setup: Setup, partition_name: str, partition: Partition) -> UnitData:
    """The data a unit trains and selects on; reading a held-out pair's data here raises."""
    store, config = setup.store, setup.config
    seen = list(partition.seen)
    zero_shot = config.selection.mode == "zero-shot"
    with store.sealing(partition.heldout):
        data = UnitData(
            train=store.split_tensors(seen, "train", "seen"),
            dev={} if zero_shot else store.split_tensors(seen, "dev", "seen"),
        )
        if zero_shot:
            data.split = validation_split(config, setup.catalog, partition_name, partition)
            data.select_train = store.split_tensors(list(data.split.seen), "train", "seen")
            data.validation = store.split_tensors(
                list(data.split.heldout), "dev", "seen", cap=config.selection.validation_cap
            )
    return data


def predict_probs(predictor: TokenPredictor, task, lang, features, mask) -> torch.Tensor:
    """``predictor``'s label probabilities of a pair's words, detached, fp32, on the CPU."""
    # No no_grad here: NS and BEA fit lazily, on the first pair they are asked about.
    return predictor.predict_proba(task, lang, features, mask).detach().float().cpu()


# -- the PF model ---------------------------------------------------------------------------------
@dataclass
class PFFit:
    """A trained PF model, the step it was selected at, its epochs over the seen training
    data, (zero-shot selection) the validation score of that step with its standard error and
    the offset scale chosen, and the data it read."""

    result: TrainResult
    steps: int
    epochs: float
    validation: float | None
    data: UnitData
    validation_se: float | None = None
    offset_scale: float | None = None
    pair_scores: dict[str, float] = dataclasses.field(default_factory=dict)  # at the choice


def standard_error(scores: Mapping[str, float]) -> float | None:
    """The standard error of the mean of validation ``scores`` ({"task/lang": score}),
    stratified by task: pairs of one task are the exchangeable draws, and the tasks' levels
    differ (POS accuracy near 0.6, NER span F1 near 0.1), which a plain standard deviation
    over all pairs would count as noise. None when no task has two pairs."""
    by_task: dict[str, list[float]] = {}
    for name, value in scores.items():
        by_task.setdefault(name.split("/")[0], []).append(float(value))
    total = sum(len(values) for values in by_task.values())
    if all(len(values) < 2 for values in by_task.values()):
        return None
    variance = sum(
        (len(values) / total) ** 2 * float(np.var(values, ddof=1)) / len(values)
        for values in by_task.values()
        if len(values) > 1
    )
    return float(np.sqrt(variance))


def selected_pair_scores(history: list[dict], step: int | None) -> dict[str, float]:
    """The validation pairs' scores of the evaluation at ``step`` in a run's history."""
    for record in history:
        if record.get("kind", "eval") == "eval" and record.get("step") == step and "dev" in record:
            return {name: float(v) for name, v in record["dev"].items()}
    return {}


def jm_start(
    setup: Setup,
    train_tensors: dict[Pair, PairTensors],
    seed: int,
    *,
    epochs: int | Mapping[str, int] | None = None,
    dev: dict[Pair, PairTensors] | None = None,
) -> Callable[..., None]:
    """``model.init: jm``: the JM baseline fitted on ``train_tensors`` as the grid's JM unit
    fits it (``epochs`` from its zero-shot selection, one count or one per task under
    ``selection.per_task``; else early stopping on ``dev``), as the ``init`` that starts a PF
    model at it (:mod:`pfpyro.model.anchor`). JM's classifiers are independent per task, so
    per-task counts take each task's classifier from a fit of its own count."""
    if isinstance(epochs, Mapping):
        classifiers = {}
        for count in sorted(set(epochs.values())):
            jm = fit_baseline_model(setup, "jm", train_tensors, None, seed, epochs=count)
            fitted = jm.linear_classifiers()
            classifiers.update({t: c for t, c in fitted.items() if epochs.get(t) == count})
        return functools.partial(start_at_joint_classifier, classifiers=classifiers)
    settings = {"epochs": epochs} if epochs is not None else {}
    jm = fit_baseline_model(setup, "jm", train_tensors, dev or None, seed, **settings)
    return functools.partial(start_at_joint_classifier, classifiers=jm.linear_classifiers())


def offset_scale_candidates(
    architecture: ModelConfig, scales: list[float]
) -> list[tuple[float | None, ModelConfig]]:
    """The architectures that selection compares: one per offset scale of ``scales`` (a
    hypernetwork that declares ``with_base``), else the architecture itself."""
    if not scales:
        return [(None, architecture)]
    name, args = architecture.component("hypernet")
    if not declares(lookup("hypernet", name), "with_base"):
        raise ConfigError(
            f"selection.offset_scales needs a hypernetwork with a base per task and an "
            f"offset_scale (residual, adapter); model.hypernet is {name!r}"
        )
    return [
        (float(s), architecture.with_component("hypernet", name, **{**args, "offset_scale": s}))
        for s in sorted(set(scales))
    ]


@dataclass
class PFSelection:
    """Zero-shot selection of a PF model: each offset scale's architecture with its run on
    the selection split, the candidate lengths ({epochs: steps}; empty: steps themselves) and
    the JM epochs its runs started from (``model.init: jm``)."""

    runs: list[tuple[float | None, ModelConfig, TrainResult]]
    steps_of: dict[float, int]
    jm_epochs: int | dict[str, int] | None = None


@dataclass
class PFChoice:
    """One choice of selection: the architecture, its offset scale, the step of its selection
    run, and the validation pairs' scores there."""

    architecture: ModelConfig
    offset_scale: float | None
    step: int | None
    pair_scores: dict[str, float]
    score: float | None = None  # the validation score there (None: the pairs' mean)


def select_pf(
    setup: Setup,
    data: UnitData,
    partition: Partition,
    architecture: ModelConfig,
    train_config: TrainConfig,
    select_dir: Path,
    resume: bool,
) -> PFSelection:
    """Run selection: one run per offset scale on the selection split, scored zero-shot on
    the validation pairs at each candidate length, with the held-out pairs sealed."""
    pairs = [*partition.seen, *partition.heldout, *data.split.pairs]
    langs, tasks = sorted({x for _, x in pairs}), sorted({t for t, _ in pairs})
    seed, anchored = train_config.seed, architecture.init == "jm"
    steps_of = epoch_steps(data.select_train, train_config, setup.config.selection.pf_epochs)
    if steps_of:
        train_config = dataclasses.replace(
            train_config,
            max_steps=max(steps_of.values()),
            eval_steps=sorted(set(steps_of.values())),
        )
    runs, jm_epochs = [], None
    with setup.store.sealing(partition.heldout):
        if anchored:
            jm = select_baseline_epochs(setup, "jm", seed, data.select_train, data.validation)
            jm_epochs = jm.per_task if setup.config.selection.per_task else jm.epochs
        for scale, candidate in offset_scale_candidates(
            architecture, list(setup.config.selection.offset_scales)
        ):
            where = (
                select_dir
                if scale is None
                else select_dir.with_name(f"{select_dir.name}-scale{scale:g}")
            )
            chosen = train(
                data.select_train,
                data.validation,
                train_config,
                model=with_language_data(candidate, langs, setup.catalog),
                tasks=tasks,
                langs=langs,
                out_dir=where,
                resume=resume,
                dev_role="zero-shot",
                scorer=headline_score,
                encoder_top=setup.store.encoder_top(),
                init=jm_start(setup, data.select_train, seed, epochs=jm_epochs)
                if anchored
                else None,
            )
            log.info("offset scale %s: validation %.4f at step %s", scale,
                     chosen.best_score, chosen.best_step)  # fmt: skip
            runs.append((scale, candidate, chosen))
    return PFSelection(runs, steps_of, jm_epochs)


def best_overall(selection: PFSelection) -> PFChoice:
    """The (scale, step) with the best mean validation score over all validation pairs (ties:
    the first scale, as each run's own best step is its first best)."""
    scale, architecture, run = max(selection.runs, key=lambda r: r[2].best_score)
    scores = selected_pair_scores(run.history, run.best_step)
    return PFChoice(architecture, scale, run.best_step, scores, run.best_score)


def best_per_task(selection: PFSelection, tasks: list[str]) -> dict[str, PFChoice]:
    """``selection.per_task``: for each task, the (scale, step) whose mean score over that
    task's validation pairs is best (ties: the smaller scale, the fewer steps); a task with no
    validation pair takes the overall choice. The candidates are the evaluations each run
    made before it stopped on the pooled score (``train.patience``)."""
    overall, choices = best_overall(selection), {}
    for task in tasks:
        best = None
        for scale, architecture, run in selection.runs:
            for record in run.history:
                if record.get("kind", "eval") != "eval" or "dev" not in record:
                    continue
                mine = [float(v) for k, v in record["dev"].items() if k.split("/")[0] == task]
                if mine and (best is None or np.mean(mine) > best[0]):
                    best = (float(np.mean(mine)), scale, architecture, record["step"])
        if best is None:  # the pooled choice, without pairs of its own to report
            choices[task] = dataclasses.replace(overall, pair_scores={}, score=None)
            continue
        _, scale, architecture, step = best
        run = next(r for s, _, r in selection.runs if s == scale)
        scores = {
            k: v for k, v in selected_pair_scores(run.history, step).items()
            if k.split("/")[0] == task
        }  # fmt: skip
        choices[task] = PFChoice(architecture, scale, step, scores)
    return choices


def train_on_seen(
    setup: Setup,
    data: UnitData,
    partition: Partition,
    architecture: ModelConfig,
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    init: Callable[..., None] | None,
) -> TrainResult:
    """The fit on all seen pairs (early stopping on their dev data when there is any), by a
    model that knows every task and language of the partition, held-out ones included."""
    pairs = [*partition.seen, *partition.heldout]
    tasks, langs = sorted({t for t, _ in pairs}), sorted({x for _, x in pairs})
    return train(
        data.train,
        data.dev,
        config,
        model=with_language_data(architecture, langs, setup.catalog),
        tasks=tasks,
        langs=langs,
        out_dir=run_dir,
        resume=resume,
        encoder_top=setup.store.encoder_top(),
        init=init,
    )


def final_pf(
    setup: Setup,
    data: UnitData,
    partition: Partition,
    choice: PFChoice,
    selection: PFSelection,
    final_config: TrainConfig,
    run_dir: Path,
    resume: bool,
) -> PFFit:
    """The fit on all seen pairs for ``choice``'s length (in epochs when the candidates were),
    started, with ``model.init: jm``, at JM fitted on all seen pairs with selection's epochs."""
    anchored = choice.architecture.init == "jm"
    offset_scale = 0.0 if anchored and choice.step == 0 else choice.offset_scale
    if selection.steps_of and choice.step:
        chosen_epochs = min(e for e, k in selection.steps_of.items() if k == choice.step)
        final_steps = epoch_steps(data.train, final_config, [chosen_epochs])[chosen_epochs]
    else:
        final_steps = choice.step
    init = None
    if anchored:
        init = jm_start(setup, data.train, final_config.seed, epochs=selection.jm_epochs)
    final_config = dataclasses.replace(final_config, max_steps=final_steps)
    result = train_on_seen(setup, data, partition, choice.architecture, final_config,
                           run_dir, resume, init)  # fmt: skip
    validation = choice.score
    if validation is None and choice.pair_scores:
        validation = float(np.mean(list(choice.pair_scores.values())))
    fit = pf_fit(result, final_steps, final_config, data, validation,
                 standard_error(choice.pair_scores), offset_scale)  # fmt: skip
    fit.pair_scores = dict(choice.pair_scores)
    return fit


def pf_fit(
    result: TrainResult,
    max_steps: int | None,
    config: TrainConfig,
    data: UnitData,
    validation: float | None = None,
    validation_se: float | None = None,
    offset_scale: float | None = None,
) -> PFFit:
    """A :class:`PFFit` of ``result``: its step count and its epochs over the seen data."""
    steps = result.best_step if result.best_step is not None else max_steps
    seen_sentences = sum(len(t) for t in data.train.values())
    epochs = steps * config.batch_size * config.pairs_per_step / seen_sentences
    return PFFit(result, steps, epochs, validation, data, validation_se, offset_scale)


def fit_pf(
    setup: Setup,
    partition_name: str,
    partition: Partition,
    architecture: ModelConfig,
    train_config: TrainConfig,
    run_dir: Path,
    select_dir: Path,
    resume: bool = True,
) -> PFFit:
    """One PF model of a partition, the one way every command trains it: its length (and,
    with ``selection.offset_scales``, its offset scale) chosen by the config's selection rule
    (zero-shot: a run on the selection split in ``select_dir`` per scale, scored on the
    validation pairs; seen-dev: early stopping on the seen pairs' dev data), then trained on
    all seen pairs in ``run_dir``. The model knows every task and language of the partition
    (and of the validation pairs), held-out ones included. With ``model.init: jm`` every run
    starts at the JM baseline fitted on its own training data (:func:`jm_start`), and step 0
    (JM itself) is a candidate length. ``selection.per_task`` makes a model per task: see
    :func:`fit_pf_per_task`."""
    if setup.config.selection.per_task:
        raise ConfigError(
            "selection.per_task chooses a model per task, and this command writes one: run "
            "pfpyro experiment, or set selection.per_task: false"
        )
    data = unit_data(setup, partition_name, partition)
    if data.split is None:  # seen-dev: early stopping on the seen pairs' dev data
        init = None
        if architecture.init == "jm":
            init = jm_start(setup, data.train, train_config.seed, dev=data.dev)
        result = train_on_seen(
            setup, data, partition, architecture, train_config, run_dir, resume, init
        )
        return pf_fit(result, train_config.max_steps, train_config, data, None)
    selection = select_pf(setup, data, partition, architecture, train_config, select_dir, resume)
    choice = best_overall(selection)
    return final_pf(setup, data, partition, choice, selection, train_config, run_dir, resume)


def fit_pf_per_task(
    setup: Setup,
    partition_name: str,
    partition: Partition,
    architecture: ModelConfig,
    train_config: TrainConfig,
    run_dir: Path,
    select_dir: Path,
    resume: bool = True,
) -> dict[str, PFFit]:
    """``selection.per_task``: the selection runs of :func:`fit_pf`, then each task's own
    (scale, length) (:func:`best_per_task`), one final fit per distinct choice (in
    ``run_dir`` when the tasks agree, else ``run_dir``-TASK…), by task."""
    data = unit_data(setup, partition_name, partition)
    tasks = sorted({t for t, _ in [*partition.seen, *partition.heldout]})
    selection = select_pf(setup, data, partition, architecture, train_config, select_dir, resume)
    choices = best_per_task(selection, tasks)
    groups: dict[tuple, list[str]] = {}
    for task, choice in choices.items():
        groups.setdefault((choice.offset_scale, choice.step), []).append(task)
    fits = {}
    for members in groups.values():
        where = (
            run_dir
            if len(groups) == 1
            else run_dir.with_name(f"{run_dir.name}-{'+'.join(members)}")
        )
        merged = PFChoice(
            choices[members[0]].architecture,
            choices[members[0]].offset_scale,
            choices[members[0]].step,
            {k: v for task in members for k, v in choices[task].pair_scores.items()},
        )
        fit = final_pf(setup, data, partition, merged, selection, train_config, where, resume)
        fits.update({task: fit for task in members})
    return fits


def epoch_steps(
    train_tensors: Mapping[Pair, PairTensors], config: TrainConfig, epochs: list[float]
) -> dict[float, int]:
    """{epochs: SVI steps} for passes over ``train_tensors``' sentences, each step reading
    ``batch_size`` sentences of each of ``pairs_per_step`` pairs (at least one step)."""
    sentences = sum(len(t) for t in train_tensors.values())
    per_step = config.batch_size * config.pairs_per_step
    return {float(e): max(1, round(e * sentences / per_step)) for e in sorted(set(epochs))}


def save_language_samples(out_dir: Path, guide, num_samples: int = 500) -> None:
    """Draws from q(l_j) for Fig. 4 (PCA of language posteriors)."""
    with torch.no_grad():
        samples = guide.language_posterior().sample((num_samples,)).cpu().numpy()
    arrays = {lang: samples[:, j, :] for j, lang in enumerate(guide.langs)}
    atomic_write(out_dir / "language_samples.npz", lambda h: np.savez_compressed(h, **arrays))


# -- a unit -------------------------------------------------------------------------------------
def fit_predictors(
    setup: Setup, partition_name: str, partition: Partition, seed: int, model: str
) -> Fitted:
    """Select the unit's training length by the config's rule, then fit on all seen pairs
    (``selection.per_task``: a model per task, each task's pairs predicted by its own).

    With ``selection.mode: zero-shot`` the selection phase runs with the store sealed against
    the partition's held-out pairs: reading any of their data raises.
    """
    config = setup.config
    per_task = config.selection.per_task
    if model in PF_MODELS:
        stem = f"{partition_name}_seed{seed}_{model}"
        fits = (fit_pf_per_task if per_task else fit_pf)(
            setup,
            partition_name,
            partition,
            pf_model_config(config, model),
            config.train_config(seed, progress=setup.progress),
            run_dir=setup.out_dir / "train" / stem,
            select_dir=setup.out_dir / "train" / f"{stem}.select",
        )
        by_task = fits if per_task else {"all": fits}
        first = next(iter(by_task.values()))
        if (
            model == "pf-lr"
            and partition_name == setup.partitions[0][0]
            and seed == config.seeds[0]
        ):
            save_language_samples(setup.out_dir, first.result.guide)
        predictors = {}
        for mode, name in (("plugin", model), ("bma", f"{model}-bma")):
            each = {
                task: PFPredictor(
                    fit.result.factorization, fit.result.guide, mode=mode,
                    num_samples=config.predict.bma_samples,
                )
                for task, fit in by_task.items()
            }  # fmt: skip
            predictors[name] = TaskRouter(each) if per_task else each["all"]
        if not per_task:
            return Fitted(
                predictors, float(first.steps), first.epochs, first.validation,
                first.validation_se, first.offset_scale,
            )  # fmt: skip
        pair_scores = {}
        for fit in {id(f): f for f in fits.values()}.values():
            pair_scores.update(fit.pair_scores)
        rows = {
            task: {"selected": float(f.steps), "epochs": f.epochs, "offset_scale": f.offset_scale}
            for task, f in fits.items()
        }
        return Fitted(
            predictors, validation=mean_or_none(pair_scores),
            validation_se=standard_error(pair_scores), per_task=rows,
        )  # fmt: skip
    data = unit_data(setup, partition_name, partition)
    if data.split is None:  # seen-dev early stopping: each classifier stops on its own
        return Fitted({model: fit_baseline_model(setup, model, data.train, data.dev, seed)})
    chosen = select_baseline_epochs(setup, model, seed, data.select_train, data.validation)
    if not per_task:
        predictor = fit_baseline_model(setup, model, data.train, None, seed, epochs=chosen.epochs)
        return Fitted(
            {model: predictor}, float(chosen.epochs), float(chosen.epochs), chosen.validation,
            chosen.validation_se,
        )  # fmt: skip
    fitted = {
        count: fit_baseline_model(setup, model, data.train, None, seed, epochs=count)
        for count in sorted(set(chosen.per_task.values()))
    }
    pair_scores = {k: v for scores in chosen.per_task_scores.values() for k, v in scores.items()}
    return Fitted(
        {model: TaskRouter({task: fitted[e] for task, e in chosen.per_task.items()})},
        validation=mean_or_none(pair_scores) if pair_scores else chosen.validation,
        validation_se=standard_error(pair_scores) if pair_scores else chosen.validation_se,
        per_task={t: {"selected": e, "epochs": e} for t, e in chosen.per_task.items()},
    )  # fmt: skip


def mean_or_none(scores: Mapping[str, float]) -> float | None:
    """The mean of validation ``scores`` ({"task/lang": score}); None when there are none."""
    return sum(scores.values()) / len(scores) if scores else None


# -- the baselines ------------------------------------------------------------------------------
def fit_baseline_model(
    setup: Setup,
    model: str,
    train_tensors: dict[Pair, PairTensors],
    dev_tensors: dict[Pair, PairTensors] | None,
    seed: int,
    **settings,
) -> TokenPredictor:
    """Fit baseline ``model`` with the config's settings (``settings`` override them) and what
    it declares it needs: the source language's data (:func:`source_tensors`, which applies
    the source cap, so the baseline caps nothing again), URIEL similarity by the run's
    catalog; every baseline trains its own copy of a trained encoder top."""
    cls = baseline_class(model)
    extra = {}
    if declares(cls, "needs_source_data"):
        extra = {"english_train": source_tensors(setup, train_tensors), "capped_tasks": ()}
    if declares(cls, "needs_language_table"):
        extra = {"similarity": catalog_similarity(setup.catalog)}
    if setup.store.train_top:
        extra["top"] = setup.store.encoder_top()
    return fit_baseline(
        model,
        train_tensors,
        dev_tensors or None,
        seed=seed,
        **extra,
        **{**setup.config.baselines, **settings},
    )


@dataclass
class BaselineSelection:
    """A baseline's zero-shot selection: the best epoch count over all validation pairs, its
    score and standard error, and (``selection.per_task``) each task's own best count and its
    pairs' scores."""

    epochs: int
    validation: float | None = None
    validation_se: float | None = None
    per_task: dict[str, int] = dataclasses.field(default_factory=dict)
    per_task_scores: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


def select_baseline_epochs(
    setup: Setup,
    model: str,
    seed: int,
    select_train: dict[Pair, PairTensors],
    validation: dict[Pair, PairTensors],
) -> BaselineSelection:
    """The epoch count (of ``selection.baseline_epochs``) whose fit on the selection pairs
    scores best zero-shot on the validation pairs (ties: the fewest epochs), its score and
    the score's standard error over the pairs; and the same per task, on that task's pairs
    alone (a task without validation pairs takes the pooled count). A baseline that trains
    on the source language's data skips validation pairs in that language, which it would
    tag in-language; with none left it takes the largest count."""
    config = setup.config
    candidates = sorted(set(config.selection.baseline_epochs))
    source = config.data.source_language
    in_source = declares(baseline_class(model), "needs_source_data")
    scored = {p: t for p, t in validation.items() if not in_source or p[1] != source}
    tasks = sorted({task for task, _ in select_train})
    if not scored:
        return BaselineSelection(candidates[-1], per_task={t: candidates[-1] for t in tasks})
    by_count = {}
    for epochs in candidates:
        predictor = fit_baseline_model(setup, model, select_train, None, seed, epochs=epochs)
        by_count[epochs] = values = {
            f"{task}/{lang}": headline_score(
                task, predict_probs(predictor, task, lang, t.inputs, t.mask), t.labels, t.mask
            )
            for (task, lang), t in sorted(scored.items())
        }
        log.info("%s: %d epochs, zero-shot validation score %.4f", model, epochs,
                 sum(values.values()) / len(values))  # fmt: skip

    def best_count(keep: Callable[[str], bool]) -> int | None:
        means = {}
        for e, values in by_count.items():
            mine = [v for name, v in values.items() if keep(name)]
            if mine:
                means[e] = sum(mine) / len(mine)
        return max(means, key=lambda e: (means[e], -e)) if means else None

    best = best_count(lambda name: True)
    chosen = by_count[best]
    selection = BaselineSelection(best, sum(chosen.values()) / len(chosen), standard_error(chosen))
    for task in tasks:
        mine = best_count(lambda name, task=task: name.split("/")[0] == task)
        selection.per_task[task] = best if mine is None else mine
        selection.per_task_scores[task] = {
            k: v for k, v in by_count[selection.per_task[task]].items() if k.split("/")[0] == task
        }
    return selection


__all__ = [
    "BaselineSelection",
    "Fitted",
    "PFChoice",
    "PFFit",
    "PFSelection",
    "UnitData",
    "best_overall",
    "best_per_task",
    "catalog_similarity",
    "epoch_steps",
    "final_pf",
    "fit_baseline_model",
    "fit_pf",
    "fit_pf_per_task",
    "fit_predictors",
    "jm_start",
    "offset_scale_candidates",
    "pf_model_config",
    "predict_probs",
    "save_language_samples",
    "select_baseline_epochs",
    "select_pf",
    "source_tensors",
    "standard_error",
    "train_on_seen",
    "unit_data",
    "with_language_data",
]

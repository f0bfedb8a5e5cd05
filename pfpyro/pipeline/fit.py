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
from pfpyro.predictor import TokenPredictor

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
    epochs: int | None = None,
    dev: dict[Pair, PairTensors] | None = None,
) -> Callable[..., None]:
    """``model.init: jm``: the JM baseline fitted on ``train_tensors`` as the grid's JM unit
    fits it (``epochs`` from its zero-shot selection, else early stopping on ``dev``), as the
    ``init`` that starts a PF model at it (:mod:`pfpyro.model.anchor`)."""
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
    (JM itself) is a candidate length."""
    data = unit_data(setup, partition_name, partition)
    pairs = [*partition.seen, *partition.heldout]
    tasks, langs = sorted({t for t, _ in pairs}), sorted({x for _, x in pairs})
    seed, anchored = train_config.seed, architecture.init == "jm"
    validation = validation_se = offset_scale = jm_epochs = chosen_epochs = None
    final_config = train_config
    if data.split is not None:
        pf_epochs = setup.config.selection.pf_epochs
        steps_of = epoch_steps(data.select_train, train_config, pf_epochs)
        if steps_of:
            train_config = dataclasses.replace(
                train_config,
                max_steps=max(steps_of.values()),
                eval_steps=sorted(set(steps_of.values())),
            )
        select_langs = sorted(set(langs) | {x for _, x in data.split.pairs})
        select_tasks = sorted(set(tasks) | {t for t, _ in data.split.pairs})
        with setup.store.sealing(partition.heldout):
            if anchored:
                jm_epochs = select_baseline_epochs(
                    setup, "jm", seed, data.select_train, data.validation
                )[0]
            best = None
            for scale, candidate in offset_scale_candidates(
                architecture, list(setup.config.selection.offset_scales)
            ):
                where = (
                    select_dir
                    if scale is None
                    else select_dir.with_name(f"{select_dir.name}-scale{scale:g}")
                )
                init = jm_start(setup, data.select_train, seed, epochs=jm_epochs)
                chosen = train(
                    data.select_train,
                    data.validation,
                    train_config,
                    model=with_language_data(candidate, select_langs, setup.catalog),
                    tasks=select_tasks,
                    langs=select_langs,
                    out_dir=where,
                    resume=resume,
                    dev_role="zero-shot",
                    scorer=headline_score,
                    encoder_top=setup.store.encoder_top(),
                    init=init if anchored else None,
                )
                log.info("offset scale %s: validation %.4f at step %s", scale,
                         chosen.best_score, chosen.best_step)  # fmt: skip
                if best is None or chosen.best_score > best[0].best_score:
                    best = (chosen, candidate, scale)
        chosen, architecture, offset_scale = best
        if anchored and chosen.best_step == 0:
            offset_scale = 0.0  # step 0 of a JM start is JM itself, whatever the scale
        if steps_of and chosen.best_step:
            chosen_epochs = min(e for e, k in steps_of.items() if k == chosen.best_step)
            final_steps = epoch_steps(data.train, final_config, [chosen_epochs])[chosen_epochs]
        else:
            chosen_epochs = 0.0 if steps_of else None
            final_steps = chosen.best_step
        train_config = dataclasses.replace(final_config, max_steps=final_steps)
        validation = chosen.best_score
        validation_se = standard_error(selected_pair_scores(chosen.history, chosen.best_step))
    init = None
    if anchored:
        dev = data.dev if data.split is None else None
        init = jm_start(setup, data.train, seed, epochs=jm_epochs, dev=dev)
    result = train(
        data.train,
        data.dev,
        train_config,
        model=with_language_data(architecture, langs, setup.catalog),
        tasks=tasks,
        langs=langs,
        out_dir=run_dir,
        resume=resume,
        encoder_top=setup.store.encoder_top(),
        init=init,
    )
    steps = result.best_step if result.best_step is not None else train_config.max_steps
    seen_sentences = sum(len(t) for t in data.train.values())
    epochs = steps * train_config.batch_size * train_config.pairs_per_step / seen_sentences
    return PFFit(result, steps, epochs, validation, data, validation_se, offset_scale)


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
    """Select the unit's training length by the config's rule, then fit on all seen pairs.

    With ``selection.mode: zero-shot`` the selection phase runs with the store sealed against
    the partition's held-out pairs: reading any of their data raises.
    """
    config = setup.config
    if model in PF_MODELS:
        stem = f"{partition_name}_seed{seed}_{model}"
        fit = fit_pf(
            setup,
            partition_name,
            partition,
            pf_model_config(config, model),
            config.train_config(seed, progress=setup.progress),
            run_dir=setup.out_dir / "train" / stem,
            select_dir=setup.out_dir / "train" / f"{stem}.select",
        )
        factorization, guide = fit.result.factorization, fit.result.guide
        if (
            model == "pf-lr"
            and partition_name == setup.partitions[0][0]
            and seed == config.seeds[0]
        ):
            save_language_samples(setup.out_dir, guide)
        bma = PFPredictor(factorization, guide, mode="bma", num_samples=config.predict.bma_samples)
        plugin = PFPredictor(factorization, guide, mode="plugin")
        predictors = {model: plugin, f"{model}-bma": bma}
        return Fitted(
            predictors,
            float(fit.steps),
            fit.epochs,
            fit.validation,
            fit.validation_se,
            fit.offset_scale,
        )
    data = unit_data(setup, partition_name, partition)
    if data.split is None:  # seen-dev early stopping: each classifier stops on its own
        return Fitted({model: fit_baseline_model(setup, model, data.train, data.dev, seed)})
    epochs, validation_score, validation_se = select_baseline_epochs(
        setup, model, seed, data.select_train, data.validation
    )
    predictor = fit_baseline_model(setup, model, data.train, None, seed, epochs=epochs)
    return Fitted({model: predictor}, float(epochs), float(epochs), validation_score, validation_se)


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


def select_baseline_epochs(
    setup: Setup,
    model: str,
    seed: int,
    select_train: dict[Pair, PairTensors],
    validation: dict[Pair, PairTensors],
) -> tuple[int, float | None, float | None]:
    """The epoch count (of ``selection.baseline_epochs``) whose fit on the selection pairs
    scores best zero-shot on the validation pairs (ties: the fewest epochs), its score and
    the score's standard error over the pairs. A baseline that trains on the source
    language's data skips validation pairs in that language, which it would tag in-language;
    with none left it takes the largest count."""
    config = setup.config
    candidates = sorted(set(config.selection.baseline_epochs))
    source = config.data.source_language
    in_source = declares(baseline_class(model), "needs_source_data")
    scored = {p: t for p, t in validation.items() if not in_source or p[1] != source}
    if not scored:
        return candidates[-1], None, None
    best, best_score, best_se = candidates[-1], None, None
    for epochs in candidates:
        predictor = fit_baseline_model(setup, model, select_train, None, seed, epochs=epochs)
        values = {
            f"{task}/{lang}": headline_score(
                task, predict_probs(predictor, task, lang, t.inputs, t.mask), t.labels, t.mask
            )
            for (task, lang), t in sorted(scored.items())
        }
        score = sum(values.values()) / len(values)
        log.info("%s: %d epochs, zero-shot validation score %.4f", model, epochs, score)
        if best_score is None or score > best_score:
            best, best_score, best_se = epochs, score, standard_error(values)
    return best, best_score, best_se


__all__ = [
    "Fitted",
    "PFFit",
    "UnitData",
    "catalog_similarity",
    "epoch_steps",
    "fit_baseline_model",
    "fit_pf",
    "fit_predictors",
    "jm_start",
    "offset_scale_candidates",
    "pf_model_config",
    "predict_probs",
    "save_language_samples",
    "select_baseline_epochs",
    "source_tensors",
    "standard_error",
    "unit_data",
    "with_language_data",
]

"""``pfpyro experiment CONFIG``: the paper's grid, end to end, resumable.

For each partition and seed: encode (cached), train every model the config names, score each
held-out pair's test data, and write one CSV per (partition, seed, model) unit. A unit whose CSV
exists is not run again, so a stopped experiment resumes where it stopped. At the end the units
are gathered into ``results.csv``, Table 1, per-pair tables and the figures.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pfpyro import __version__
from pfpyro.atomic import atomic_write, atomic_write_text
from pfpyro.baselines import fit_baseline
from pfpyro.baselines.ls import source_capped
from pfpyro.baselines.uriel import FEATURE_SET, lang2vec_code, uriel_similarity, uriel_vector
from pfpyro.config import (
    PF_GUIDES,
    PF_MODELS,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    check_model_sections,
    config_from_dict,
)
from pfpyro.data.batch import PairTensors
from pfpyro.data.catalog import Catalog, default_catalog_path
from pfpyro.data.partition import (
    Partition,
    explicit_partition,
    no_data_partition,
    paper_partition,
    random_partition,
)
from pfpyro.data.partition import validation_split as carve_validation
from pfpyro.data.paths import data_root
from pfpyro.encode import FeatureCache, WordEncoder
from pfpyro.errors import ConfigError
from pfpyro.evaluate import headline_score, reliability_diagram, score_pair, sentence_entropy
from pfpyro.features import ALL, FeatureStore, Pair
from pfpyro.infer import PFPredictor, TrainResult, train
from pfpyro.model.description import check_model_config
from pfpyro.model.hypernet import TASK_BLOCKED_HYPERNETS
from pfpyro.predictor import TokenPredictor

log = logging.getLogger(__name__)

# The paper's Fig. 4 shows four languages' posteriors; these four are in every paper config.
FIG4_LANGUAGES = ("wo", "yo", "ta", "te")

UNIT_COLUMNS = ["model", "partition", "seed", "task", "lang", "metric", "value"]


@dataclass
class Setup:
    """What every unit of the run shares."""

    config: ExperimentConfig
    out_dir: Path
    catalog: Catalog
    store: FeatureStore
    languages: list[str]
    partitions: list[tuple[str, Partition]]
    progress: bool


def build_partitions(config: ExperimentConfig, pairs: list[Pair], languages: list[str]):
    scheme = config.partition
    if scheme.scheme == "paper":
        return [(f"paper-{k}", paper_partition(pairs, languages, k)) for k in scheme.indices]
    if scheme.scheme == "random":
        return [(f"random-{scheme.seed}", random_partition(pairs, scheme.seed))]
    if scheme.scheme == "no-data":
        unknown = sorted(set(scheme.languages) - set(languages))
        if unknown:
            raise ConfigError(
                f"{config.source or 'config'}: partition.languages: {', '.join(unknown)} "
                "not among the run's languages"
            )
        chosen = scheme.languages or languages
        return [(f"no-data-{lang}", no_data_partition(pairs, lang)) for lang in chosen]
    heldout = [tuple(p) for p in scheme.heldout]
    return [("explicit", explicit_partition(pairs, heldout))]


def prepare(
    config: ExperimentConfig,
    out_dir: Path,
    *,
    data: str | None = None,
    progress: bool = True,
) -> Setup:
    """Load the catalog, pick the languages and pairs, build the partitions and the encoder."""
    catalog = load_catalog(config, data)
    languages = config.data.languages or list(catalog.target_languages())
    missing = sorted(set(languages) - set(catalog.languages()))
    if missing:
        raise ConfigError(f"{config.source}: languages not in the catalog: {', '.join(missing)}")
    pairs = [p for p in catalog.pairs() if p[1] in languages]
    try:
        partitions = build_partitions(config, pairs, languages)
    except ConfigError as error:
        raise ConfigError(f"{config.source or 'config'}: partition: {error}") from None
    check_before_work(config, catalog, partitions)
    store = feature_store(config, catalog, progress)
    return Setup(config, out_dir, catalog, store, languages, partitions, progress)


def load_catalog(config: ExperimentConfig, data: str | None = None) -> Catalog:
    """The config's catalog over its data root (``data`` overrides ``data.root``)."""
    root = data_root(data or config.data.root)
    return Catalog.load(config.data.catalog or default_catalog_path(), root)


def feature_store(config: ExperimentConfig, catalog: Catalog, progress: bool) -> FeatureStore:
    """The config's encoder (cached features) and caps over ``catalog``."""
    encoder = WordEncoder(
        config.encoder.name,
        device=config.encoder.device,
        max_subwords=config.encoder.max_subwords,
        batch_size=config.encoder.batch_size,
        cache=FeatureCache(),
        progress=progress,
        precision=config.encoder.precision,
        runtime=config.encoder.runtime,
    )
    return FeatureStore(
        catalog, encoder, config.data.caps, config.data.cap_seed, config.encoder.train_top
    )


def check_before_work(
    config: ExperimentConfig, catalog: Catalog, partitions: list[tuple[str, Partition]]
) -> None:
    """What a run needs, checked before the encoder is built: the training and baseline
    settings (each PF model's guide included), the LS source and the selection-only
    languages in the catalog, and (zero-shot selection) each partition's validation pairs.
    A mistake costs a second, not an encoding pass."""
    where = config.source or "config"
    check_model_sections(config, where)
    try:
        config.train_config(config.seeds[0]).validate()
    except ConfigError as error:
        raise ConfigError(f"{where}: train: {error}") from None
    try:
        # The section as written; pf-d and pf-lr only swap in the built-in guides.
        check_model_config(config.model)
    except ConfigError as error:
        raise ConfigError(f"{where}: model: {error}") from None
    hypernet = config.model.component("hypernet")[0]
    steps_pairs = config.train_config(config.seeds[0]).pairs_per_step
    if steps_pairs > 1 and hypernet in TASK_BLOCKED_HYPERNETS:
        raise ConfigError(
            f"{where}: train: pairs_per_step {steps_pairs} needs a hypernetwork shared by the "
            f"tasks; model.hypernet {hypernet!r} generates each task's θ apart"
        )
    needed = set(config.selection.extra_languages)
    if "ls" in config.models:
        needed.add(config.data.source_language)
    missing = sorted(needed - set(catalog.languages()))
    if missing:
        raise ConfigError(f"{where}: languages not in the catalog: {', '.join(missing)}")
    if config.selection.mode == "zero-shot":
        for name, partition in partitions:
            validation_split(config, catalog, name, partition)
    typology = config.model.component("prior")[0] == "typology"
    if "ns" in config.models or typology:  # URIEL vectors: each language needs a known code
        for lang in sorted({lang for _, p in partitions for _, lang in p.pairs}):
            lang2vec_code(lang, catalog.language_table)


def with_typology_vectors(model: ModelConfig, langs: list[str], catalog: Catalog) -> ModelConfig:
    """``model`` itself, or, when its prior is ``typology`` without ``vectors``, with the URIEL
    vector of each of ``langs`` (the prior's ``feature_set``, by default NS's) from the
    catalog's language table. The vectors then travel in model.json."""
    name, args = model.component("prior")
    if name != "typology" or "vectors" in args:
        return model
    feature_set = args.get("feature_set", FEATURE_SET)
    vectors = {
        lang: uriel_vector(lang, feature_set, catalog.language_table).tolist() for lang in langs
    }
    return model.with_component(
        "prior", name, **{**args, "feature_set": feature_set, "vectors": vectors}
    )


def pf_model_config(config: ExperimentConfig, model: str) -> ModelConfig:
    """The architecture a PF unit trains: the config's ``model:`` section, with the guide
    that ``pf-d`` and ``pf-lr`` name (PF-lr keeps the section's rank); ``pf`` takes the
    section's own guide, a registered extension included."""
    if model not in PF_GUIDES:
        return config.model
    return config.model.with_guide(PF_GUIDES[model])


def catalog_similarity(catalog: Catalog) -> Callable[[str, str], float]:
    """NS's similarity, with each language's URIEL code from ``catalog``."""
    return functools.partial(uriel_similarity, languages=catalog.language_table)


def run_record(setup: Setup) -> dict:
    """Provenance written beside every result: config, version, data manifest, machine."""
    manifest = setup.catalog.data_root / "MANIFEST.tsv"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.exists() else None
    return {
        "pfpyro_version": __version__,
        "config": setup.config.to_dict(),
        "data_root": str(setup.catalog.data_root),
        "data_manifest_sha256": digest,
        "partitions": {
            name: {"seen": [list(p) for p in part.seen], "heldout": [list(p) for p in part.heldout]}
            for name, part in setup.partitions
        },
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
    }


def units(setup: Setup) -> Iterator[tuple[str, Partition, int, str]]:
    for name, partition in setup.partitions:
        for seed in setup.config.seeds:
            for model in setup.config.models:
                yield name, partition, seed, model


def unit_path(out_dir: Path, partition: str, seed: int, model: str) -> Path:
    return out_dir / "units" / f"{partition}_seed{seed}_{model}.csv"


def source_tensors(setup: Setup, train_tensors: dict[Pair, PairTensors]) -> dict[Pair, PairTensors]:
    """The LS source language's training tensors per task. The paper's cap (footnote 12) is
    applied here and only here: a task whose description says ``source_cap`` (NER) gets as
    many source sentences as all seen languages of the task together; the others (POS) get
    the whole split."""
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


def validation_split(
    config: ExperimentConfig, catalog: Catalog, partition_name: str, partition: Partition
) -> Partition:
    """The selection split of ``partition``: seen (+ extra-language) pairs to train on and
    the validation pairs (``heldout``) to score zero-shot. Seeded, the same for every model."""
    selection = config.selection
    extra = [p for p in catalog.pairs() if p[1] in selection.extra_languages]
    with_dev = [p for p in [*partition.seen, *extra] if catalog.files(*p, "dev", "seen")]
    return carve_validation(
        partition.seen,
        selection.validation_pairs,
        selection.seed,
        extra=extra,
        eligible=with_dev,
        source=f"{config.source or 'config'} ({partition_name})",
    )


@dataclass
class Fitted:
    """A unit's predictors by reported name, and how long it trained."""

    predictors: dict[str, TokenPredictor]
    selected: float | None = None  # PF: the SVI step; baselines: epochs (None: not known)
    epochs: float | None = None  # passes over the seen training data of the final fit
    validation: float | None = None  # the zero-shot validation score of the selected length


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
            data.validation = store.split_tensors(list(data.split.heldout), "dev", "seen")
    return data


@dataclass
class PFFit:
    """A trained PF model, the step it was selected at, its epochs over the seen training
    data, (zero-shot selection) the validation score of that step, and the data it read."""

    result: TrainResult
    steps: int
    epochs: float
    validation: float | None
    data: UnitData


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
    """One PF model of a partition, the one way every command trains it: its length chosen
    by the config's selection rule (zero-shot: a run on the selection split in
    ``select_dir``, scored on the validation pairs; seen-dev: early stopping on the seen pairs'
    dev data), then trained on all seen pairs in ``run_dir``. The model knows every task and
    language of the partition (and of the validation pairs), held-out ones included."""
    data = unit_data(setup, partition_name, partition)
    pairs = [*partition.seen, *partition.heldout]
    tasks, langs = sorted({t for t, _ in pairs}), sorted({x for _, x in pairs})
    validation = None
    if data.split is not None:
        select_langs = sorted(set(langs) | {x for _, x in data.split.pairs})
        with setup.store.sealing(partition.heldout):
            chosen = train(
                data.select_train,
                data.validation,
                train_config,
                model=with_typology_vectors(architecture, select_langs, setup.catalog),
                tasks=sorted(set(tasks) | {t for t, _ in data.split.pairs}),
                langs=select_langs,
                out_dir=select_dir,
                resume=resume,
                dev_role="zero-shot",
                scorer=headline_score,
                encoder_top=setup.store.encoder_top(),
            )
        train_config = dataclasses.replace(train_config, max_steps=chosen.best_step)
        validation = chosen.best_score
    result = train(
        data.train,
        data.dev,
        train_config,
        model=with_typology_vectors(architecture, langs, setup.catalog),
        tasks=tasks,
        langs=langs,
        out_dir=run_dir,
        resume=resume,
        encoder_top=setup.store.encoder_top(),
    )
    steps = result.best_step or train_config.max_steps
    seen_sentences = sum(len(t) for t in data.train.values())
    epochs = steps * train_config.batch_size / seen_sentences
    return PFFit(result, steps, epochs, validation, data)


def _fit_predictors(
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
            _save_language_samples(setup.out_dir, guide)
        bma = PFPredictor(factorization, guide, mode="bma", num_samples=config.predict.bma_samples)
        plugin = PFPredictor(factorization, guide, mode="plugin")
        predictors = {model: plugin, f"{model}-bma": bma}
        return Fitted(predictors, float(fit.steps), fit.epochs, fit.validation)
    data = unit_data(setup, partition_name, partition)
    if data.split is None:  # seen-dev early stopping: each classifier stops on its own
        return Fitted({model: fit_baseline_model(setup, model, data.train, data.dev, seed)})
    epochs, validation_score = _select_baseline_epochs(
        setup, model, seed, data.select_train, data.validation
    )
    predictor = fit_baseline_model(setup, model, data.train, None, seed, epochs=epochs)
    return Fitted({model: predictor}, float(epochs), float(epochs), validation_score)


def fit_baseline_model(
    setup: Setup,
    model: str,
    train_tensors: dict[Pair, PairTensors],
    dev_tensors: dict[Pair, PairTensors] | None,
    seed: int,
    **settings,
) -> TokenPredictor:
    """Fit baseline ``model`` with the config's settings (``settings`` override them); LS gets
    its source data from :func:`source_tensors`, which applies the source cap, so LS itself
    caps nothing again."""
    extra = {}
    if model == "ls":
        extra = {"english_train": source_tensors(setup, train_tensors), "capped_tasks": ()}
    if model == "ns":  # URIEL codes from the run's catalog (its ``languages:`` section)
        extra = {"similarity": catalog_similarity(setup.catalog)}
    if setup.store.train_top:  # every baseline trains its own copy of the encoder's top
        extra["top"] = setup.store.encoder_top()
    return fit_baseline(
        model,
        train_tensors,
        dev_tensors or None,
        seed=seed,
        **extra,
        **{**setup.config.baselines, **settings},
    )


def _select_baseline_epochs(
    setup: Setup,
    model: str,
    seed: int,
    select_train: dict[Pair, PairTensors],
    validation: dict[Pair, PairTensors],
) -> tuple[int, float | None]:
    """The epoch count (of ``selection.baseline_epochs``) whose fit on the selection pairs
    scores best zero-shot on the validation pairs (ties: the fewest epochs). LS skips
    validation pairs in its own source language, which it would tag in-language; with none
    left it takes the largest count."""
    config = setup.config
    candidates = sorted(set(config.selection.baseline_epochs))
    source = config.data.source_language
    scored = {p: t for p, t in validation.items() if model != "ls" or p[1] != source}
    if not scored:
        return candidates[-1], None
    best, best_score = candidates[-1], None
    for epochs in candidates:
        predictor = fit_baseline_model(setup, model, select_train, None, seed, epochs=epochs)
        values = [
            headline_score(
                task, _predict(predictor, task, lang, t.inputs, t.mask), t.labels, t.mask
            )
            for (task, lang), t in sorted(scored.items())
        ]
        score = sum(values) / len(values)
        log.info("%s: %d epochs, zero-shot validation score %.4f", model, epochs, score)
        if best_score is None or score > best_score:
            best, best_score = epochs, score
    return best, best_score


def _save_language_samples(out_dir: Path, guide, num_samples: int = 500) -> None:
    """Draws from q(l_j) for Fig. 4 (PCA of language posteriors)."""
    with torch.no_grad():
        samples = guide.language_posterior().sample((num_samples,)).cpu().numpy()
    arrays = {lang: samples[:, j, :] for j, lang in enumerate(guide.langs)}
    atomic_write(out_dir / "language_samples.npz", lambda h: np.savez_compressed(h, **arrays))


def run_unit(setup: Setup, partition_name: str, partition: Partition, seed: int, model: str):
    """Train one model for one partition and seed; score every held-out pair."""
    started = time.perf_counter()
    fitted = _fit_predictors(setup, partition_name, partition, seed, model)
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
    for metric in ("selected", "epochs", "validation"):
        if getattr(fitted, metric) is not None:
            rows.append(
                (model, partition_name, seed, "all", "all", metric, getattr(fitted, metric))
            )
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
            yield task, lang, name, _predict(predictor, task, lang, features, tensors.mask), tensors


def _predict(predictor: TokenPredictor, task, lang, features, mask) -> torch.Tensor:
    # No no_grad here: NS and BEA fit lazily, on the first pair they are asked about.
    return predictor.predict_proba(task, lang, features, mask).detach().float().cpu()


def gather(out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All finished units' results, sentence entropies and reliability bins."""
    units_dir = out_dir / "units"

    def read_all(folder: Path) -> pd.DataFrame:
        frames = [pd.read_csv(p) for p in sorted(folder.glob("*.csv")) if p.stat().st_size > 0]
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return read_all(units_dir), read_all(units_dir / "entropy"), read_all(units_dir / "reliability")


def write_reports(out_dir: Path, config: ExperimentConfig) -> list[Path]:
    """results.csv, tables (Table 1, per pair, calibration) and figures from the finished units."""
    from pfpyro.report import (
        figure_entropy,
        figure_language_posteriors,
        figure_per_language,
        figure_reliability,
        write_calibration,
        write_tables,
    )

    results, entropy, reliability = gather(out_dir)
    scored = results[results["task"] != "all"]
    written = []
    path = out_dir / "results.csv"
    atomic_write_text(path, results.to_csv(index=False))
    written.append(path)
    written += write_tables(scored, out_dir)
    written += write_calibration(scored, out_dir)
    for task in sorted(scored["task"].unique()):
        written.append(figure_per_language(scored, task, out_dir / f"fig2_{task}.png"))
    entropy_model = "pf-lr-bma" if "pf-lr" in config.models else None
    if entropy_model and not entropy.empty:
        fig3 = figure_entropy(entropy, scored, out_dir / "fig3_entropy.png", model=entropy_model)
        written.append(fig3.path)
        # {"pooled": {...}, "pos": {...}, "ner": {...}}: POS and NER entropies differ in scale.
        correlations = {key: dataclasses.asdict(c) for key, c in fig3.correlations.items()}
        path = out_dir / "entropy_correlation.json"
        atomic_write_text(path, json.dumps(correlations, indent=2, default=float))
        written.append(path)
    samples_path = out_dir / "language_samples.npz"
    if samples_path.exists():
        with np.load(samples_path) as data:
            samples = {lang: data[lang] for lang in data.files}
        shown = [lang for lang in FIG4_LANGUAGES if lang in samples] or None
        path = out_dir / "fig4_language_posteriors.png"
        written.append(figure_language_posteriors(samples, path, langs=shown))
    if not reliability.empty:
        written.append(figure_reliability(reliability, out_dir / "reliability.png"))
    return written


def same_config(old: dict, new: dict) -> bool:
    """Whether a run folder's recorded config is ``new``'s, read with today's defaults (a
    section added since, like ``selection``, takes its default value in the old record)."""
    try:
        rebuilt = config_from_dict({k: v for k, v in old.items() if k != "source"}).to_dict()
    except ConfigError:
        return False
    return rebuilt | {"source": None} == new | {"source": None}


def run_experiment(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    data: str | None = None,
    progress: bool = True,
) -> str:
    """Run every unfinished unit of the grid, then write the reports; returns Table 1."""
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
    if previous.exists():
        old = json.loads(previous.read_text(encoding="utf-8"))
        if not same_config(old.get("config", {}), record["config"]):
            raise ConfigError(
                f"{out_dir} holds a run of another config; use a new --out or delete the folder"
            )
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

"""The set-up every stage of a run shares: the catalog, the feature store, the partitions, the
whole-config checks made before any work, and the run record written beside the results.

Nothing here trains or scores; :mod:`pfpyro.pipeline.fit` and :mod:`pfpyro.pipeline.grid`
take the :class:`Setup` it builds (docs/design.md §8).
"""

from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from pfpyro import __version__
from pfpyro.baselines import baseline_class
from pfpyro.config import BASELINE_MODELS, ExperimentConfig, check_model_sections, config_from_dict
from pfpyro.data.catalog import Catalog, default_catalog_path
from pfpyro.data.pairs import Pair
from pfpyro.data.partition import (
    Partition,
    explicit_partition,
    no_data_partition,
    paper_partition,
    random_partition,
)
from pfpyro.data.partition import validation_split as carve_validation
from pfpyro.data.paths import data_root
from pfpyro.data.uriel import lang2vec_code
from pfpyro.encode import WordEncoder
from pfpyro.encode.store import FeatureStore
from pfpyro.errors import ConfigError
from pfpyro.model.capabilities import check_components, components, declares
from pfpyro.model.description import check_model_config


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


def build_partitions(
    config: ExperimentConfig, pairs: list[Pair], languages: list[str]
) -> list[tuple[str, Partition]]:
    """The config's partitions of ``pairs``, each with its name (``paper-0``, ``random-3``,
    ``no-data-wo``, ``explicit``)."""
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


def with_bridges(
    config: ExperimentConfig,
    catalog: Catalog,
    languages: list[str],
    partitions: list[tuple[str, Partition]],
) -> list[tuple[str, Partition]]:
    """``partitions`` with every pair of ``partition.bridge_languages`` seen in each."""
    bridges = list(config.partition.bridge_languages)
    if not bridges:
        return partitions
    problems = [
        f"{lang} (not in the catalog)" for lang in bridges if lang not in catalog.languages()
    ]
    problems += [f"{lang} (one of data.languages)" for lang in bridges if lang in languages]
    problems += [
        f"{lang} (also a selection-only language)"
        for lang in bridges
        if lang in config.selection.extra_languages
    ]
    if problems:
        raise ConfigError(f"bridge_languages: {', '.join(problems)}")
    extra = tuple(p for p in catalog.pairs() if p[1] in bridges)
    return [
        (name, Partition(seen=(*part.seen, *extra), heldout=part.heldout).validate())
        for name, part in partitions
    ]


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
        partitions = with_bridges(config, catalog, languages, partitions)
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
    encoder = WordEncoder.from_config(
        config.encoder, device=config.encoder.device, progress=progress
    )
    return FeatureStore(
        catalog, encoder, config.data.caps, config.data.cap_seed, config.encoder.train_top
    )


def run_components(config: ExperimentConfig) -> dict[str, object]:
    """{what the config calls it: the class or factory} of every component and baseline a
    run of ``config`` uses: ``model.<kind>`` for the model's, the name for a baseline's."""
    named: dict[str, object] = {
        f"model.{kind}": factory for kind, (_, factory) in components(config.model).items()
    }
    for model in config.models:
        if model in BASELINE_MODELS:
            named[model] = baseline_class(model)
    return named


def check_before_work(
    config: ExperimentConfig, catalog: Catalog, partitions: list[tuple[str, Partition]]
) -> None:
    """What a run needs, checked before the encoder is built: the training and baseline
    settings (each PF model's guide included), what each component and baseline declares
    (:mod:`pfpyro.model.capabilities`: several pairs per step, a source language, a language
    table), the selection-only languages in the catalog, and (zero-shot selection) each
    partition's validation pairs. A mistake costs a second, not an encoding pass."""
    where = config.source or "config"
    check_model_sections(config, where)
    train_config = config.train_config(config.seeds[0])
    try:
        train_config.validate()
    except ConfigError as error:
        raise ConfigError(f"{where}: train: {error}") from None
    try:
        # The section as written; pf-d and pf-lr only swap in the built-in guides.
        check_model_config(config.model)
    except ConfigError as error:
        raise ConfigError(f"{where}: model: {error}") from None
    try:
        check_components(config.model, pairs_per_step=train_config.pairs_per_step)
    except ConfigError as error:
        raise ConfigError(f"{where}: train: {error}") from None
    named = run_components(config)
    hypernet = named["model.hypernet"]
    wants_base = [
        key
        for key, wanted in (
            ("model.init: jm", config.model.init == "jm"),
            ("selection.offset_scales", bool(config.selection.offset_scales)),
        )
        if wanted
    ]
    if wants_base and not declares(hypernet, "with_base"):
        raise ConfigError(
            f"{where}: {' and '.join(wants_base)} need a hypernetwork with a base classifier "
            f"per task (it declares with_base: residual, adapter); model.hypernet is "
            f"{config.model.component('hypernet')[0]!r}"
        )
    needed = set(config.selection.extra_languages)
    if any(declares(c, "needs_source_data") for c in named.values()):
        needed.add(config.data.source_language)
    missing = sorted(needed - set(catalog.languages()))
    if missing:
        raise ConfigError(f"{where}: languages not in the catalog: {', '.join(missing)}")
    if config.selection.mode == "zero-shot":
        for name, partition in partitions:
            validation_split(config, catalog, name, partition)
    readers = [name for name, c in named.items() if declares(c, "needs_language_table")]
    if readers:  # URIEL vectors: each language needs a known code
        for lang in sorted({lang for _, p in partitions for _, lang in p.pairs}):
            try:
                lang2vec_code(lang, catalog.language_table)
            except ConfigError as error:
                raise ConfigError(
                    f"{where}: {', '.join(readers)} declare needs_language_table: {error}"
                ) from None


def validation_split(
    config: ExperimentConfig, catalog: Catalog, partition_name: str, partition: Partition
) -> Partition:
    """The selection split of ``partition``: seen (+ extra-language) pairs to train on and
    the validation pairs (``heldout``) to score zero-shot. Seeded, the same for every model."""
    selection = config.selection
    extra = [p for p in catalog.pairs() if p[1] in selection.extra_languages]
    bridges = set(config.partition.bridge_languages)  # seen by every model, selection too
    with_dev = [
        p
        for p in [*partition.seen, *extra]
        if p[1] not in bridges and catalog.files(*p, "dev", "seen")
    ]
    return carve_validation(
        partition.seen,
        selection.validation_pairs,
        selection.seed,
        extra=extra,
        eligible=with_dev,
        source=f"{config.source or 'config'} ({partition_name})",
    )


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


def same_config(old: dict, new: dict) -> bool:
    """Whether a run folder's recorded config is ``new``'s, read with today's defaults (a
    section added since, like ``selection``, takes its default value in the old record)."""
    try:
        rebuilt = config_from_dict({k: v for k, v in old.items() if k != "source"}).to_dict()
    except ConfigError:
        return False
    return rebuilt | {"source": None} == new | {"source": None}


__all__ = [
    "Setup",
    "build_partitions",
    "check_before_work",
    "feature_store",
    "load_catalog",
    "prepare",
    "run_components",
    "run_record",
    "same_config",
    "validation_split",
]

"""One run, described by one YAML file: data, partition, encoder, training, models, seeds.

Every result file of a run records this config (and the package version), so a number can
always be traced to the run that made it. Unknown keys are errors, not silently ignored.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pfpyro.errors import ConfigError

PF_MODELS = ("pf-d", "pf-lr")
BASELINE_MODELS = ("ns", "ls", "jm", "bea")
ALL_MODELS = PF_MODELS + BASELINE_MODELS


@dataclass
class DataConfig:
    """Where the corpora are and how much of them a run uses."""

    root: str | None = None  # else --data, PFPYRO_DATA, ../shared/data
    catalog: str | None = None  # else experiments/data/paper33.yaml
    languages: list[str] | None = None  # the PF languages; None: every catalog language but
    source_language: str = "en"  # the LS baseline's source, never part of the PF partition
    caps: dict[str, int | None] = field(
        default_factory=lambda: {"train": None, "dev": None, "test": None}
    )
    cap_seed: int = 0


@dataclass
class PartitionConfig:
    """Which pairs are seen and which held out: the paper's two, a random one, or a list."""

    scheme: str = "paper"  # paper | random | explicit
    indices: list[int] = field(default_factory=lambda: [0, 1])  # paper partitions to run
    seed: int = 0  # random
    heldout: list[list[str]] = field(default_factory=list)  # explicit: [[task, lang], ...]


SELECTION_MODES = ("seen-dev", "zero-shot")


@dataclass
class SelectionConfig:
    """How every model chooses its training length (PF: SVI steps; baselines: epochs).

    ``seen-dev``: early stopping on the seen pairs' own dev data (pfpyro 0.1's rule), blind to
    zero-shot overfitting. ``zero-shot``: ``validation_pairs`` pairs are carved out of the seen
    pairs (plus the pairs of ``extra_languages``, selection-only languages outside the
    partition), each keeping its task and language trained on elsewhere; each model trains
    without them and is scored on their dev data zero-shot (POS accuracy, NER span F1) at
    every checkpoint (PF: every ``train.eval_every`` steps; baselines: after each of
    ``baseline_epochs``); the best length is then refit on all seen pairs. The held-out pairs'
    data are not read before the final test.
    """

    mode: str = "seen-dev"
    validation_pairs: int = 2
    seed: int = 0
    extra_languages: list[str] = field(default_factory=list)
    baseline_epochs: list[int] = field(default_factory=lambda: [2, 5, 10, 20, 30])


@dataclass
class EncoderConfig:
    name: str = "multilingual-e5-small-offline"
    max_subwords: int = 250
    batch_size: int = 32
    device: str | None = None


@dataclass
class PredictConfig:
    bma_samples: int = 100  # Bayesian model averaging (paper §3.2: 100)
    entropy_sentences: int | None = 800  # per test set, for Fig. 3 (paper §5.3: 800)


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    train: dict[str, Any] = field(default_factory=dict)  # pfpyro.infer.TrainConfig fields
    baselines: dict[str, Any] = field(default_factory=dict)  # LinearTagger fit settings
    predict: PredictConfig = field(default_factory=PredictConfig)
    models: list[str] = field(default_factory=lambda: list(ALL_MODELS))
    seeds: list[int] = field(default_factory=lambda: [0])
    source: str | None = None  # the YAML file it came from

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def train_config(self, seed: int, **overrides: Any):
        """The :class:`pfpyro.infer.TrainConfig` of this run for ``seed``."""
        from pfpyro.infer import TrainConfig

        values = {**self.train, "seed": seed, **overrides}
        try:
            return TrainConfig(**values)
        except TypeError as error:
            raise ConfigError(f"{self.source or 'config'}: train: {error}") from None


def _build(cls: type, values: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys with their path."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, found {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            kwargs[key] = _build(hint, value or {}, f"{where}.{key}")
        else:
            kwargs[key] = _check_type(value, hint, f"{where}.{key}")
    return cls(**kwargs)


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(o for o in options if o is not type(None))
        origin = typing.get_origin(hint)
    base = origin or hint
    if base is Any:
        return value
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, base) or (base is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {getattr(base, '__name__', base)}, found {value!r}")
    return value


def config_from_dict(values: dict[str, Any], where: str = "config") -> ExperimentConfig:
    """An ExperimentConfig from plain values (a YAML file's, or a run.json's record)."""
    return _build(ExperimentConfig, values, where)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment config; errors name the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}{line}: invalid YAML ({getattr(error, 'problem', error)})"
        ) from None
    config = config_from_dict(values, str(path))
    config.source = str(path)
    bad = sorted(set(config.models) - set(ALL_MODELS))
    if bad:
        raise ConfigError(
            f"{path}: models: unknown {', '.join(bad)}; known: {', '.join(ALL_MODELS)}"
        )
    selection = config.selection
    if selection.mode not in SELECTION_MODES:
        raise ConfigError(
            f"{path}: selection.mode: expected {' or '.join(SELECTION_MODES)}, "
            f"found {selection.mode!r}"
        )
    if selection.validation_pairs < 1 or not selection.baseline_epochs:
        raise ConfigError(
            f"{path}: selection: validation_pairs must be >= 1 and baseline_epochs non-empty"
        )
    if any(e < 1 for e in selection.baseline_epochs):
        raise ConfigError(f"{path}: selection.baseline_epochs must be positive")
    if config.partition.scheme not in ("paper", "random", "explicit"):
        raise ConfigError(
            f"{path}: partition.scheme: expected paper, random or explicit, "
            f"found {config.partition.scheme!r}"
        )
    return config

"""One run, described by one YAML file: data, partition, encoder, training, models, seeds.

Every result file of a run records this config (and the package version), so a number can
always be traced to the run that made it. Unknown keys are errors, not silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import sys
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from pfpyro.errors import ConfigError

PF_MODELS = ("pf", "pf-d", "pf-lr")
PF_GUIDES = {"pf-d": "d", "pf-lr": "lr"}  # the guide pf-d and pf-lr train; "pf": model.guide
BASELINE_MODELS = ("ns", "ls", "jm", "bea")
ALL_MODELS = PF_MODELS + BASELINE_MODELS


#: The splits a cap can name (``data.caps``).
CAP_SPLITS: tuple[str, ...] = ("train", "dev", "test")


@dataclass
class DataConfig:
    """Where the corpora are and how much of them a run uses."""

    root: str | None = None  # else --data, PFPYRO_DATA, ../shared/data
    catalog: str | None = None  # else experiments/data/paper33.yaml
    # the PF languages; None: the catalog's target_languages (all of its languages if it
    # names none)
    languages: list[str] | None = None
    source_language: str = "en"  # the LS baseline's source, never part of the PF partition
    # at most this many sentences per pair and split; None (a split's, or all: `caps: null`)
    # reads everything
    caps: dict[str, int | None] | None = field(
        default_factory=lambda: {"train": None, "dev": None, "test": None}
    )
    cap_seed: int = 0

    def __post_init__(self) -> None:
        if self.caps is None:
            self.caps = dict.fromkeys(CAP_SPLITS)

    def problems(self) -> list[str]:
        """What is wrong with the caps: a split that does not exist, a negative cap."""
        out = []
        unknown = sorted(str(k) for k in self.caps if k not in CAP_SPLITS)
        if unknown:
            out.append(unknown_keys_message("data.caps", unknown, set(CAP_SPLITS)))
        for split, cap in self.caps.items():
            if cap is not None and (not isinstance(cap, int) or cap < 0):
                out.append(f"data.caps.{split} must be a non-negative number or null, got {cap!r}")
        return out


@dataclass
class PartitionConfig:
    """Which pairs are seen and which held out: the paper's two, a random one, a list, or
    ``no-data``: one partition per language of ``languages`` (empty: every target language)
    with all of that language's pairs held out, so that it has no labelled data at all."""

    scheme: str = "paper"  # paper | random | explicit | no-data
    indices: list[int] = field(default_factory=lambda: [0, 1])  # paper partitions to run
    seed: int = 0  # random
    heldout: list[list[str]] = field(default_factory=list)  # explicit: [[task, lang], ...]
    languages: list[str] = field(default_factory=list)  # no-data: the languages to leave out
    # Languages outside the run's own whose every pair is seen in every partition, by every
    # model (both tasks of a bridge language; never held out, never tested): the setting of
    # a user with some fully labelled languages. Not also selection.extra_languages.
    bridge_languages: list[str] = field(default_factory=list)


PARTITION_SCHEMES = ("paper", "random", "explicit", "no-data")
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
    # The validation pairs' dev sentences: None, the run's dev cap (data.caps.dev); a number;
    # or "all", every sentence of their dev split (a steadier score than 60 sentences).
    validation_cap: int | str | None = None
    # PF with a base classifier per task (residual, adapter): the language offset's scales
    # to choose from, each its own selection run (empty: the architecture's own scale).
    # ``model.init: jm`` also scores step 0, the joint classifier itself (scale 0).
    offset_scales: list[float] = field(default_factory=list)
    # PF's candidate lengths in epochs (passes over the selection split's sentences), as the
    # baselines' baseline_epochs: PF is scored after each and refit for the best count on all
    # seen pairs. Empty: lengths in steps (every train.eval_every up to train.max_steps).
    pf_epochs: list[float] = field(default_factory=list)
    # Stopping per task (zero-shot mode): each task's length (PF: and offset scale) chosen on
    # that task's validation pairs alone; the grid then fits one model per distinct choice
    # and predicts each task's held-out pairs with its own (pfpyro experiment only).
    per_task: bool = False


#: The encoder precisions: the model as it is, or its linear layers dynamically int8 (CPU).
ENCODER_PRECISIONS: tuple[str, ...] = ("fp32", "int8")

#: What runs the encoder: torch with the transformers model code, or ONNX Runtime on a graph
#: exported once into the cache (CPU; ``pip install pfpyro[onnx]``).
ENCODER_RUNTIMES: tuple[str, ...] = ("torch", "onnx")


@dataclass
class EncoderConfig:
    name: str = "multilingual-e5-small-offline"
    max_subwords: int = 250
    batch_size: int = 32
    device: str | None = None
    precision: str = "fp32"  # "fp32" | "int8": linear layers dynamically quantised (CPU)
    runtime: str = "torch"  # "torch" | "onnx": ONNX Runtime on an exported graph (CPU)
    # The encoder's top k layers trained with every model (0: all frozen, as in pfpyro 0.1);
    # the states of the layer below are cached instead.
    train_top: int = 0


@dataclass
class PredictConfig:
    bma_samples: int = 100  # Bayesian model averaging (paper §3.2: 100)
    entropy_sentences: int | None = 800  # per test set, for Fig. 3 (paper §5.3: 800)


# -- the typed settings behind the free-form ``train:`` and ``baselines:`` sections -----------
# They live here, free of torch, so that a whole config is checked in well under a second.

ELBO_NAMES = ("trace", "meanfield")  # Trace_ELBO | TraceMeanField_ELBO (infer/trainer.py)
#: Lightning strategies of data-parallel training (``pfpyro train --devices``,
#: infer/distributed.py).
DDP_STRATEGIES = ("ddp", "ddp_spawn")

#: `pfpyro suggest`'s ranking strategies (pfpyro.infer.acquisition); here, free of torch, for
#: the CLI's parser.
ACQUISITION_STRATEGIES: tuple[str, ...] = ("bald", "entropy", "random")
PAIR_SAMPLING = ("uniform", "size")


COMPONENT_KINDS = ("prior", "hypernet", "head", "guide")


MODEL_INITS: tuple[str, ...] = ("random", "jm")


@dataclass
class ModelConfig:
    """The model's architecture (YAML ``model:``): each component by its registered name.

    A component is a name (``hypernet: shared``) or a mapping of its name and the keyword
    arguments of its factory (``hypernet: {name: residual, hidden_dims: [], offset_scale:
    0.1}``); see :mod:`pfpyro.model.registry`. ``imports`` names modules to import first:
    those that register components of your own. The defaults are the paper's model.
    """

    latent_dim: int = 100  # h
    prior: str | dict[str, Any] = "standard-normal"  # p(t), p(l): N(0, I_h)
    hypernet: str | dict[str, Any] = "shared"  # f_psi, f_phi: the paper's padded output
    head: str | dict[str, Any] = "softmax"  # p(y | x, θ)
    guide: str | dict[str, Any] = "lr"  # q(t) q(l): "lr" (PF-lr, rank 10) or "d" (PF-d)
    standardize: bool = True  # x = (state − mean) / std over the seen training words
    imports: list[str] = field(default_factory=list)
    # Where SVI starts: "random" (the paper's initialisation) or "jm": each task's base θ set
    # to the joint multilingual classifier fitted on the same data, the offsets at zero
    # (a hypernetwork with a base per task: residual, adapter; see pfpyro.model.anchor).
    init: str = "random"

    def component(self, kind: str) -> tuple[str, dict[str, Any]]:
        """(name, factory arguments) of the ``kind`` component."""
        value = getattr(self, kind)
        if isinstance(value, str):
            return value, {}
        if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
            raise ConfigError(f"model.{kind}: expected a name or a mapping with 'name'")
        args = {key: item for key, item in value.items() if key != "name"}
        return value["name"], args

    def with_guide(self, name: str, **args: Any) -> ModelConfig:
        """This architecture with the guide ``name`` (an experiment's pf-d and pf-lr units, a
        ``--guide`` flag); without ``args`` it keeps the section's own when they are for the
        same guide (PF-lr keeps its rank)."""
        current, current_args = self.component("guide")
        if not args and current == name:
            args = current_args
        return self.with_component("guide", name, **args)

    def with_component(self, kind: str, name: str, **args: Any) -> ModelConfig:
        """This architecture with the ``kind`` component replaced by ``name`` with ``args``."""
        if kind not in COMPONENT_KINDS:
            raise ConfigError(f"unknown component kind {kind!r}; one of {COMPONENT_KINDS}")
        return dataclasses.replace(self, **{kind: {"name": name, **args}})

    def validate(self) -> None:
        """ConfigError on a value no model can use (the component names are checked against
        the registries by :func:`pfpyro.model.description.check_model_config`)."""
        if self.latent_dim < 1:
            raise ConfigError(f"model.latent_dim must be at least 1, got {self.latent_dim}")
        if self.init not in MODEL_INITS:
            raise ConfigError(
                f"model.init: expected {' or '.join(MODEL_INITS)}, found {self.init!r}"
            )
        for kind in COMPONENT_KINDS:
            self.component(kind)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_components(imports: Sequence[str]) -> None:
    """Import the modules that register a model's own components: each a module name
    (``my_package.heads``) or the path of a ``.py`` file, imported once under its stem."""
    for entry in imports:
        try:
            if entry.endswith(".py"):
                path = Path(entry)
                if not path.is_file():
                    raise ImportError(f"no such file {path}")
                name = f"pfpyro_components_{path.stem}"
                if name not in sys.modules:
                    spec = importlib.util.spec_from_file_location(name, path)
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[name] = module
                    try:
                        spec.loader.exec_module(module)
                    except BaseException:
                        del sys.modules[name]
                        raise
            else:
                importlib.import_module(entry)
        except ImportError as error:
            raise ConfigError(
                f"model.imports: cannot import {entry!r}, which should register this model's "
                f"components: {error}"
            ) from None


#: How gradients are bounded before each Adam step: ``value``, ClippedAdam's clamp of every
#: element at ±clip_norm (pfpyro's default so far); ``norm``, the gradient of all parameters
#: scaled so that its global L2 norm is at most clip_norm (the direction kept); ``none``.
CLIP_MODES: tuple[str, ...] = ("value", "norm", "none")


@dataclass
class OptimConfig:
    """The optimiser (YAML ``optim:``): Pyro's ClippedAdam, per parameter."""

    lr: float = 1e-3
    clip_norm: float = 10.0  # the bound of ``clip`` (ClippedAdam's name for it)
    clip: str = "value"  # CLIP_MODES: per element (ClippedAdam), global norm, or none
    # The learning rate of the guide's q(t) and q(l) (None: lr). A latent vector is updated
    # only in the steps that draw one of its pairs, so it may want a larger rate than ψ, φ.
    latent_lr: float | None = None
    # The learning rate of a hypernetwork's per-task base classifiers (residual, adapter):
    # None: lr; 0 keeps them where they start (model.init: jm: JM's weights), so SVI moves
    # only the task and language effects around the anchor.
    base_lr: float | None = None
    lr_decay: float = 1.0  # ClippedAdam's lrd: lr multiplied by this every step
    weight_decay: float = 0.0  # L2 decay on the hypernetwork ψ, φ (not on the guide)
    # The learning rate of a trained encoder top (encoder.train_top ≥ 1): it starts from
    # pretrained weights; 5e-5 is the largest of BERT's fine-tuning rates (Devlin et al. 2019).
    top_lr: float = 5e-5

    def problems(self) -> list[str]:
        out = []
        if not self.weight_decay >= 0:
            out.append(f"weight_decay must be non-negative, got {self.weight_decay}")
        for name in ("lr", "clip_norm", "lr_decay", "top_lr"):
            if not getattr(self, name) > 0:
                out.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.base_lr is not None and not self.base_lr >= 0:
            out.append(f"base_lr must be non-negative, got {self.base_lr}")
        if self.latent_lr is not None and not self.latent_lr > 0:
            out.append(f"latent_lr must be positive, got {self.latent_lr}")
        if self.clip not in CLIP_MODES:
            out.append(f"clip {self.clip!r} is unknown; known: {', '.join(CLIP_MODES)}")
        return out


@dataclass
class TrainConfig:
    """How a model is trained: the SVI run and its optimiser (stored in every checkpoint).
    What is trained, the architecture, is a :class:`ModelConfig`."""

    batch_size: int = 32
    num_particles: int = 3  # vectorised Monte Carlo draws per step
    elbo: str = "trace"  # "trace" (Trace_ELBO) | "meanfield" (closed-form KL of t and l)
    kl_beta: float = 1.0  # β: weight of KL(t) + KL(l) against the likelihood (1: the ELBO)
    max_steps: int = 10_000
    eval_every: int = 500
    # The steps to evaluate at instead of every ``eval_every`` (a budget in epochs: the
    # pipeline turns selection.pf_epochs into steps); empty: every eval_every steps.
    eval_steps: list[int] = field(default_factory=list)
    patience: int = 10  # evaluations without improvement before stopping
    pair_sampling: str = "uniform"  # "uniform" | "size"
    pairs_per_step: int = 1  # P: pairs drawn per SVI step, vectorised (docs/model.md)
    seed: int = 0
    device: str | None = None  # None or "auto": CUDA when there is one
    log_every: int = 50
    tensorboard: bool = False
    progress: bool = True
    # Periodic checkpoints, every this many steps, so that a killed run loses at most that
    # many: None, a data-parallel run (--devices) every eval_every steps and a single-process
    # run at each evaluation only; 0, a data-parallel run writes none (a single-process run
    # still writes one at each evaluation).
    checkpoint_every: int | None = None
    # A data-parallel run's newest periodic checkpoints kept (RUN/lightning/step*.ckpt); a
    # single-process run has one checkpoint.pt, replaced atomically.
    keep_checkpoints: int = 2
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        if isinstance(self.optim, Mapping):
            self.optim = OptimConfig(**self.optim)

    def validate(self) -> None:
        """ConfigError on a value no run can use."""
        problems = []
        if self.elbo not in ELBO_NAMES:
            problems.append(f"elbo {self.elbo!r} (known: {', '.join(ELBO_NAMES)})")
        if self.pair_sampling not in PAIR_SAMPLING:
            problems.append(f"pair_sampling {self.pair_sampling!r} (known: uniform, size)")
        if self.max_steps < 0:  # 0: no SVI step, the initialisation itself (model.init: jm)
            problems.append(f"max_steps must be at least 0, got {self.max_steps}")
        for name in (
            "batch_size",
            "num_particles",
            "eval_every",
            "log_every",
            "pairs_per_step",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.patience < 1:
            problems.append(f"patience must be at least 1, got {self.patience}")
        if any(not isinstance(k, int) or k < 1 for k in self.eval_steps):
            problems.append(f"eval_steps must be positive step numbers, got {self.eval_steps}")
        if not self.kl_beta >= 0:
            problems.append(f"kl_beta must be non-negative, got {self.kl_beta}")
        every = self.checkpoint_every
        if every is not None and (
            isinstance(every, bool) or not isinstance(every, int) or every < 0
        ):
            problems.append(
                f"checkpoint_every must be a step count >= 0 (0: none) or null, got {every!r}"
            )
        keep = self.keep_checkpoints
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            problems.append(f"keep_checkpoints must be at least 1, got {keep!r}")
        problems += self.optim.problems()
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training config fields: {', '.join(unknown)}")
        return cls(**dict(values))


# pfpyro 0.1 kept the architecture and the optimiser in ``train:``; such configs still load.
LEGACY_MODEL_KEYS = (
    "guide", "rank", "latent_dim", "hidden_dims", "init_variance", "hypernet", "offset_scale",
    "standardize",
)  # fmt: skip
LEGACY_OPTIM_KEYS = ("lr", "clip_norm", "lr_decay", "weight_decay")


def migrate_legacy_train(values: dict[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """A config mapping whose ``train:`` holds pfpyro 0.1's architecture or optimiser keys,
    rewritten with them in ``model:`` and ``optim:``; and the keys that moved (to warn)."""
    train = dict(values.get("train") or {})
    legacy = [key for key in (*LEGACY_MODEL_KEYS, *LEGACY_OPTIM_KEYS) if key in train]
    if not legacy:
        return values, []
    clash = [s for s in ("model", "optim") if values.get(s)]
    if clash:
        raise ConfigError(
            f"{where}: train: {', '.join(legacy)} belong in model:/optim:, which the file also "
            f"has ({', '.join(clash)}); move them there"
        )
    model: dict[str, Any] = {}
    optim = {key: train.pop(key) for key in LEGACY_OPTIM_KEYS if key in train}
    for key in ("latent_dim", "standardize"):
        if key in train:
            model[key] = train.pop(key)
    guide = train.pop("guide", "lr")
    rank = train.pop("rank", None)
    model["guide"] = {"name": guide, "rank": rank} if guide == "lr" and rank else guide
    hypernet: dict[str, Any] = {"name": train.pop("hypernet", "shared")}
    for key in ("hidden_dims", "init_variance"):
        if key in train:
            hypernet[key] = train.pop(key)
    offset = train.pop("offset_scale", None)
    if offset is not None and hypernet["name"] == "residual":
        hypernet["offset_scale"] = offset
    model["hypernet"] = hypernet
    return {**values, "train": train, "model": model, "optim": optim}, legacy


@dataclass(frozen=True)
class LinearConfig:
    """How a :class:`LinearTagger` is trained; every baseline takes one.

    ``epochs`` passes over the training sentences, at most ``max_steps`` updates in all;
    ``patience`` epochs without a better dev loss stop training early (only with dev data).
    ``standardize`` centres and scales each feature by its training mean and std (part of the
    model, applied again at prediction), which makes Adam's step size mean the same thing for
    every encoder. ``threads`` caps torch's intra-op threads while training (None: leave them
    alone): a linear layer on a mini-batch is too small to gain from more, and on a busy
    2-core machine extra threads made training 30 times slower (measured: 1.8 s vs 53 s).
    """

    epochs: int = 10
    lr: float = 5e-3
    batch_size: int = 32
    max_steps: int | None = None
    patience: int = 2
    weight_decay: float = 0.0
    standardize: bool = True
    device: str | None = "cpu"
    threads: int | None = 1
    top_lr: float = 5e-5  # a trained encoder top's learning rate (as OptimConfig.top_lr)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.top_lr <= 0:
            raise ValueError("epochs and batch_size must be positive, lr and top_lr > 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be positive when given")


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields, but optim
    baselines: dict[str, Any] = field(default_factory=dict)  # LinearTagger fit settings
    predict: PredictConfig = field(default_factory=PredictConfig)
    models: list[str] = field(default_factory=lambda: ["pf-d", "pf-lr", *BASELINE_MODELS])
    seeds: list[int] = field(default_factory=lambda: [0])
    source: str | None = None  # the YAML file it came from

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def train_config(self, seed: int, **overrides: Any) -> TrainConfig:
        """The :class:`TrainConfig` of this run for ``seed`` (with the ``optim:`` section)."""
        values = {**self.train, "seed": seed, "optim": self.optim, **overrides}
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
        raise ConfigError(unknown_keys_message(where, unknown, known))
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            kwargs[key] = _build(hint, value or {}, f"{where}.{key}")
        else:
            kwargs[key] = _check_type(value, hint, f"{where}.{key}")
    return cls(**kwargs)


def unknown_keys_message(where: str, unknown: list[str], known: set[str]) -> str:
    """One line: the unknown keys, each with its closest known key where there is one."""
    named = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        named.append(f"{key} (did you mean {close[0]}?)" if close else key)
    return f"{where}: unknown key(s) {', '.join(named)}; known: {', '.join(sorted(known))}"


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [o for o in typing.get_args(hint) if o is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        for option in options[:-1]:  # the first that takes the value, else the last's error
            try:
                return _check_type(value, option, where)
            except ConfigError:
                pass
        hint = options[-1]
        origin = typing.get_origin(hint)
    base = origin or hint
    if base is Any:
        return value
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is tuple and isinstance(value, list):  # YAML has lists only
        return tuple(value)
    if not isinstance(value, base) or (base is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {getattr(base, '__name__', base)}, found {value!r}")
    return value


def config_from_dict(values: dict[str, Any], where: str = "config") -> ExperimentConfig:
    """An ExperimentConfig from plain values (a YAML file's, or a run.json's record).

    pfpyro 0.1's ``train:`` keys for the architecture and the optimiser are moved to
    ``model:`` and ``optim:``, with a warning that says where they belong now.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, found {type(values).__name__}")
    values, moved = migrate_legacy_train(values, where)
    if moved:
        warnings.warn(
            f"{where}: train: {', '.join(moved)} now belong in model: (the architecture) and "
            "optim: (the optimiser); read as such",
            FutureWarning,
            stacklevel=2,
        )
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
    config.model.imports = [  # a .py file is named relative to the config
        str((path.parent / entry).resolve()) if entry.endswith(".py") else entry
        for entry in config.model.imports
    ]
    problems = config.data.problems()
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
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
    cap = selection.validation_cap
    if cap is not None and cap != "all" and not (isinstance(cap, int) and cap >= 1):
        raise ConfigError(
            f"{path}: selection.validation_cap: expected a positive number or 'all', found {cap!r}"
        )
    if selection.per_task and selection.mode != "zero-shot":
        raise ConfigError(
            f"{path}: selection.per_task needs selection.mode: zero-shot (seen-dev early "
            "stopping has no validation pairs to choose per task on)"
        )
    if any(not epochs > 0 for epochs in selection.pf_epochs):
        raise ConfigError(f"{path}: selection.pf_epochs must be positive")
    if any(not scale > 0 for scale in selection.offset_scales):
        raise ConfigError(
            f"{path}: selection.offset_scales must be positive (scale 0, the joint classifier "
            "itself, is step 0 of model.init: jm)"
        )
    if config.partition.scheme not in PARTITION_SCHEMES:
        raise ConfigError(
            f"{path}: partition.scheme: expected {', '.join(PARTITION_SCHEMES)}, "
            f"found {config.partition.scheme!r}"
        )
    check_model_sections(config, str(path))
    return config


def check_encoder_runtime(encoder: EncoderConfig, where: str) -> None:
    """``encoder.runtime`` is known, and ONNX Runtime is installed when it is asked for."""
    if encoder.runtime not in ENCODER_RUNTIMES:
        close = difflib.get_close_matches(str(encoder.runtime), ENCODER_RUNTIMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{where}: encoder.runtime {encoder.runtime!r} is unknown{hint}; known: "
            f"{', '.join(ENCODER_RUNTIMES)}"
        )
    if encoder.runtime == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        raise ConfigError(
            f"{where}: encoder.runtime onnx needs ONNX Runtime: pip install 'pfpyro[onnx]'"
        )
    if encoder.runtime == "onnx" and encoder.device not in (None, "cpu"):
        raise ConfigError(
            f"{where}: encoder.runtime onnx runs on the CPU, not on device {encoder.device!r}"
        )


def check_model_sections(config: ExperimentConfig, where: str) -> None:
    """The free-form ``train:`` and ``baselines:`` sections checked key by key and type by
    type against :class:`TrainConfig` and :class:`LinearConfig`, without importing torch: a
    typo fails at load, in well under a second. Values that need the model's registries
    (a guide's name) are checked by :func:`pfpyro.pipeline.setup.prepare`, still before any work."""
    if "optim" in config.train:
        raise ConfigError(f"{where}: train.optim: the optimiser has its own section, optim:")
    _build(TrainConfig, config.train, f"{where}: train")
    try:
        config.model.validate()
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    try:
        _build(LinearConfig, config.baselines, f"{where}: baselines")
    except ValueError as error:
        raise ConfigError(f"{where}: baselines: {error}") from None
    if config.encoder.precision not in ENCODER_PRECISIONS:
        raise ConfigError(
            f"{where}: encoder.precision {config.encoder.precision!r} is unknown; known: "
            f"{', '.join(ENCODER_PRECISIONS)}"
        )
    check_encoder_runtime(config.encoder, where)
    top = config.encoder.train_top
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ConfigError(f"{where}: encoder.train_top must be an integer ≥ 0, found {top!r}")
    if top and config.encoder.precision != "fp32":
        raise ConfigError(
            f"{where}: encoder.train_top {top} trains the top layers, which needs precision "
            f"fp32, not {config.encoder.precision}"
        )
    if top and config.encoder.runtime != "torch":
        raise ConfigError(
            f"{where}: encoder.train_top {top} trains the top layers, which needs runtime torch, "
            f"not {config.encoder.runtime}"
        )
    if top and int(config.train.get("pairs_per_step", 1)) > 1:
        raise ConfigError(
            f"{where}: encoder.train_top {top} does not take train.pairs_per_step > 1 (one pair "
            "per step only)"
        )

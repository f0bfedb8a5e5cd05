"""One typed description of a parameter-factorization model: what ``model.json`` holds.

It names the four components by their registered names with their arguments (prior,
hypernetwork, head, guide; see :mod:`pfpyro.model.registry`) and holds what the data decide:
the tasks and languages, each task's label names and description (the catalog's, see
:mod:`pfpyro.data.tasks`, so a run folder says what its tasks are), the feature width and the
features' standardising moments. :meth:`ModelDescription.build` makes the model and guide
from it, so a run folder rebuilds any model whose components are registered, pfpyro's or the user's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pfpyro
from pfpyro.config import COMPONENT_KINDS, ModelConfig, import_components
from pfpyro.errors import ConfigError

if TYPE_CHECKING:
    from pfpyro.model.factorization import ParameterFactorization
    from pfpyro.model.guides import FactorizationGuide

FORMAT = "pfpyro-model"
FORMAT_VERSION = 2


def _plain(value: Any) -> Any:
    """JSON-ready copies: tuples become lists, recursively."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Component:
    """A registered component's name and the keyword arguments its factory takes."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # JSON's form (lists, not tuples), so a description equals its round trip.
        object.__setattr__(self, "args", _plain(dict(self.args)))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "args": _plain(dict(self.args))}

    @classmethod
    def from_json(cls, value: Any, where: str) -> Component:
        """From ``{"name": ..., "args": {...}}``, or from a bare name."""
        if isinstance(value, str):
            return cls(value)
        if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
            raise ConfigError(f"{where}: expected a component {{name, args}}, found {value!r}")
        args = value.get("args") or {}
        if not isinstance(args, Mapping) or set(value) - {"name", "args"}:
            raise ConfigError(f"{where}: a component holds only 'name' and 'args'")
        return cls(value["name"], dict(args))


@dataclass(frozen=True)
class ModelDescription:
    """Everything needed to rebuild a model and its guide (see the module notes)."""

    tasks: tuple[str, ...]
    langs: tuple[str, ...]
    labels: Mapping[str, tuple[str, ...]]  # each task's label names, in id order
    feature_dim: int
    latent_dim: int = 100
    prior: Component = Component("standard-normal")
    hypernet: Component = Component("shared")
    head: Component = Component("softmax")
    guide: Component = Component("lr", {"rank": 10})
    feature_mean: tuple[float, ...] | None = None
    feature_scale: tuple[float, ...] | None = None
    imports: tuple[str, ...] = ()  # modules that register user components
    task_specs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # TaskSpec JSON
    # The trained top of the encoder (EncoderTop.spec: its layer class, model config and layer
    # numbers), or None when the model reads frozen word features.
    encoder_top: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the containers once
        set_(self, "tasks", tuple(sorted(self.tasks)))
        set_(self, "langs", tuple(sorted(self.langs)))
        set_(self, "labels", {t: tuple(str(x) for x in self.labels[t]) for t in self.labels})
        set_(self, "imports", tuple(self.imports))
        set_(self, "task_specs", _plain(dict(self.task_specs)))
        if self.encoder_top is not None:
            set_(self, "encoder_top", _plain(dict(self.encoder_top)))
        for name in ("feature_mean", "feature_scale"):
            value = getattr(self, name)
            if value is not None:
                set_(self, name, tuple(float(v) for v in value))
        missing = [task for task in self.tasks if task not in self.labels]
        if missing:
            raise ConfigError(f"model description: no label names for task(s) {missing}")
        if not self.tasks or not self.langs:
            raise ConfigError("the model needs at least one task and one language")

    @classmethod
    def for_sizes(
        cls,
        tasks: Sequence[str],
        langs: Sequence[str],
        num_classes: Mapping[str, int],
        feature_dim: int,
        **fields: Any,
    ) -> ModelDescription:
        """A description from label counts (names: the task's label set, else "0", "1", ...);
        ``fields`` are the other fields (components as :class:`Component` or bare names)."""
        for kind in COMPONENT_KINDS:
            if isinstance(fields.get(kind), str):
                fields[kind] = Component(fields[kind])
        labels = {task: default_labels(task, num_classes[task]) for task in tasks}
        fields.setdefault("task_specs", known_task_specs(labels))
        return cls(tuple(tasks), tuple(langs), labels, int(feature_dim), **fields)

    @classmethod
    def from_config(
        cls,
        model: ModelConfig,
        tasks: Sequence[str],
        langs: Sequence[str],
        num_classes: Mapping[str, int],
        feature_dim: int,
        *,
        feature_mean: Sequence[float] | None = None,
        feature_scale: Sequence[float] | None = None,
    ) -> ModelDescription:
        """The description of ``model``'s architecture (a config's ``model:`` section) for
        the data's sizes and, when the model standardises its features, their moments."""
        return cls.for_sizes(
            tasks,
            langs,
            num_classes,
            feature_dim,
            latent_dim=model.latent_dim,
            **{kind: Component(*model.component(kind)) for kind in COMPONENT_KINDS},
            feature_mean=feature_mean,
            feature_scale=feature_scale,
            imports=tuple(model.imports),
        )

    @property
    def num_classes(self) -> dict[str, int]:
        return {task: len(self.labels[task]) for task in self.tasks}

    def replace(self, **changes: Any) -> ModelDescription:
        return dataclasses.replace(self, **changes)

    # -- building --------------------------------------------------------------------------
    def import_modules(self) -> None:
        """Import the modules named in ``imports`` (they register user components)."""
        import_components(self.imports)

    def build(self) -> tuple[ParameterFactorization, FactorizationGuide]:
        """A fresh model and guide: each component made by its registered factory."""
        import torch

        from pfpyro.encode.top import EncoderTop
        from pfpyro.model.factorization import ParameterFactorization

        self.import_modules()
        head = _make("head", self.head, self.feature_dim, max(self.num_classes.values()))
        prior = _make("prior", self.prior, self.tasks, self.langs, self.latent_dim)
        out_dims = [head.params_for(self.num_classes[task]) for task in self.tasks]
        from pfpyro.model.capabilities import declares
        from pfpyro.model.registry import lookup

        sizes = (self.latent_dim, out_dims)
        if declares(lookup("hypernet", self.hypernet.name), "needs_feature_dim"):
            hypernet = _make("hypernet", self.hypernet, *sizes, feature_dim=self.feature_dim)
        else:
            hypernet = _make("hypernet", self.hypernet, *sizes)
        factorization = ParameterFactorization(
            self.tasks,
            self.langs,
            self.feature_dim,
            num_classes=self.num_classes,
            latent_dim=self.latent_dim,
            prior=prior,
            hypernet=hypernet,
            head=head,
            feature_mean=None if self.feature_mean is None else torch.tensor(self.feature_mean),
            feature_scale=None if self.feature_scale is None else torch.tensor(self.feature_scale),
            encoder_top=None
            if self.encoder_top is None
            else EncoderTop.from_spec(self.encoder_top),
        )
        factorization.description = self
        return factorization, _make("guide", self.guide, factorization)

    # -- JSON ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": pfpyro.__version__,
            "tasks": list(self.tasks),
            "langs": list(self.langs),
            "labels": {task: list(self.labels[task]) for task in self.tasks},
            "feature_dim": int(self.feature_dim),
            "latent_dim": int(self.latent_dim),
            "prior": self.prior.to_json(),
            "hypernet": self.hypernet.to_json(),
            "head": self.head.to_json(),
            "guide": self.guide.to_json(),
            "feature_mean": None if self.feature_mean is None else list(self.feature_mean),
            "feature_scale": None if self.feature_scale is None else list(self.feature_scale),
            "imports": list(self.imports),
            "task_specs": {task: dict(spec) for task, spec in self.task_specs.items()},
            "encoder_top": None if self.encoder_top is None else dict(self.encoder_top),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "model.json") -> ModelDescription:
        """From :meth:`to_json`'s form, or from pfpyro 0.1's flat ``model.json``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a JSON object")
        if "format_version" not in data:
            data = _from_version_1(data, where)
        elif data["format_version"] != FORMAT_VERSION:
            raise ConfigError(
                f"{where}: model format {data['format_version']!r}; this pfpyro reads "
                f"{FORMAT_VERSION} (and 1)"
            )
        needed = ("tasks", "langs", "labels", "feature_dim", "latent_dim", "guide")
        missing = [key for key in needed if key not in data]
        if missing:
            raise ConfigError(f"{where}: model description lacks {', '.join(missing)}")
        try:
            description = cls(
                tasks=tuple(data["tasks"]),
                langs=tuple(data["langs"]),
                labels={task: tuple(names) for task, names in data["labels"].items()},
                feature_dim=int(data["feature_dim"]),
                latent_dim=int(data["latent_dim"]),
                prior=Component.from_json(data.get("prior", "standard-normal"), f"{where}: prior"),
                hypernet=Component.from_json(data.get("hypernet", "shared"), f"{where}: hypernet"),
                head=Component.from_json(data.get("head", "softmax"), f"{where}: head"),
                guide=Component.from_json(data["guide"], f"{where}: guide"),
                feature_mean=data.get("feature_mean"),
                feature_scale=data.get("feature_scale"),
                imports=tuple(data.get("imports") or ()),
                task_specs=dict(data.get("task_specs") or {}),
                encoder_top=data.get("encoder_top"),
            )
        except (TypeError, ValueError, AttributeError) as error:
            raise ConfigError(f"{where}: malformed model description ({error})") from error
        description.add_tasks(where)
        return description

    def add_tasks(self, where: str = "model.json") -> None:
        """Make this model's task descriptions known to the process (scoring and reports ask
        :func:`pfpyro.data.tasks.task_spec`); ConfigError if one differs from a known one."""
        from pfpyro.data.tasks import add_tasks, parse_task

        specs = [parse_task(where, task, dict(raw)) for task, raw in self.task_specs.items()]
        for spec in specs:
            if spec.labels != self.labels.get(spec.task):
                raise ConfigError(
                    f"{where}: task {spec.task!r} has labels {list(self.labels.get(spec.task, ()))}"
                    f" but its description lists {list(spec.labels)}"
                )
        add_tasks(specs, where)


def check_model_config(model: ModelConfig) -> None:
    """A ModelConfig's values, and each of its components registered (after its imports):
    ConfigError otherwise, before any work."""
    from pfpyro.model.registry import lookup

    model.validate()
    import_components(model.imports)
    for kind in COMPONENT_KINDS:
        lookup(kind, model.component(kind)[0])


def known_task_specs(labels: Mapping[str, Sequence[str]]) -> dict[str, dict[str, Any]]:
    """The descriptions (:meth:`TaskSpec.to_json`) of the tasks this process knows whose
    labels are ``labels[task]``; a task without one is left out."""
    from pfpyro.data.tasks import find_task

    specs = {task: find_task(task) for task in labels}
    return {
        task: spec.to_json()
        for task, spec in specs.items()
        if spec is not None and spec.labels == tuple(labels[task])
    }


def default_labels(task: str, count: int | None = None) -> tuple[str, ...]:
    """A task's label names: its label set when pfpyro knows the task, else "0".."count-1"."""
    from pfpyro.data.tasks import find_task

    spec = find_task(task)
    if spec is not None and (count is None or count == len(spec.labels)):
        return spec.labels
    if count is None:
        raise ConfigError(f"task {task!r} has no label set; pass num_classes")
    return tuple(str(k) for k in range(int(count)))


def _make(kind: str, component: Component, *sizes: Any, **supplied: Any) -> Any:
    from pfpyro.model.registry import lookup

    factory = lookup(kind, component.name)
    try:
        return factory(*sizes, **supplied, **dict(component.args))
    except TypeError as error:
        raise ConfigError(
            f"{kind} {component.name!r}: bad arguments {dict(component.args)} ({error})"
        ) from error


def _from_version_1(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """pfpyro 0.1's flat model.json in today's form (the same model, the same parameters)."""
    try:
        hypernet = data.get("hypernet", "shared")
        args: dict[str, Any] = {
            "hidden_dims": list(data["hidden_dims"]),
            "init_variance": float(data.get("init_variance") or 1e-3),
        }
        if hypernet == "residual":
            args["offset_scale"] = float(data.get("offset_scale", 1.0))
        guide_args = {"rank": int(data["rank"])} if data.get("rank") is not None else {}
        if data.get("head", "SoftmaxHead") != "SoftmaxHead":
            raise ConfigError(f"{where}: head {data['head']!r} of a version-1 model is unknown")
        return {
            **{k: data[k] for k in ("tasks", "langs", "feature_dim", "latent_dim")},
            "labels": {
                task: list(default_labels(task, int(n))) for task, n in data["num_classes"].items()
            },
            "prior": "standard-normal",
            "hypernet": {"name": hypernet, "args": args},
            "head": "softmax",
            "guide": {"name": data["guide"], "args": guide_args},
            "feature_mean": data.get("feature_mean"),
            "feature_scale": data.get("feature_scale"),
        }
    except KeyError as error:
        raise ConfigError(f"{where}: model description lacks {error}") from None


__all__ = [
    "Component",
    "ModelDescription",
    "check_model_config",
    "default_labels",
    "known_task_specs",
]

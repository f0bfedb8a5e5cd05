"""Tasks are data: what pfpyro knows of a task is one :class:`TaskSpec`, read from a catalog.

A catalog's ``tasks:`` section describes each task once: its labels in id order, its outside
tag when it is IOB2 span labelling, the metric it is reported by, how a CoNLL-U file gives its
tags, its display name and colour, and whether the LS baseline caps its source data. The
shipped catalog's section (``experiments/data/paper33.yaml``) defines ``pos``, ``ner`` and
``deprel``; a catalog may add tasks of its own. Every model, metric and report asks
:func:`task_spec` instead of keeping a table of its own, and ``model.json`` keeps the specs of
the tasks a model was trained on, so a saved run describes itself.

A task name means one thing in a process: defining a known name differently is an error that
names both places.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pfpyro.data.paths import default_catalog_path
from pfpyro.errors import ConfigError

#: The metrics a task can be reported by: token accuracy, or entity-level F1 of IOB2 spans.
METRICS: tuple[str, ...] = ("accuracy", "span_f1")

#: What a CoNLL-U file can give a task: the UPOS column, or the universal dependency relation
#: (the DEPREL column without its language-specific subtype: ``nmod:poss`` is ``nmod``).
CONLLU_FIELDS: tuple[str, ...] = ("upos", "deprel")

_KEYS = frozenset(
    {"name", "short", "labels", "metric", "outside", "conllu", "colour", "source_cap"}
)
_IOB2 = re.compile(r"^[BI]-\S+$")


@dataclass(frozen=True)
class TaskSpec:
    """One token-labelling task, as a catalog describes it."""

    task: str  # the name in catalogs, partitions and results ("pos")
    labels: tuple[str, ...]  # in id order: the classifier's classes
    metric: str = "accuracy"  # the headline metric (one of METRICS)
    outside: str | None = None  # IOB2 span labelling: the outside tag ("O")
    conllu: str | None = None  # the CoNLL-U field that gives the tags (one of CONLLU_FIELDS)
    name: str = ""  # display name in figures ("POS tagging")
    short: str = ""  # short name in tables ("POS")
    colour: str = "tab:gray"  # matplotlib colour of the task in figures
    source_cap: bool = False  # LS: cap the source to the seen languages' total (footnote 12)

    @property
    def spans(self) -> bool:
        """Whether the labels are IOB2 spans (span metrics, valid-BIO decoding)."""
        return self.outside is not None

    @property
    def title(self) -> str:
        return self.name or self.task

    @property
    def abbreviation(self) -> str:
        return self.short or self.task.upper()

    def to_json(self) -> dict[str, Any]:
        """The spec as a catalog (or ``model.json``) writes it, without the task's name."""
        out = asdict(self)
        del out["task"]
        out["labels"] = list(self.labels)
        return out


def parse_task(where: str, task: str, raw: Any) -> TaskSpec:
    """A catalog's ``tasks.<task>`` entry, checked; ConfigError names ``where`` and the key."""
    entry = f"{where}, tasks.{task}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{entry}: expected a mapping with labels, metric, ...")
    unknown = sorted(str(k) for k in raw if k not in _KEYS)
    if unknown:
        from pfpyro.config import unknown_keys_message

        raise ConfigError(unknown_keys_message(entry, unknown, set(_KEYS)))
    labels = raw.get("labels")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(x, str) and x and not x.isspace() for x in labels)
    ):
        raise ConfigError(f"{entry}: 'labels' must be a list of at least two label names")
    if len(set(labels)) != len(labels):
        twice = sorted({x for x in labels if labels.count(x) > 1})
        raise ConfigError(f"{entry}: 'labels' lists {', '.join(twice)} more than once")
    metric = raw.get("metric", "accuracy")
    if metric not in METRICS:
        raise ConfigError(
            f"{entry}: 'metric' must be one of {', '.join(METRICS)}, found {metric!r}"
        )
    outside = raw.get("outside")
    if outside is not None:
        if outside not in labels:
            raise ConfigError(f"{entry}: outside tag {outside!r} is not among the labels")
        bad = [x for x in labels if x != outside and not _IOB2.match(x)]
        if bad:
            raise ConfigError(
                f"{entry}: with an outside tag the other labels must be IOB2 (B-X, I-X), "
                f"found {', '.join(bad[:5])}"
            )
    if metric == "span_f1" and outside is None:
        raise ConfigError(f"{entry}: metric span_f1 needs IOB2 labels and an 'outside' tag")
    conllu = raw.get("conllu")
    if conllu is not None and conllu not in CONLLU_FIELDS:
        raise ConfigError(
            f"{entry}: 'conllu' must be one of {', '.join(CONLLU_FIELDS)}, found {conllu!r}"
        )
    source_cap = raw.get("source_cap", False)
    if not isinstance(source_cap, bool):
        raise ConfigError(f"{entry}: 'source_cap' must be true or false")
    text = {key: raw.get(key, "") for key in ("name", "short")}
    for key, value in text.items():
        if not isinstance(value, str):
            raise ConfigError(f"{entry}: '{key}' must be a string")
    colour = raw.get("colour", "tab:gray")
    if not isinstance(colour, str) or not colour:
        raise ConfigError(f"{entry}: 'colour' must be a matplotlib colour name")
    return TaskSpec(
        task=str(task),
        labels=tuple(labels),
        metric=metric,
        outside=outside,
        conllu=conllu,
        colour=colour,
        source_cap=source_cap,
        **text,
    )


def parse_tasks(where: str, raw: Any) -> dict[str, TaskSpec]:
    """A catalog's ``tasks:`` section (None: no tasks of its own)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'tasks' must map task names to their descriptions")
    return {str(task): parse_task(where, str(task), spec) for task, spec in raw.items()}


# ---------------------------------------------------------------------------------------------
# The tasks a process knows: the shipped catalog's, and those catalogs and runs add.

_added: dict[str, tuple[TaskSpec, str]] = {}


@functools.cache
def shipped_tasks() -> Mapping[str, TaskSpec]:
    """The shipped catalog's task table: the tasks every catalog knows."""
    import yaml

    path = default_catalog_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"the shipped catalog {path} cannot be read ({error})") from None
    specs = parse_tasks(f"catalog {path}", raw.get("tasks") if isinstance(raw, dict) else None)
    if not specs:
        raise ConfigError(f"the shipped catalog {path} has no 'tasks:' section")
    return specs


def add_tasks(specs: Iterable[TaskSpec], where: str | Path) -> None:
    """Make ``specs`` known to this process (a catalog's or a run's own tasks). The same
    definition again is fine; a different one for a known name is a ConfigError naming both."""
    for spec in specs:
        known, source = _known(spec.task)
        if known is None:
            _added[spec.task] = (spec, str(where))
        elif known != spec:
            raise ConfigError(
                f"{where}: task {spec.task!r} differs from its definition in {source}; "
                "give the new task another name"
            )


def forget_task(task: str) -> None:
    """Drop a task that :func:`add_tasks` added (for tests and notebooks)."""
    _added.pop(task, None)


def _known(task: str) -> tuple[TaskSpec | None, str]:
    if task in _added:
        return _added[task]
    shipped = shipped_tasks()
    if task in shipped:
        return shipped[task], f"catalog {default_catalog_path()}"
    return None, ""


def known_tasks() -> list[str]:
    """Every task this process knows, in :func:`task_order`."""
    return task_order({*shipped_tasks(), *_added})


def find_task(task: str) -> TaskSpec | None:
    """``task``'s description, or None for a task this process does not know (a result of a
    catalog's own task read without its catalog, a synthetic task)."""
    return _known(task)[0]


def task_spec(task: str) -> TaskSpec:
    """``task``'s description; a KeyError names the known tasks and where to define one."""
    spec, _ = _known(task)
    if spec is None:
        raise KeyError(
            f"unknown task {task!r}; known tasks: {', '.join(known_tasks())} (define a task "
            "under 'tasks:' of its catalog)"
        )
    return spec


def label_set(task: str) -> tuple[str, ...]:
    """The ordered labels of ``task`` (ids index them in every model and metric)."""
    return task_spec(task).labels


def task_order(tasks: Iterable[str]) -> list[str]:
    """Distinct ``tasks`` in the shipped table's order (POS, NER, ... as in the paper), then
    the others sorted."""
    present = set(tasks)
    first = [t for t in shipped_tasks() if t in present]
    return first + sorted(present - set(first))


__all__ = [
    "CONLLU_FIELDS",
    "METRICS",
    "TaskSpec",
    "add_tasks",
    "find_task",
    "forget_task",
    "known_tasks",
    "label_set",
    "parse_task",
    "parse_tasks",
    "shipped_tasks",
    "task_order",
    "task_spec",
]

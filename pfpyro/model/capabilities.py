"""What a component says it needs and allows, and the one check that reads it.

Components (priors, hypernetworks, heads, guides, and the baselines) declare their
capabilities as class attributes; a component that declares nothing takes the defaults of
:data:`DEFAULTS`. No code tests a component by its name: the whole-config check
(:func:`pfpyro.pipeline.setup.check_before_work`) and the trainer call :func:`check_components`,
and the pipeline reads :func:`declares` for what it has to supply. See docs/design.md §6.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pfpyro.config import COMPONENT_KINDS, ModelConfig, import_components
from pfpyro.errors import ConfigError

DEFAULTS: dict[str, bool] = {
    # hypernet: each task's θ is generated apart (its own width), so θ of several tasks
    # cannot be stacked in one tensor
    "task_blocked": False,
    # any component: usable in a step over several pairs (train.pairs_per_step > 1); a
    # task-blocked hypernetwork is not
    "supports_pairs_per_step": True,
    # hypernet: `pfpyro extend` can add a task (its θ fits the trained output)
    "accepts_new_tasks": False,
    # prior or baseline: reads each language's URIEL code from the catalog's language table
    # (a prior then completes its arguments with ``complete_args``)
    "needs_language_table": False,
    # baseline: trains on the source language's data too (``english_train``)
    "needs_source_data": False,
    # hypernet: its factory takes the head's feature width (``feature_dim=e``)
    "needs_feature_dim": False,
    # hypernet: holds a point-estimated base θ per task (``base[i]``, task i's width) and
    # ``zero_offsets()``, so ``model.init: jm`` can start it at the joint classifier
    "with_base": False,
}


def declares(component: Any, capability: str) -> bool:
    """Whether ``component`` (a class or factory) declares ``capability``; its default
    (:data:`DEFAULTS`) when it says nothing. A task-blocked component does not support
    several pairs per step unless it says so."""
    if capability not in DEFAULTS:
        raise KeyError(f"unknown capability {capability!r}; known: {', '.join(DEFAULTS)}")
    if capability == "supports_pairs_per_step" and not hasattr(component, capability):
        return not declares(component, "task_blocked")
    return bool(getattr(component, capability, DEFAULTS[capability]))


def component_names(model: ModelConfig | Any) -> dict[str, str]:
    """{kind: registered name} of a :class:`ModelConfig` or a model description."""
    if isinstance(model, ModelConfig):
        return {kind: model.component(kind)[0] for kind in COMPONENT_KINDS}
    return {kind: getattr(model, kind).name for kind in COMPONENT_KINDS}


def components(model: ModelConfig | Any) -> dict[str, tuple[str, Any]]:
    """{kind: (name, registered factory)} of a model's components (its ``imports`` first:
    they register user components)."""
    from pfpyro.model.registry import lookup

    import_components(getattr(model, "imports", ()))
    return {kind: (name, lookup(kind, name)) for kind, name in component_names(model).items()}


def check_components(model: ModelConfig | Any, *, pairs_per_step: int = 1) -> None:
    """ConfigError, naming the component and the capability, when ``model``'s components
    cannot train with ``pairs_per_step`` pairs per step."""
    if pairs_per_step <= 1:
        return
    for kind, (name, factory) in components(model).items():
        if declares(factory, "supports_pairs_per_step"):
            continue
        if declares(factory, "task_blocked"):
            raise ConfigError(
                f"pairs_per_step {pairs_per_step} needs a hypernetwork shared by the tasks; "
                f"model.{kind} {name!r} generates each task's θ apart (it declares "
                "task_blocked; use pairs_per_step 1)"
            )
        raise ConfigError(
            f"pairs_per_step {pairs_per_step}: model.{kind} {name!r} does not support several "
            "pairs per step (it declares supports_pairs_per_step = False; use 1)"
        )


def needing(names: Mapping[str, Any], capability: str) -> list[str]:
    """The names of ``names`` ({name: component}) that declare ``capability``."""
    return [name for name, component in names.items() if declares(component, capability)]


__all__ = [
    "DEFAULTS",
    "check_components",
    "component_names",
    "components",
    "declares",
    "needing",
]

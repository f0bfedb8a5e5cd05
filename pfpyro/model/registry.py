"""Registries of the model's four extension points: priors, hypernetworks, heads and guides.

A component is registered under a name with a decorator, in pfpyro or in user code::

    @register("head", "tempered-softmax")
    class TemperedSoftmaxHead(SoftmaxHead): ...

A config or ``model.json`` then names it (``head: {name: tempered-softmax, temperature: 2}``)
and :meth:`pfpyro.model.ModelDescription.build` calls the registered factory with the sizes
that kind of component receives and the named arguments:

- ``prior``: ``factory(tasks, langs, latent_dim, **args)`` → a
  :class:`~pfpyro.model.priors.LatentPrior`;
- ``hypernet``: ``factory(latent_dim, out_dims, **args)`` → a module mapping
  ``(t, l, task)`` to ``(f_psi, f_phi)``, t and l [..., h] broadcast against each other (a
  step over several pairs passes a task's t_i once, [..., 1, h], beside its n languages' l,
  [..., n, h]); ``out_dims[i]`` is the width of task i's θ (the
  head's ``params_for``); one that declares ``needs_feature_dim`` also gets
  ``feature_dim=e``;
- ``head``: ``factory(feature_dim, max_classes, **args)`` → a :class:`~pfpyro.model.heads.Head`;
- ``guide``: ``factory(factorization, **args)`` → a
  :class:`~pfpyro.model.guides.FactorizationGuide`.

A factory is any callable: a class or a function.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from pfpyro.config import COMPONENT_KINDS
from pfpyro.errors import ConfigError

KINDS = COMPONENT_KINDS

_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {kind: {} for kind in KINDS}

F = TypeVar("F", bound=Callable[..., Any])


#: The modules that register pfpyro's own components, imported before any lookup.
BUILTIN_MODULES = (
    "pfpyro.model.priors",
    "pfpyro.model.typology",
    "pfpyro.model.hypernet",
    "pfpyro.model.adapter",
    "pfpyro.model.heads",
    "pfpyro.model.guides",
)


def _check_kind(kind: str) -> dict[str, Callable[..., Any]]:
    if kind not in _REGISTRY:
        raise ConfigError(f"unknown component kind {kind!r}; known: {', '.join(KINDS)}")
    return _REGISTRY[kind]


def register(kind: str, name: str) -> Callable[[F], F]:
    """Decorator: make ``factory`` the ``kind`` component called ``name``.

    Registering the same factory twice is harmless (a re-imported module); another factory
    under a taken name is an error, so two extensions cannot silently replace each other.
    """
    table = _check_kind(kind)

    def decorate(factory: F) -> F:
        old = table.get(name)
        if old is not None and _qualified(old) != _qualified(factory):
            raise ConfigError(
                f"{kind} {name!r} is already registered ({_qualified(old)}); choose another name"
            )
        table[name] = factory
        return factory

    return decorate


def lookup(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered as ``name``; a ConfigError lists the known ones."""
    table = _check_kind(kind)
    _import_builtins()
    try:
        return table[name]
    except KeyError:
        raise ConfigError(
            f"unknown {kind} {name!r}; registered: {', '.join(sorted(table))} (a component "
            "defined in your own code is registered when its module is imported: name the "
            "module in the config's model.imports)"
        ) from None


def registered(kind: str) -> tuple[str, ...]:
    """The names registered for ``kind``, sorted."""
    _import_builtins()
    return tuple(sorted(_check_kind(kind)))


def _import_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def unregister(kind: str, name: str) -> None:
    """Forget the ``kind`` component ``name`` (tests and notebooks that redefine one)."""
    _check_kind(kind).pop(name, None)


def _qualified(factory: Callable[..., Any]) -> str:
    """Where a factory is defined: its file and qualified name (a module loaded twice, under
    two names, still defines the same factory)."""
    try:
        where = inspect.getfile(factory)
    except TypeError:
        where = getattr(factory, "__module__", "?")
    return f"{where}:{getattr(factory, '__qualname__', factory)}"


__all__ = ["KINDS", "lookup", "register", "registered", "unregister"]

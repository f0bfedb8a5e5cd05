"""The four baselines of the paper (§4.3), behind the PF model's predict interface.

Each fits on the seen pairs' training tensors (``train``: (task, lang) -> PairTensors; ``dev``
likewise, for early stopping only) and then tags any held-out pair through
``predict_proba(task, lang, features, mask)`` (:class:`pfpyro.predictor.TokenPredictor`):

- ``ns``: nearest source by URIEL similarity (:mod:`pfpyro.baselines.ns`);
- ``ls``: largest source, English (:mod:`pfpyro.baselines.ls`; needs ``english_train``);
- ``jm``: joint multilingual, one classifier per task (:mod:`pfpyro.baselines.jm`);
- ``bea``: Bayesian ensemble of the seen languages' classifiers (:mod:`pfpyro.baselines.bea`).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from pfpyro.baselines.bea import BayesianEnsemble, BEAFit, BEAPrior, fit_bea
from pfpyro.baselines.jm import JointMultilingual
from pfpyro.baselines.linear import LinearConfig, LinearTagger
from pfpyro.baselines.ls import LargestSource
from pfpyro.baselines.ns import NearestSource, SourceClassifiers
from pfpyro.data.batch import PairTensors
from pfpyro.errors import ConfigError
from pfpyro.model.capabilities import declares
from pfpyro.predictor import TokenPredictor

BASELINES: dict[str, type] = {
    "ns": NearestSource,
    "ls": LargestSource,
    "jm": JointMultilingual,
    "bea": BayesianEnsemble,
}
"""Name -> its class, whose ``fit`` takes ``(train, dev, *, seed, config, ...)`` and which
declares what it needs from a run (:mod:`pfpyro.model.capabilities`: ``needs_source_data``,
``needs_language_table``)."""


def register_baseline(name: str) -> Callable[[type], type]:
    """Class decorator: make the class baseline ``name`` (a config's ``models:`` then names
    it once :data:`pfpyro.config.BASELINE_MODELS` lists it); see docs/extending.md."""

    def decorate(cls: type) -> type:
        old = BASELINES.get(name)
        if old is not None and _defined_at(old) != _defined_at(cls):  # not a re-import
            raise ConfigError(f"baseline {name!r} is already registered ({old.__qualname__})")
        BASELINES[name] = cls
        return cls

    return decorate


def _defined_at(cls: type) -> str:
    """A class's file and qualified name (a module loaded twice still defines the same)."""
    try:
        where = inspect.getfile(cls)
    except TypeError:
        where = cls.__module__
    return f"{where}:{cls.__qualname__}"


def baseline_class(name: str) -> type:
    """The class registered as baseline ``name``; ConfigError lists the known ones."""
    try:
        return BASELINES[name]
    except KeyError:
        raise ConfigError(
            f"unknown baseline {name!r}; known: {', '.join(sorted(BASELINES))}"
        ) from None


def fit_baseline(
    name: str,
    train: Mapping[tuple[str, str], PairTensors],
    dev: Mapping[tuple[str, str], PairTensors] | None = None,
    *,
    english_train: Mapping[Any, PairTensors] | None = None,
    seed: int = 0,
    **kw: Any,
) -> TokenPredictor:
    """Fit baseline ``name`` on the seen pairs; ``kw`` goes to its ``fit``.

    ``english_train`` (keyed by task, or by ``(task, source_lang)``) is used by LS only and
    ignored by the others, so one call shape serves all four. The classifiers' settings come
    as ``config=LinearConfig(...)`` or as its fields directly (``epochs=30, lr=1e-2``), which
    is how a YAML config's ``baselines:`` section arrives. Other ``kw``: ``similarity=`` for
    NS; ``prior=``, ``steps=`` for BEA; ``english_dev=``, ``cap_unit=`` for LS; a keyword
    the baseline does not take raises ConfigError.
    """
    cls = baseline_class(name)
    fit = cls.fit
    fields = {f.name for f in dataclasses.fields(LinearConfig)}
    flat = {k: kw.pop(k) for k in list(kw) if k in fields}
    if flat:
        try:
            kw["config"] = dataclasses.replace(kw.get("config") or LinearConfig(), **flat)
        except ValueError as error:
            raise ConfigError(f"baseline settings {flat}: {error}") from None
    if declares(cls, "needs_source_data"):
        kw["english_train"] = english_train
    accepted = set(inspect.signature(fit).parameters)
    unknown = sorted(set(kw) - accepted)
    if unknown:
        raise ConfigError(
            f"baseline {name!r} takes no setting {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(sorted(accepted - {'train', 'dev', 'seed'}) + sorted(fields))}"
        )
    return fit(train, dev, seed=seed, **kw)


__all__ = [
    "BASELINES",
    "BEAFit",
    "BEAPrior",
    "BayesianEnsemble",
    "JointMultilingual",
    "LargestSource",
    "LinearConfig",
    "LinearTagger",
    "NearestSource",
    "SourceClassifiers",
    "baseline_class",
    "fit_baseline",
    "fit_bea",
    "register_baseline",
]

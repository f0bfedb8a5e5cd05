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
from pfpyro.predictor import TokenPredictor

BASELINES: dict[str, Callable[..., TokenPredictor]] = {
    "ns": NearestSource.fit,
    "ls": LargestSource.fit,
    "jm": JointMultilingual.fit,
    "bea": BayesianEnsemble.fit,
}
"""Name -> the ``fit`` of its class, each taking ``(train, dev, *, seed, config, ...)``."""


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
    try:
        fit = BASELINES[name]
    except KeyError:
        raise ConfigError(
            f"unknown baseline {name!r}; known: {', '.join(sorted(BASELINES))}"
        ) from None
    fields = {f.name for f in dataclasses.fields(LinearConfig)}
    flat = {k: kw.pop(k) for k in list(kw) if k in fields}
    if flat:
        try:
            kw["config"] = dataclasses.replace(kw.get("config") or LinearConfig(), **flat)
        except ValueError as error:
            raise ConfigError(f"baseline settings {flat}: {error}") from None
    if name == "ls":
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
    "fit_baseline",
    "fit_bea",
]

"""PF started at its special case, the joint multilingual classifier (``model.init: jm``).

A hypernetwork that declares ``with_base`` holds a point-estimated θ per task, ``base[i]``,
to which the language path adds an offset. With the offset at zero, f_psi(t_i, l_j) = base_i
for every language: one classifier per task, shared by its languages, which is JM (Wu and
Dredze, 2019). Setting base_i to JM's fitted weights and the offsets to zero makes PF's
plug-in predictions at step 0 JM's own, so SVI starts where the baseline ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from pfpyro.errors import ConfigError
from pfpyro.model.capabilities import declares
from pfpyro.model.factorization import ParameterFactorization


@dataclass(frozen=True)
class LinearClassifier:
    """softmax(W (x − mean) / scale + b) on raw encoder states x: W [c, e], b [c]."""

    weight: Tensor
    bias: Tensor
    mean: Tensor
    scale: Tensor


def standardized_theta(
    factorization: ParameterFactorization, classifier: LinearClassifier
) -> Tensor:
    """The softmax head's θ = vec(W') ⊕ b' that gives ``classifier``'s logits on the model's
    own standardised features x' = (x − m) / s:  W' = diag(s / scale) Wᵀ and
    b' = b + W (m − mean) / scale."""
    m, s = factorization.feature_mean.double(), factorization.feature_scale.double()
    weight, bias = classifier.weight.double(), classifier.bias.double()
    mean, scale = classifier.mean.double(), classifier.scale.double()
    w = (weight * (s / scale)).T  # [e, c]
    b = bias + weight @ ((m - mean) / scale)
    return torch.cat([w.reshape(-1), b]).float()


def start_at_joint_classifier(
    factorization: ParameterFactorization, classifiers: Mapping[str, LinearClassifier]
) -> None:
    """Set each task's base θ to its joint classifier's weights and the offsets to zero."""
    hypernet = factorization.hypernet
    if not declares(type(hypernet), "with_base"):
        raise ConfigError(
            f"model.init: jm needs a hypernetwork with a base classifier per task "
            f"(residual, adapter); {type(hypernet).__name__} has none"
        )
    missing = [task for task in factorization.tasks if task not in classifiers]
    if missing:
        raise ConfigError(f"model.init: jm has no joint classifier for task(s) {missing}")
    with torch.no_grad():
        for i, task in enumerate(factorization.tasks):
            theta = standardized_theta(factorization, classifiers[task])
            base = hypernet.base[i]
            if theta.shape != base.shape:
                raise ConfigError(
                    f"model.init: jm: the {task} classifier gives θ of width {theta.numel()}, "
                    f"the model's base has {base.numel()}"
                )
            base.copy_(theta.to(base))
        hypernet.zero_offsets()


__all__ = ["LinearClassifier", "standardized_theta", "start_at_joint_classifier"]

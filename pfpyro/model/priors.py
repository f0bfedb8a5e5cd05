"""Priors of the task and language vectors: p(t_i) and p(l_j) (Algorithm 1, lines 1–4).

A prior is a component (:mod:`pfpyro.model.registry`) with two hooks that the model samples
from, inside the plates it shares with the guide (``ParameterFactorization.sample_latents``):
``task_prior()`` with batch shape [n tasks] and ``language_prior()`` with batch shape
[m languages], each with event shape [h]. A prior may hold learned parameters (it is a
PyroModule inside the model, trained with the hypernetwork) or data (e.g. a typological
vector per language).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro.distributions as dist
import torch
from pyro.nn import PyroModule

from pfpyro.model.registry import register


class LatentPrior(PyroModule):
    """The interface: p(t) over ``tasks`` and p(l) over ``langs`` (both sorted), in R^h."""

    def __init__(self, tasks: Sequence[str], langs: Sequence[str], latent_dim: int) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.langs = tuple(langs)
        self.latent_dim = int(latent_dim)
        self.anchor = torch.nn.Buffer(torch.zeros(()))  # the device and dtype to build on

    def forward(self) -> tuple[dist.Distribution, dist.Distribution]:
        """(p(t), p(l)). The model calls the prior as a module, so that Pyro sees (and
        trains, and saves) the parameters a prior may have."""
        return self.task_prior(), self.language_prior()

    def task_prior(self) -> dist.Distribution:
        """p(t): batch shape [n tasks], event shape [h]."""
        raise NotImplementedError

    def language_prior(self) -> dist.Distribution:
        """p(l): batch shape [m languages], event shape [h]."""
        raise NotImplementedError


def standard_normal(dim: int, like: torch.Tensor) -> dist.MultivariateNormal:
    """N(0, I_dim) on the device and dtype of ``like``."""
    zeros = like.new_zeros(dim)
    return dist.MultivariateNormal(
        zeros, scale_tril=torch.eye(dim, dtype=like.dtype, device=like.device)
    )


@register("prior", "standard-normal")
class StandardNormalPrior(LatentPrior):
    """The paper's prior (§2, step 1): t_i ~ N(0, I_h) and l_j ~ N(0, I_h), independently."""

    def task_prior(self) -> dist.Distribution:
        return standard_normal(self.latent_dim, self.anchor).expand([len(self.tasks)])

    def language_prior(self) -> dist.Distribution:
        return standard_normal(self.latent_dim, self.anchor).expand([len(self.langs)])


__all__ = ["LatentPrior", "StandardNormalPrior", "standard_normal"]

"""Variational families q(t) q(l) q(θ | t, l) for the parameter-factorization model (paper §3).

q(t_i) = N(m_t, S_t) and q(l_j) = N(m_l, S_l) (eqs. 1–2) with a structured covariance:
  PF-lr:  S = diag(δ²) + B Bᵀ,  δ² = softplus(ρ), B ∈ R^{h×k}  (eqs. 7–8), LowRankMultivariateNormal
  PF-d:   S = diag(δ²)                                          (eq. 9 with B = 0)
q(θ | t, l) is the model's own p(θ | t, l) (eq. 3), drawn by the model's ``sample_theta``.

A new family subclasses :class:`FactorizationGuide`, implements ``task_posterior`` and
``language_posterior`` and is registered by name (:func:`pfpyro.model.registry.register`);
see docs/extending.md. A guide owns what is known about its family: the KL terms in closed
form when it has them (:meth:`FactorizationGuide.closed_form_kl`, logged by the trainer) and
which of its parameters are tables indexed by task or by language
(:meth:`FactorizationGuide.indexed_by`, which ``pfpyro extend`` grows by new rows).
"""

from __future__ import annotations

from typing import Any

import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, PyroParam
from torch import Tensor
from torch.nn.functional import softplus

from pfpyro.data.batch import PairsBatch
from pfpyro.errors import ConfigError
from pfpyro.model.factorization import ParameterFactorization
from pfpyro.model.kl import kl_lowrank_to_standard
from pfpyro.model.registry import register


class FactorizationGuide(PyroModule):
    """The guide's common part: sites t and l in their plates, then θ as in the model."""

    #: The names of the guide's parameters whose first dimension runs over the tasks, and
    #: over the languages (None: those named ``t_*`` and ``l_*``, the built-in convention).
    task_params: tuple[str, ...] | None = None
    language_params: tuple[str, ...] | None = None

    def __init__(self, factorization: ParameterFactorization, name: str = "guide") -> None:
        super().__init__(name=name)
        self.tasks = factorization.tasks
        self.langs = factorization.langs
        self.latent_dim = factorization.latent_dim
        # Bound methods, not a sub-module: the hypernetwork's parameters stay the model's own,
        # and the latent sites are opened exactly as the model opens them.
        self.sample_theta = factorization.sample_theta
        self.sample_pair_thetas = factorization.sample_pair_thetas
        self.pairs_plate = factorization.pairs_plate
        self.sample_latents = factorization.sample_latents
        self.task_index = factorization.task_index
        self.lang_index = factorization.lang_index

    def task_posterior(self) -> dist.Distribution:
        """q(t): batch shape [n tasks], event shape [h]."""
        raise NotImplementedError

    def language_posterior(self) -> dist.Distribution:
        """q(l): batch shape [m languages], event shape [h]."""
        raise NotImplementedError

    def forward(self, task: str, lang: str, *data: Any, **scales: Any) -> None:
        """The guide of :meth:`ParameterFactorization.forward`, called with the model's own
        arguments (Pyro's rule); of them it reads the pair and ``kl_weight``."""
        kl_weight = _kl_weight(*data, **scales)
        i, j = self.task_index(task), self.lang_index(lang)
        t, l = self.sample_latents(self.task_posterior(), self.language_posterior(), kl_weight)
        self.sample_theta(t[..., i : i + 1, :], l[..., j : j + 1, :], i)

    def pairs(self, batch: PairsBatch, kl_weight: float = 1.0) -> None:
        """The guide of :meth:`ParameterFactorization.model_pairs` (several pairs in one
        step): q(t) and q(l), then each pair's θ from p(θ | t, l) in the same plate."""
        t, l = self.sample_latents(self.task_posterior(), self.language_posterior(), kl_weight)
        with self.pairs_plate(batch):
            self.sample_pair_thetas(t, l, batch.pairs)

    def indexed_by(self, name: str) -> str | None:
        """ "tasks" or "langs" when the guide's parameter ``name`` (an attribute name; a
        PyroParam's stored ``*_unconstrained`` tensor counts as the parameter) is a table with
        one row per task or per language, as the guide declares (what extension grows)."""
        name = name.removesuffix("_unconstrained")
        tasks, langs = self.task_params, self.language_params
        if name in tasks if tasks is not None else name.startswith("t_"):
            return "tasks"
        if name in langs if langs is not None else name.startswith("l_"):
            return "langs"
        return None

    def closed_form_kl(self) -> tuple[float, float] | None:
        """(KL(q(t) ‖ p(t)), KL(q(l) ‖ p(l))) summed over tasks / languages, in closed form
        against N(0, I) (eqs. 9–10); None for a family that has none."""
        return None

    @torch.no_grad()
    def posterior_means(self) -> tuple[Tensor, Tensor]:
        """``(E_q[t], E_q[l])``, shapes ``[n, h]`` and ``[m, h]``: what the plug-in uses (§3.2)."""
        return self.task_posterior().mean.detach(), self.language_posterior().mean.detach()


def _kl_weight(features, mask, labels=None, pair_size=None, kl_weight=1.0, pair_weight=1.0):
    """``kl_weight`` of the model's arguments after the pair, positional or named."""
    return kl_weight


def _init_loc(rows: int, dim: int) -> Tensor:
    # Paper §4.2: means from N(0, 0.1) (read as a standard deviation of 0.1).
    return 0.1 * torch.randn(rows, dim)


def _init_uniform(*shape: int, high: float = 0.5) -> Tensor:
    # Paper §4.2: covariance parameters from U(0, 0.5).
    return high * torch.rand(*shape)


@register("guide", "lr")
class LowRankGuide(FactorizationGuide):
    """PF-lr: a diagonal-plus-rank-k Gaussian per task and per language (eqs. 7–8)."""

    task_params = ("t_loc", "t_factor", "t_rho")
    language_params = ("l_loc", "l_factor", "l_rho")

    def __init__(
        self, factorization: ParameterFactorization, rank: int = 10, factor_init: float = 0.5
    ) -> None:
        """``factor_init``: the factor B starts from U(0, factor_init); the paper's 0.5 (the
        default) has every entry positive, so BBᵀ starts with an eigenvalue near h·k·0.25² ≈ 6
        at h = k = 10, where the prior has 1; a small value starts q near a diagonal Gaussian."""
        super().__init__(factorization)
        if not factor_init >= 0:
            raise ConfigError(f"factor_init must be non-negative, got {factor_init}")
        n, m, h = len(self.tasks), len(self.langs), self.latent_dim
        self.rank = rank
        self.t_loc = PyroParam(_init_loc(n, h))
        self.t_factor = PyroParam(_init_uniform(n, h, rank, high=factor_init))
        self.t_rho = PyroParam(_init_uniform(n, h))
        self.l_loc = PyroParam(_init_loc(m, h))
        self.l_factor = PyroParam(_init_uniform(m, h, rank, high=factor_init))
        self.l_rho = PyroParam(_init_uniform(m, h))

    def task_posterior(self) -> dist.LowRankMultivariateNormal:
        return dist.LowRankMultivariateNormal(self.t_loc, self.t_factor, softplus(self.t_rho))

    def language_posterior(self) -> dist.LowRankMultivariateNormal:
        return dist.LowRankMultivariateNormal(self.l_loc, self.l_factor, softplus(self.l_rho))

    @torch.no_grad()
    def closed_form_kl(self) -> tuple[float, float]:
        kl_t = kl_lowrank_to_standard(self.t_loc, self.t_factor, softplus(self.t_rho))
        kl_l = kl_lowrank_to_standard(self.l_loc, self.l_factor, softplus(self.l_rho))
        return float(kl_t.sum()), float(kl_l.sum())


@register("guide", "d")
class DiagonalGuide(FactorizationGuide):
    """PF-d: a diagonal Gaussian per task and per language; δ² = softplus(ρ) is the variance."""

    task_params = ("t_loc", "t_rho")
    language_params = ("l_loc", "l_rho")

    def __init__(self, factorization: ParameterFactorization) -> None:
        super().__init__(factorization)
        n, m, h = len(self.tasks), len(self.langs), self.latent_dim
        self.t_loc = PyroParam(_init_loc(n, h))
        self.t_rho = PyroParam(_init_uniform(n, h))
        self.l_loc = PyroParam(_init_loc(m, h))
        self.l_rho = PyroParam(_init_uniform(m, h))

    def task_posterior(self) -> dist.Distribution:
        return dist.Normal(self.t_loc, softplus(self.t_rho).sqrt()).to_event(1)

    def language_posterior(self) -> dist.Distribution:
        return dist.Normal(self.l_loc, softplus(self.l_rho).sqrt()).to_event(1)

    @torch.no_grad()
    def closed_form_kl(self) -> tuple[float, float]:
        kl_t = kl_lowrank_to_standard(self.t_loc, None, softplus(self.t_rho))
        kl_l = kl_lowrank_to_standard(self.l_loc, None, softplus(self.l_rho))
        return float(kl_t.sum()), float(kl_l.sum())

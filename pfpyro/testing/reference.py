"""The same ELBO as the Pyro model and guide, in plain PyTorch (no Pyro), for checking.

Tests compare it with ``Trace_ELBO`` on the same random draws; the SVI benchmark times it as
the floor a hand-written implementation would reach. It consumes the random stream in the
order Pyro does (t, then l, then θ, each with the vectorised-particle shape [P, 1, ...]), so
with the same seed both see the same samples.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import (
    Categorical,
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
)
from torch.nn.functional import softplus

from pfpyro.data.batch import PairsBatch
from pfpyro.data.subwords import SubwordStates
from pfpyro.model.capabilities import declares
from pfpyro.model.factorization import ParameterFactorization
from pfpyro.model.guides import DiagonalGuide, FactorizationGuide, LowRankGuide


def _posteriors(guide: FactorizationGuide) -> tuple[torch.distributions.Distribution, ...]:
    """q(t), q(l) rebuilt as torch distributions from the guide's raw parameters."""
    if isinstance(guide, LowRankGuide):
        return (
            LowRankMultivariateNormal(guide.t_loc, guide.t_factor, softplus(guide.t_rho)),
            LowRankMultivariateNormal(guide.l_loc, guide.l_factor, softplus(guide.l_rho)),
        )
    if isinstance(guide, DiagonalGuide):
        return (
            Independent(Normal(guide.t_loc, softplus(guide.t_rho).sqrt()), 1),
            Independent(Normal(guide.l_loc, softplus(guide.l_rho).sqrt()), 1),
        )
    raise TypeError(f"no reference for {type(guide).__name__}")


def reference_elbo(
    factorization: ParameterFactorization,
    guide: FactorizationGuide,
    task: str,
    lang: str,
    features: Tensor | SubwordStates,
    mask: Tensor,
    labels: Tensor,
    pair_size: int | None = None,
    kl_weight: float = 1.0,
    num_particles: int = 1,
    pair_weight: float = 1.0,
) -> Tensor:
    """A Monte Carlo estimate of the ELBO (eq. 5–6), averaged over ``num_particles`` draws
    (``features``: subword states for a model that trains the encoder's top)."""
    i, j = factorization.task_index(task), factorization.lang_index(lang)
    h = factorization.latent_dim
    particles = (num_particles, 1)
    q_t, q_l = _posteriors(guide)
    prior = MultivariateNormal(mask.new_zeros(h, dtype=torch.float32), scale_tril=torch.eye(h))
    t = q_t.rsample(particles)  # [P, 1, n, h]
    l = q_l.rsample(particles)  # [P, 1, m, h]
    loc, variance = factorization.hypernet(t[..., i : i + 1, :], l[..., j : j + 1, :], i)
    q_theta = Independent(Normal(loc, variance.sqrt()), 1)
    theta = q_theta.rsample()  # [P, 1, 1, d]
    p_theta = Independent(Normal(loc, variance.sqrt()), 1)  # the model's p(θ | t, l)

    kl_terms = (prior.log_prob(t) - q_t.log_prob(t)).sum(-1) + (
        prior.log_prob(l) - q_l.log_prob(l)
    ).sum(-1)
    theta_term = (p_theta.log_prob(theta) - q_theta.log_prob(theta)).sum((-2, -1))
    x = factorization.standardize(features)
    logits = factorization.head.logits(theta, x, factorization.num_classes[task])
    log_lik = Categorical(logits=logits).log_prob(labels).masked_fill(~mask, 0.0).sum((-2, -1))
    scale = pair_weight * (pair_size or mask.shape[0]) / mask.shape[0]
    per_particle = scale * log_lik + kl_weight * kl_terms.squeeze(-1) + theta_term
    return per_particle.mean()


def reference_pairs_elbo(
    factorization: ParameterFactorization,
    guide: FactorizationGuide,
    batch: PairsBatch,
    kl_weight: float = 1.0,
    num_particles: int = 1,
) -> Tensor:
    """The ELBO of one step over several pairs (``model_pairs``), as :func:`reference_elbo`
    but with one draw of t and l shared by the pairs and pair p's likelihood scaled by
    ``batch.scale[p]`` (particles at dim -4, as with the ``pairs`` plate). A task-blocked
    hypernetwork's θ take the head's padded layout, its extra slots N(0, 1), as the model's."""
    h = factorization.latent_dim
    particles = (num_particles, 1, 1)
    q_t, q_l = _posteriors(guide)
    prior = MultivariateNormal(batch.features.new_zeros(h), scale_tril=torch.eye(h))
    t = q_t.rsample(particles)  # [K, 1, 1, n, h]
    l = q_l.rsample(particles)  # [K, 1, 1, m, h]
    loc, variance = _pair_params(factorization, t, l, batch.pairs)
    count, width = len(batch.pairs), loc.shape[-1]
    loc, scale = (
        loc.reshape(num_particles, count, 1, 1, width),
        variance.sqrt().reshape(num_particles, count, 1, 1, width),
    )
    theta = Independent(Normal(loc, scale), 1).rsample()  # [K, P, 1, 1, d]
    kl_terms = (prior.log_prob(t) - q_t.log_prob(t)).sum(-1) + (
        prior.log_prob(l) - q_l.log_prob(l)
    ).sum(-1)  # [K, 1, 1]
    classes = torch.tensor([factorization.num_classes[task] for task, _ in batch.pairs])
    x = factorization.standardize(batch.features)
    logits = factorization.head.logits(theta, x, int(classes.max()))  # [K, P, B, T, c]
    padded = torch.arange(int(classes.max())) >= classes[:, None]
    logits = logits.masked_fill(padded[:, None, None, :], float("-inf"))
    log_lik = Categorical(logits=logits).log_prob(batch.labels).masked_fill(~batch.mask, 0.0)
    per_pair = log_lik.sum((-2, -1)) * batch.scale  # [K, P]
    per_particle = per_pair.sum(-1) + kl_weight * kl_terms.reshape(num_particles)
    return per_particle.mean()


def _pair_params(
    factorization: ParameterFactorization, t: Tensor, l: Tensor, pairs: list[tuple[str, str]]
) -> tuple[Tensor, Tensor]:
    """(f_psi, f_phi) [..., P, d] of each pair: one call of a shared-output hypernetwork,
    or one call per pair of a task-blocked one, padded to the head's widest layout."""
    tasks = [factorization.task_index(task) for task, _ in pairs]
    langs = [factorization.lang_index(lang) for _, lang in pairs]
    if not declares(type(factorization.hypernet), "task_blocked"):
        return factorization.hypernet(t[..., tasks, :], l[..., langs, :], None)
    locs, variances = [], []
    for (task, _), i, j in zip(pairs, tasks, langs, strict=True):
        loc, variance = factorization.hypernet(t[..., i, :], l[..., j, :], i)
        classes = factorization.num_classes[task]
        locs.append(factorization.head.padded(loc, classes, 0.0))
        variances.append(factorization.head.padded(variance, classes, 1.0))
    return torch.stack(locs, dim=-2), torch.stack(variances, dim=-2)

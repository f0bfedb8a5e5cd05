"""Few-shot: k labelled sentences of an unseen pair update its posterior (issue 9, item 4).

Sequential Bayes on one pair (task i, language j) of a trained run: the run's posterior of
l_j becomes the prior, and the pair's classifier gets a posterior of its own.

    l_j   ~ q_run(l_j)                                   (the trained posterior, as prior)
    θ_ij  ~ N(f_psi(t̄_i, l_j), diag(f_phi(t̄_i, l_j) + τ²))   (Algorithm 1, lines 7–9, widened)
    y_ijk ~ softmax(W_ij x_ijk + b_ij)                   for the words of the k sentences

with t_i at its posterior mean t̄_i (a task is seen in many languages: k sentences of one pair
would move it little). The guide is q(l_j) = N(m, diag s²), started at q_run(l_j)'s mean and
marginal scale, and q(θ_ij) = N(μ, diag σ²), started at the prior's centre and scale. The run
itself (hypernetwork, guide) is not changed. With k = 0 nothing is fitted and
:class:`FewShotPredictor` is the zero-shot plug-in predictor.

Why τ: in training, q(θ | t, l) is p(θ | t, l) itself (eq. 6), so no term of the ELBO asks
f_phi to measure how far a pair's classifier strays from f_psi; it shrinks to cut the
sampling noise of θ, and a prior that tight hardly lets the k sentences speak (on the
synthetic world of ``tests/test_fewshot.py``, 40 sentences moved accuracy from 52.7 % to
53.8 % without τ, to 83.3 % with it). τ is learned from the k sentences with the rest, by
the ELBO (type-II maximum likelihood), from τ = 0.1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO
from torch import Tensor, nn
from torch.nn.functional import softplus

from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair
from pfpyro.errors import ConfigError
from pfpyro.infer.checkpoint import named_params
from pfpyro.infer.extend import only_training
from pfpyro.infer.predict import Inputs, PFPredictor
from pfpyro.model.factorization import MAX_PLATE_NESTING, ParameterFactorization
from pfpyro.model.guides import FactorizationGuide
from pfpyro.model.positive import inverse_softplus
from pfpyro.progress import progress_bar

TAU_INIT = 0.1


@dataclass(frozen=True)
class FewShotSettings:
    """How a pair's posterior is fitted: ``steps`` Adam steps at ``lr`` on mini-batches of
    ``batch_size`` of its k sentences, seeded by ``seed``."""

    steps: int = 300
    lr: float = 0.01
    batch_size: int = 32
    seed: int = 0

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ConfigError("few-shot steps and batch_size must be >= 1, lr > 0")


class PairPosterior(nn.Module):
    """q(l_j) and q(θ_ij) of one pair of a trained run, to be fitted on its k sentences."""

    def __init__(
        self,
        factorization: ParameterFactorization,
        guide: FactorizationGuide,
        task: str,
        lang: str,
    ) -> None:
        super().__init__()
        self.task, self.lang = task, lang
        self.task_id = factorization.task_index(task)
        j = factorization.lang_index(lang)
        # The run, held as plain references: its parameters are not this module's.
        self._run = (factorization, guide)
        with torch.no_grad():
            t_mean, _ = guide.posterior_means()
            q_l = guide.language_posterior()
            prior_loc = q_l.mean[j].detach().clone()
            if hasattr(q_l, "covariance_matrix"):
                prior_cov = q_l.covariance_matrix[j].detach().clone()
            else:  # a diagonal family
                prior_cov = torch.diag_embed(q_l.variance[j].detach())
            t_i = t_mean[None, self.task_id]
            loc, variance = factorization.hypernet(t_i, prior_loc[None], self.task_id)
        self.t_mean = nn.Buffer(t_mean[self.task_id].clone())
        self.prior_loc = nn.Buffer(prior_loc)
        self.prior_tril = nn.Buffer(torch.linalg.cholesky(prior_cov))
        self.l_loc = nn.Parameter(prior_loc.clone())
        self.l_rho = nn.Parameter(inverse_softplus(prior_cov.diagonal().sqrt()))
        self.theta_loc = nn.Parameter(loc.detach().clone())  # [1, d]
        self.theta_rho = nn.Parameter(inverse_softplus(variance.detach().sqrt()))
        # τ: how far this pair's classifier may stray from the factorization's, learned from
        # its k sentences (type-II maximum likelihood through the ELBO)
        self.tau_rho = nn.Parameter(inverse_softplus(torch.tensor(TAU_INIT)))

    @property
    def factorization(self) -> ParameterFactorization:
        return self._run[0]

    def model(self, features: Tensor, mask: Tensor, labels: Tensor, pair_size: int) -> None:
        f = self.factorization
        l = pyro.sample("l", dist.MultivariateNormal(self.prior_loc, scale_tril=self.prior_tril))
        loc, variance = f.hypernet(self.t_mean[None], l[None], self.task_id)
        scale = (variance + softplus(self.tau_rho) ** 2).sqrt()
        theta = pyro.sample("theta", dist.Normal(loc, scale).to_event(1))
        f.observe_words(self.task, theta, features, mask, labels, pair_size)

    def guide(self, features: Tensor, mask: Tensor, labels: Tensor, pair_size: int) -> None:
        pyro.sample("l", dist.Normal(self.l_loc, softplus(self.l_rho)).to_event(1))
        pyro.sample("theta", dist.Normal(self.theta_loc, softplus(self.theta_rho)).to_event(1))

    @torch.no_grad()
    def probs(self, features: Tensor) -> Tensor:
        """The plug-in prediction: θ at E_q[θ_ij]."""
        f = self.factorization
        logits = f.head.logits(self.theta_loc, f.standardize(features), f.num_classes[self.task])
        return logits.softmax(-1)

    @torch.no_grad()
    def theta_samples(self, num_samples: int) -> Tensor:
        """S draws of θ_ij from the fitted q(θ_ij), shaped [S, 1, 1, d] for the head."""
        eps = torch.randn(num_samples, 1, *self.theta_loc.shape, device=self.theta_loc.device)
        return self.theta_loc + softplus(self.theta_rho) * eps

    @torch.no_grad()
    def sample_probs(self, features: Tensor, theta: Tensor) -> Tensor:
        """Per-sample probabilities [S, N, T, c] of word features under θ [S, 1, 1, d]
        (:meth:`theta_samples`), for acquisition scores after an update."""
        f = self.factorization
        logits = f.head.logits(theta, f.standardize(features), f.num_classes[self.task])
        return logits.softmax(-1)


def fit_pair(
    factorization: ParameterFactorization,
    guide: FactorizationGuide,
    task: str,
    lang: str,
    data: PairTensors,
    settings: FewShotSettings = FewShotSettings(),
    progress: bool = False,
) -> PairPosterior:
    """The posterior of pair (task, lang) after its sentences ``data`` (k = len(data) >= 1),
    by SVI; the run is left exactly as it was."""
    settings.validate()
    if len(data) == 0:
        raise ConfigError("few-shot needs at least one sentence (k = 0 is the zero-shot model)")
    posterior = PairPosterior(factorization, guide, task, lang)
    device = factorization.anchor.device
    posterior.to(device)
    elbo = Trace_ELBO(max_plate_nesting=MAX_PLATE_NESTING)
    optimiser = torch.optim.Adam(posterior.parameters(), lr=settings.lr)
    frozen = named_params(factorization, guide)
    with (
        only_training(frozen, [], factorization, guide),
        torch.random.fork_rng(devices=[]),
    ):
        torch.manual_seed(settings.seed)
        generator = torch.Generator().manual_seed(settings.seed)
        steps = range(settings.steps)
        for _ in progress_bar(steps, desc="few-shot", enabled=progress):
            index = torch.randperm(len(data), generator=generator)[: settings.batch_size]
            batch = data.batch(index, device)
            optimiser.zero_grad()
            loss = elbo.differentiable_loss(
                posterior.model,
                posterior.guide,
                batch.inputs,
                batch.mask,
                batch.labels,
                len(data),
            )
            loss.backward()
            optimiser.step()
    return posterior


class FewShotPredictor(PFPredictor):
    """The run's predictor (:class:`PFPredictor`, plug-in or model averaging), except for the
    pairs with a fitted :class:`PairPosterior`, which predict with theirs: plug-in at
    E_q[θ_ij], or the average over S draws of θ_ij from q(θ_ij). Its per-sample
    probabilities are those draws' too, so acquisition scores
    (:func:`pfpyro.infer.acquisition.fixed_samples`) read the updated posterior."""

    def __init__(
        self,
        factorization: ParameterFactorization,
        guide: FactorizationGuide,
        posteriors: Mapping[Pair, PairPosterior],
        batch_size: int = 64,
        mode: str = "plugin",
        num_samples: int = 100,
    ) -> None:
        super().__init__(factorization, guide, mode, num_samples, batch_size)
        self.posteriors = dict(posteriors)

    @torch.no_grad()
    def plugin_proba(self, task: str, lang: str, features: Inputs, mask: Tensor) -> Tensor:
        posterior = self.posteriors.get((task, lang))
        if posterior is None or len(features) == 0:
            return super().plugin_proba(task, lang, features, mask)
        self._check(task, lang, features, mask)
        chunks = self._chunks(features, mask)
        return torch.cat([posterior.probs(chunk) for chunk, _ in chunks]).to(mask.device)

    @torch.no_grad()
    def sample_proba_with_samples(
        self,
        task: str,
        lang: str,
        features: Inputs,
        mask: Tensor,
        samples: Mapping[str, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """As :meth:`PFPredictor.sample_proba_with_samples`; for a pair with a posterior of
        its own, θ is drawn from its q(θ_ij) (as many draws as ``samples`` holds of t, else
        ``num_samples``) and kept in ``samples`` for the later chunks."""
        posterior = self.posteriors.get((task, lang))
        if posterior is None or len(features) == 0:
            return super().sample_proba_with_samples(task, lang, features, mask, samples)
        self._check(task, lang, features, mask)
        samples = dict(samples) if samples is not None else {}
        if "theta" not in samples:
            size = samples["t"].shape[0] if "t" in samples else self.num_samples
            samples["theta"] = posterior.theta_samples(size)
        theta = samples["theta"]
        out = [posterior.sample_probs(chunk, theta) for chunk, _ in self._chunks(features, mask)]
        return torch.cat(out, dim=1).to(mask.device), samples


__all__ = ["FewShotPredictor", "FewShotSettings", "PairPosterior", "fit_pair"]

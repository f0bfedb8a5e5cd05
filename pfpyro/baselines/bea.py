"""BEA: a Bayesian ensemble of the language-specific classifiers (paper §4.3, third baseline).

Rahimi, Li and Cohn (2019), "Massively Multilingual Transfer for NER", ACL, §3: the zero-shot,
token-level, unsupervised variant (BEA_uns, token level). Each seen language's classifier of
the task is an *annotator* of the target text whose reliability is unknown; a model of
annotator confusion (Dawid and Skene, 1979; Kim and Ghahramani, 2012) infers the true labels
and every annotator's confusion matrix jointly, from the target's unlabelled words alone:

    pi            ~ Dirichlet(alpha 1)                  how common each label is in the target
    V[s, k]       ~ Dirichlet(beta_k)   for source s and true label k (beta_k favours l = k)
    z_n           ~ Categorical(pi)                     the true label of word n
    y[n, s] | z_n ~ Categorical(V[s, z_n])              what source s predicted for word n

It is transductive, as in the paper: fitted on the held-out pair's own test words (their
features, never their labels). Inference here is MAP for pi and V by gradient ascent on
``log p(y, pi, V)`` with z summed out exactly by Pyro's enumeration (``TraceEnum_ELBO`` with
a Delta guide), started from majority vote; the answer is the exact posterior of each z_n
given the fitted pi and V (``TraceEnum_ELBO.compute_marginals``). Rahimi et al. use
mean-field variational Bayes instead; with thousands of words the posteriors of pi and V are
sharp, and MAP differs from their mean only by the prior's pseudo-counts.

``fit_bea`` fits the model to any matrix of annotations; :class:`BayesianEnsemble` is the
baseline that makes the annotations with the seen languages' classifiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceEnum_ELBO
from pyro.ops.indexing import Vindex
from torch import Tensor, nn

from pfpyro.baselines.linear import LinearConfig, torch_threads
from pfpyro.baselines.ns import SourceClassifiers
from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair
from pfpyro.data.tasks import label_set
from pfpyro.encode.top import EncoderTop
from pfpyro.errors import ConfigError


@dataclass(frozen=True)
class BEAPrior:
    """Dirichlet concentrations: ``prevalence`` for pi; ``diagonal``/``off_diagonal`` for V.

    A diagonal above the off-diagonal encodes the belief that a classifier is more often right
    than wrong in any given way, which also fixes which fitted class is which label. Keep all
    at least 1 so the MAP exists inside the simplex.
    """

    prevalence: float = 1.0
    diagonal: float = 2.0
    off_diagonal: float = 1.0

    def __post_init__(self) -> None:
        if min(self.prevalence, self.diagonal, self.off_diagonal) < 1.0:
            raise ValueError("BEA's Dirichlet concentrations must be >= 1 for a MAP fit")

    def confusion(self, num_classes: int) -> Tensor:
        """[c, c] concentration of each row V[s, k] (row k favours column k)."""
        eye = torch.eye(num_classes)
        return self.off_diagonal + (self.diagonal - self.off_diagonal) * eye


def bea_model(votes: Tensor, prior: BEAPrior) -> None:
    """The generative model above, for ``votes`` [W, S, c]: word n's label by source s, one-hot.

    The likelihood of word n given z_n = k is ``prod_s V[s, k, y[n, s]]``; its log is
    computed for all k at once, ``sum_{s, l} votes[n, s, l] log V[s, k, l]``, and the
    enumerated z picks its entry.
    """
    n_words, n_sources, c = votes.shape
    pi = pyro.sample("pi", dist.Dirichlet(torch.full((c,), prior.prevalence)))
    sources = pyro.plate("sources", n_sources, dim=-2)
    with sources, pyro.plate("truth", c, dim=-1):
        confusion = pyro.sample("confusion", dist.Dirichlet(prior.confusion(c)))  # [S, c, c]

    # log p(y_n | z_n = k) for every k: [W, S * c] @ [S * c, c] -> [W, c]
    log_v = confusion.log().transpose(-1, -2).reshape(n_sources * c, c)
    log_lik = votes.reshape(n_words, n_sources * c) @ log_v
    with pyro.plate("words", n_words, dim=-1):
        z = pyro.sample("z", dist.Categorical(pi), infer={"enumerate": "parallel"})
        pyro.factor("votes", Vindex(log_lik)[torch.arange(n_words), z])


def one_hot_votes(votes: Tensor, num_classes: int) -> Tensor:
    """[W, S] label ids -> [W, S, c] one-hot votes, the model's observed data."""
    return nn.functional.one_hot(votes, num_classes).to(torch.get_default_dtype())


class MAPGuide(nn.Module):
    """Point estimates of pi and V (a Delta guide), as softmax of free logits."""

    def __init__(self, pi: Tensor, confusion: Tensor):
        super().__init__()
        self.pi_logits = nn.Parameter(pi.log())
        self.confusion_logits = nn.Parameter(confusion.log())

    def forward(self, votes: Tensor, prior: BEAPrior) -> None:
        _, n_sources, c = votes.shape
        pyro.sample("pi", dist.Delta(self.pi_logits.softmax(-1), event_dim=1))
        with pyro.plate("sources", n_sources, dim=-2), pyro.plate("truth", c, dim=-1):
            pyro.sample("confusion", dist.Delta(self.confusion_logits.softmax(-1), event_dim=1))

    @property
    def pi(self) -> Tensor:
        return self.pi_logits.detach().softmax(-1)

    @property
    def confusion(self) -> Tensor:
        return self.confusion_logits.detach().softmax(-1)


def majority_vote_start(votes: Tensor, prior: BEAPrior) -> tuple[Tensor, Tensor]:
    """pi and V estimated from soft majority-vote labels plus the prior's pseudo-counts.

    ``votes`` is one-hot, [W, S, c].
    """
    z = votes.mean(1)  # each word's share of votes per label, [W, c]
    pi = z.sum(0) + prior.prevalence
    # counts[s, k, l] = sum_n z[n, k] * 1[y[n, s] = l]
    counts = torch.einsum("nk,nsl->skl", z, votes) + prior.confusion(votes.shape[-1])
    return pi / pi.sum(), counts / counts.sum(-1, keepdim=True)


@dataclass
class BEAFit:
    """A fitted BEA: pi [c], confusion [S, c, c], each word's posterior [W, c], the losses."""

    pi: Tensor
    confusion: Tensor
    posterior: Tensor
    losses: list[float] = field(default_factory=list)
    sources: tuple[str, ...] = ()

    @property
    def accuracy(self) -> Tensor:
        """[S]: each source's fitted accuracy, ``sum_k pi_k V[s, k, k]``."""
        return (self.pi * torch.diagonal(self.confusion, dim1=-2, dim2=-1)).sum(-1)

    @property
    def labels(self) -> Tensor:
        """[W]: each word's most probable true label."""
        return self.posterior.argmax(-1)


def fit_bea(
    votes: Tensor,
    num_classes: int,
    *,
    prior: BEAPrior | None = None,
    steps: int = 300,
    lr: float = 0.1,
    tol: float = 1e-6,
    seed: int = 0,
    threads: int | None = 1,
) -> BEAFit:
    """Fit BEA to ``votes`` ([W, S] label ids: word n as labelled by source s).

    Adam on the MAP objective for at most ``steps`` steps, stopping once the loss changes by
    less than ``tol`` (relative) for 10 steps in a row. ``threads`` caps torch's intra-op
    threads meanwhile (see :class:`~pfpyro.baselines.linear.LinearConfig`).
    """
    votes = torch.as_tensor(votes).long()
    if votes.dim() != 2 or votes.shape[0] == 0 or votes.shape[1] == 0:
        raise ValueError(f"votes must be a non-empty [words, sources] matrix, got {votes.shape}")
    if int(votes.min()) < 0 or int(votes.max()) >= num_classes:
        raise ValueError(f"votes must be label ids in [0, {num_classes})")
    with torch_threads(threads):
        return _fit_bea(votes, num_classes, prior or BEAPrior(), steps, lr, tol, seed)


def _fit_bea(
    votes: Tensor, num_classes: int, prior: BEAPrior, steps: int, lr: float, tol: float, seed: int
) -> BEAFit:
    pyro.set_rng_seed(seed)
    onehot = one_hot_votes(votes, num_classes)
    guide = MAPGuide(*majority_vote_start(onehot, prior))
    elbo = TraceEnum_ELBO(max_plate_nesting=2)
    optimiser = torch.optim.Adam(guide.parameters(), lr=lr)
    losses: list[float] = []
    quiet = 0
    for _ in range(steps):
        loss = elbo.differentiable_loss(bea_model, guide, onehot, prior)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if len(losses) > 1 and abs(losses[-2] - losses[-1]) <= tol * abs(losses[-1]):
            quiet += 1
            if quiet >= 10:
                break
        else:
            quiet = 0
    with torch.no_grad():
        marginals = elbo.compute_marginals(bea_model, guide, onehot, prior)
    posterior = marginals["z"].probs.detach()
    return BEAFit(guide.pi, guide.confusion, posterior, losses)


class BayesianEnsemble:
    """BEA: the seen languages' classifiers vote; a Pyro confusion model weighs the votes."""

    name = "bea"

    def __init__(
        self,
        classifiers: SourceClassifiers,
        *,
        prior: BEAPrior | None = None,
        steps: int = 300,
        lr: float = 0.1,
        seed: int = 0,
    ):
        self.classifiers = classifiers
        self.prior = prior or BEAPrior()
        self.steps, self.lr, self.seed = steps, lr, seed
        self.fits: dict[Pair, BEAFit] = {}  # the last fit of each target, for reports

    @classmethod
    def fit(
        cls,
        train: Mapping[Pair, PairTensors],
        dev: Mapping[Pair, PairTensors] | None = None,
        *,
        prior: BEAPrior | None = None,
        steps: int = 300,
        lr: float = 0.1,
        config: LinearConfig | None = None,
        seed: int = 0,
        top: EncoderTop | None = None,
    ) -> BayesianEnsemble:
        """Set up BEA; each seen language's classifier is trained when first needed."""
        classifiers = SourceClassifiers(train, dev, config=config, seed=seed, top=top)
        return cls(classifiers, prior=prior, steps=steps, lr=lr, seed=seed)

    def sources(self, task: str, lang: str) -> tuple[str, ...]:
        """The annotators of a target: every seen language of the task but the target's."""
        sources = tuple(s for s in self.classifiers.languages(task) if s != lang)
        if not sources:
            raise ConfigError(f"no seen language of task {task!r} to ensemble for {lang!r}")
        return sources

    def votes(self, task: str, lang: str, features: Tensor, mask: Tensor) -> Tensor:
        """[W, S]: each source classifier's predicted label of each real word."""
        mask = mask.bool()
        columns = [
            self.classifiers.get(task, s).predict_proba(features, mask).argmax(-1)[mask]
            for s in self.sources(task, lang)
        ]
        return torch.stack(columns, dim=-1)

    def predict_proba(self, task: str, lang: str, features: Tensor, mask: Tensor) -> Tensor:
        """Fit BEA on these words' votes; their posterior label distributions, [N, T, c].

        Padding rows are uniform. The fit is kept in :attr:`fits` under (task, lang).
        """
        mask = torch.as_tensor(mask).bool()
        c = len(label_set(task))
        votes = self.votes(task, lang, features, mask)
        fit = fit_bea(votes, c, prior=self.prior, steps=self.steps, lr=self.lr, seed=self.seed)
        fit.sources = self.sources(task, lang)
        self.fits[(task, lang)] = fit
        out = torch.full((*mask.shape, c), 1.0 / c)
        out[mask] = fit.posterior.to(out.dtype)
        return out

"""The generative model of Ponti et al. (2021), Algorithm 1, written as a Pyro model.

    t_i  ~ N(0, I_h)                                  for each task i        (lines 1–2)
    l_j  ~ N(0, I_h)                                  for each language j    (lines 3–4)
    θ_ij ~ N(f_psi(t_i, l_j), diag f_phi(t_i, l_j))   for each pair (i, j)   (lines 5–9)
    y_ijk ~ softmax(W_ij x_ijk + b_ij)                for each word k        (lines 10–11)

One SVI step sees one pair (i, j) and a mini-batch of its sentences, so the model draws θ for
that pair only: the other slices of the n×m×d tensor Θ do not touch the step's likelihood, and
since the guide's q(θ | t, l) is p(θ | t, l) itself, their ELBO terms are exactly zero.

The prior, the hypernetwork (f_psi, f_phi) and the head (the softmax) are components, each
chosen by its registered name (:mod:`pfpyro.model.registry`); the above are the paper's.

Plates: ``tasks`` and ``languages`` (dim -1, each around its own vectors), ``sentences``
(dim -2, subsampled and scaled to the pair's size) and ``words`` (dim -1, masked at padding).
Vectorised particles and Predictive's samples take dim -3, so ``MAX_PLATE_NESTING = 2``.
A step over several pairs at once (:meth:`ParameterFactorization.model_pairs`) adds a
``pairs`` plate at dim -3 (``PAIRS_PLATE_NESTING = 3``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.nn import PyroModule
from torch import Tensor, nn

from pfpyro.data.batch import PairsBatch
from pfpyro.data.subwords import SubwordStates
from pfpyro.encode.top import EncoderTop, word_features
from pfpyro.errors import ConfigError
from pfpyro.model.capabilities import declares
from pfpyro.model.heads import Head
from pfpyro.model.priors import LatentPrior

MAX_PLATE_NESTING = 2
#: With several pairs per step (:meth:`ParameterFactorization.model_pairs`) a ``pairs`` plate
#: sits at dim -3, left of the sentences and words, and the particles move to dim -4.
PAIRS_PLATE_NESTING = 3


class ParameterFactorization(PyroModule):
    """The generative model's learned parts, its prior over t and l, the hypernetwork ψ, φ and
    the head, over two latent index sets: ``tasks`` and ``langs`` (sorted, so indices are
    stable). Built from a :class:`~pfpyro.model.description.ModelDescription`, which names
    each component; ``description`` is then set to it."""

    def __init__(
        self,
        tasks: Sequence[str],
        langs: Sequence[str],
        feature_dim: int,
        *,
        num_classes: Mapping[str, int],
        latent_dim: int,
        prior: LatentPrior,
        hypernet: nn.Module,
        head: Head,
        feature_mean: Tensor | None = None,
        feature_scale: Tensor | None = None,
        encoder_top: EncoderTop | None = None,
    ) -> None:
        super().__init__()
        self.tasks = tuple(sorted(tasks))
        self.langs = tuple(sorted(langs))
        if not self.tasks or not self.langs:
            raise ConfigError("the model needs at least one task and one language")
        self.num_classes = {task: int(num_classes[task]) for task in self.tasks}
        self.feature_dim = feature_dim
        self.latent_dim = latent_dim
        self.prior = prior
        self.hypernet = hypernet
        self.head = head
        # The encoder's top k layers when they are trained with ψ and φ (a deterministic part
        # of the model: x_ijk is their output), else None and x_ijk is a frozen feature.
        self.encoder_top = encoder_top
        self.description = None  # the ModelDescription it was built from, if any
        self.anchor = torch.nn.Buffer(torch.zeros(()))  # tells the model's device and dtype
        # x_ijk is the encoder state standardised by the seen training words' moments (fixed
        # before training, not learned): encoder states share a large offset that would
        # otherwise make the generated linear classifiers badly conditioned.
        mean = torch.zeros(feature_dim) if feature_mean is None else torch.as_tensor(feature_mean)
        scale = torch.ones(feature_dim) if feature_scale is None else torch.as_tensor(feature_scale)
        self.feature_mean = torch.nn.Buffer(mean.float().reshape(feature_dim))
        self.feature_scale = torch.nn.Buffer(scale.float().reshape(feature_dim))

    # -- indices ---------------------------------------------------------------------------
    def task_index(self, task: str) -> int:
        if task not in self.tasks:
            raise ConfigError(f"unknown task {task!r}; the model knows: {', '.join(self.tasks)}")
        return self.tasks.index(task)

    def lang_index(self, lang: str) -> int:
        if lang not in self.langs:
            raise ConfigError(
                f"unknown language {lang!r}; the model knows: {', '.join(self.langs)}"
            )
        return self.langs.index(lang)

    def standardize(self, features: Tensor | SubwordStates) -> Tensor:
        """x = (encoder state − mean) / scale, with the moments fixed at construction; the
        encoder state is the trained top's output when the inputs are subword states."""
        features = word_features(features, self.encoder_top)
        # x · (1 / scale) + (−mean / scale): one pass over the words' features, not two.
        inverse = self.feature_scale.reciprocal()
        return torch.addcmul(-self.feature_mean * inverse, features, inverse)

    # -- the generative story ----------------------------------------------------------------
    def latent_plates(self) -> tuple[pyro.plate, pyro.plate]:
        """The plates of the task vectors and of the language vectors (both dim -1)."""
        return (
            pyro.plate("tasks", len(self.tasks), dim=-1),
            pyro.plate("languages", len(self.langs), dim=-1),
        )

    def sample_latents(
        self,
        task_distribution: dist.Distribution,
        language_distribution: dist.Distribution,
        kl_weight: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """Sites t [.., n, h] and l [.., m, h] in :meth:`latent_plates`, scaled by ``kl_weight``.

        The model calls it with the prior's distributions and the guide with the posterior's,
        so the two always open the same plates with the same scale.
        """
        tasks, languages = self.latent_plates()
        with poutine.scale(scale=kl_weight):
            with tasks:
                t = pyro.sample("t", task_distribution)
            with languages:
                l = pyro.sample("l", language_distribution)
        return t, l

    def sample_theta(self, t_i: Tensor, l_j: Tensor, task: int | None = None) -> Tensor:
        """θ_ij ~ N(f_psi(t_i, l_j), diag f_phi(t_i, l_j)) (Algorithm 1, lines 7–9).

        f_phi is a variance, so the scale is its square root. The guide calls this very
        method, which makes q(θ | t, l) = p(θ | t, l) and KL(q(θ) ‖ p(θ)) = 0 (eq. 6).
        ``task`` is the task's index, read by task-blocked hypernetworks only.
        """
        loc, variance = self.hypernet(t_i, l_j, task)
        return pyro.sample("theta", dist.Normal(loc, variance.sqrt()).to_event(1))

    def model(
        self,
        task: str,
        lang: str,
        features: Tensor | SubwordStates,
        mask: Tensor,
        labels: Tensor | None = None,
        pair_size: int | None = None,
        kl_weight: float = 1.0,
        pair_weight: float = 1.0,
    ) -> None:
        """p(t, l, θ_ij, y_ij | x_ij) for a mini-batch of pair (task, lang).

        ``features`` [B, T, e] (or, with a trained encoder top, the subword states it reads)
        and ``mask`` [B, T] are B sentences of the pair, ``labels``
        [B, T] their gold labels (None to predict). The weights make one step an unbiased
        estimate of the ELBO of all seen data up to a constant (docs/design.md §4): the
        likelihood is scaled by ``pair_size`` / B (the pair's training sentences over the
        batch's) times ``pair_weight`` (1 / (P·π_ij) for a pair drawn with probability π_ij
        among P seen pairs; 1 for uniform draws), and the t and l terms by ``kl_weight``
        (β / P). The trainer sets them (:func:`pfpyro.infer.trainer.step_weights`).
        """
        i, j = self.task_index(task), self.lang_index(lang)
        # Algorithm 1, lines 1–4: a vector per task and per language, t_i ~ p(t), l_j ~ p(l)
        # (the paper's prior: N(0, I_h); see pfpyro.model.priors).
        t, l = self.sample_latents(*self.prior(), kl_weight)
        # Lines 5–9 for the pair (i, j). Slicing with i:i+1 keeps the plate dimension, so θ's
        # batch shape stays aligned with vectorised particles and Predictive's sample plate.
        theta = self.sample_theta(t[..., i : i + 1, :], l[..., j : j + 1, :], i)
        # Lines 10–11: y_ijk ~ p(· | x_ijk, θ_ij) for every word k of every sentence.
        self.observe_words(task, theta, features, mask, labels, pair_size, pair_weight)

    def observe_words(
        self,
        task: str,
        theta: Tensor,
        features: Tensor | SubwordStates,
        mask: Tensor,
        labels: Tensor | None,
        pair_size: int | None = None,
        pair_weight: float = 1.0,
    ) -> None:
        """Site y: every real word of the mini-batch under the head with weights ``theta``,
        in the subsampled ``sentences`` plate (scaled to ``pair_size`` sentences) and the
        masked ``words`` plate, times ``pair_weight``; without ``labels``, the words'
        probabilities as site "probs" (Algorithm 1, lines 10–11)."""
        batch, length = mask.shape
        sentence_ids = torch.arange(batch, device=mask.device)
        x = self.standardize(features)
        likelihood = self.head.distribution(theta, x, self.num_classes[task])
        with (
            pyro.plate("sentences", pair_size or batch, subsample=sentence_ids, dim=-2),
            pyro.plate("words", length, dim=-1),
            poutine.mask(mask=mask),
            poutine.scale(scale=pair_weight),
        ):
            if labels is None:
                pyro.deterministic("probs", likelihood.probs, event_dim=1)
            pyro.sample("y", likelihood, obs=labels)

    def forward(self, *args, **kwargs) -> None:
        return self.model(*args, **kwargs)

    # -- several pairs in one step ---------------------------------------------------------
    def model_pairs(self, batch: PairsBatch, kl_weight: float = 1.0) -> None:
        """p(t, l, θ, y) for mini-batches of P pairs at once: one draw of t and l, then the
        pairs' θ and words in a ``pairs`` plate (dim -3), vectorised, so a step has P pairs'
        work. Pair p's likelihood is scaled by ``batch.scale[p]``: its single-pair weight
        (N_p / B_p · 1 / (P_seen π_p)) over P, which makes the step's ELBO the mean of the P
        single-pair estimates (:meth:`model`) on the same draws, so still an unbiased estimate
        of ELBO / P_seen. Needs ``max_plate_nesting`` = :data:`PAIRS_PLATE_NESTING`; a
        task-blocked hypernetwork's θ are padded to the head's widest layout
        (:meth:`blocked_pair_params`)."""
        t, l = self.sample_latents(*self.prior(), kl_weight)  # Algorithm 1, lines 1–4
        with self.pairs_plate(batch):
            theta = self.sample_pair_thetas(t, l, batch.pairs)  # lines 5–9, every pair at once
            self.observe_pair_words(batch, theta)  # lines 10–11

    def pairs_plate(self, batch: PairsBatch) -> pyro.plate:
        """The plate of a step's pairs (dim -3), around their θ and their words."""
        return pyro.plate("pairs", len(batch.pairs), dim=-3)

    def sample_pair_thetas(self, t: Tensor, l: Tensor, pairs: Sequence[tuple[str, str]]) -> Tensor:
        """θ of each of ``pairs``, batch shape [..., P, 1, 1], inside :meth:`pairs_plate`
        (dim -3, left of the sentences and words plates). The guide calls this very method."""
        if declares(type(self.hypernet), "task_blocked"):
            loc, variance = self.blocked_pair_params(t, l, pairs)
        else:
            tasks = torch.tensor([self.task_index(task) for task, _ in pairs], device=t.device)
            langs = torch.tensor([self.lang_index(lang) for _, lang in pairs], device=l.device)
            loc, variance = self.hypernet(t[..., tasks, :], l[..., langs, :], None)  # [..., P, d]
        outer = loc.shape[:-2][:-2] if loc.dim() > 2 else ()  # particles; no plate dims
        shape = (*outer, len(pairs), 1, 1, loc.shape[-1])
        return pyro.sample(
            "theta", dist.Normal(loc.reshape(shape), variance.sqrt().reshape(shape)).to_event(1)
        )

    def blocked_pair_params(
        self, t: Tensor, l: Tensor, pairs: Sequence[tuple[str, str]]
    ) -> tuple[Tensor, Tensor]:
        """(f_psi, f_phi) [..., P, d] of each pair from a task-blocked hypernetwork, each
        task's θ put in the head's padded layout (extra slots: mean 0, variance 1). Model and
        guide draw the padded slots from the same N(0, 1), so they add nothing to the ELBO, and
        the head masks the padded classes out of the softmax. The hypernetwork runs once per
        task of the step, over all of that task's pairs."""
        by_task: dict[str, list[int]] = {}
        for p, (task, _) in enumerate(pairs):
            by_task.setdefault(task, []).append(p)
        locs, variances = [], []
        for task, members in by_task.items():
            i, classes = self.task_index(task), self.num_classes[task]
            langs = torch.tensor([self.lang_index(pairs[p][1]) for p in members], device=l.device)
            # t_i once [..., 1, h], beside the task's n languages [..., n, h]
            loc, variance = self.hypernet(t[..., i : i + 1, :], l[..., langs, :], i)
            locs.append(self.head.padded(loc, classes, 0.0))
            variances.append(self.head.padded(variance, classes, 1.0))
        # Back from the tasks' order to the pairs' own.
        grouped = [p for members in by_task.values() for p in members]
        order = torch.argsort(torch.tensor(grouped, device=l.device))
        return torch.cat(locs, -2).index_select(-2, order), torch.cat(variances, -2).index_select(
            -2, order
        )

    def observe_pair_words(self, batch: PairsBatch, theta: Tensor) -> None:
        """Site y of every real word of the P pairs' batches (inside :meth:`pairs_plate`),
        pair p's classes beyond its task's count masked out of its softmax (as a single pair's
        are sliced off)."""
        if type(self.head).distribution is not Head.distribution:
            raise ConfigError(
                f"several pairs per step take the head's logits as a categorical likelihood; "
                f"{type(self.head).__name__} has a distribution of its own (use 1)"
            )
        _, sentences, length = batch.mask.shape
        classes = torch.tensor([self.num_classes[task] for task, _ in batch.pairs])
        widest = int(classes.max())
        logits = self.head.logits(theta, self.standardize(batch.features), widest)
        padded = torch.arange(widest) >= classes[:, None]  # [P, c]
        padded = padded.to(logits.device)[:, None, None, :]
        logits = logits.masked_fill(padded, float("-inf"))
        with (
            pyro.plate("sentences", sentences, dim=-2),
            pyro.plate("words", length, dim=-1),
            poutine.mask(mask=batch.mask),
            poutine.scale(scale=batch.scale[:, None, None]),
        ):
            pyro.sample("y", dist.Categorical(logits=logits), obs=batch.labels)

    # -- prediction at fixed latents -------------------------------------------------------
    def plugin_probs(
        self, task: str, lang: str, features: Tensor | SubwordStates, t_mean: Tensor, l_mean: Tensor
    ) -> Tensor:
        """p(y | x) with t, l at given points (the posterior means) and θ at f_psi (§3.2)."""
        i, j = self.task_index(task), self.lang_index(lang)
        theta, _ = self.hypernet(t_mean[..., i : i + 1, :], l_mean[..., j : j + 1, :], i)
        logits = self.head.logits(theta, self.standardize(features), self.num_classes[task])
        return logits.softmax(-1)

"""Prediction with a trained parameter-factorization model (paper §3.2).

Two predictive distributions for a pair (task i, language j), seen or not:

- **plug-in**: t_i and l_j at their posterior means E_q[t], E_q[l], and θ_ij at f_psi(t_i, l_j);
  one classifier, cheap (what the paper reports).
- **Bayesian model averaging (BMA)**: S draws (t, l, θ) from the guide, each giving a softmax
  classifier; the prediction is the mean of the S **probability** vectors (never of the logits:
  averaging logits is the authors' bug listed in docs/design.md §10).

Either way the predictive entropy H = -Σ_c p_c ln p_c of each word measures the model's
uncertainty; :func:`pfpyro.evaluate.sentence_entropy` averages it over a sentence's words.

Parameters are module-local (:mod:`pfpyro.model`): a prediction reads the given model's own
tensors, whatever else the process has trained, loaded or put in Pyro's global store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from pyro import poutine
from pyro.infer import Predictive
from torch import Tensor

from pfpyro.data.batch import sentence_chunks
from pfpyro.data.subwords import SubwordStates
from pfpyro.errors import ConfigError
from pfpyro.evaluate.uncertainty import token_entropy
from pfpyro.model.factorization import MAX_PLATE_NESTING, ParameterFactorization
from pfpyro.model.guides import FactorizationGuide

MODES = ("plugin", "bma")

#: What a model reads: word features [N, T, e], or the subword states of a trained top.
Inputs = Tensor | SubwordStates


class PFPredictor:
    """The :class:`~pfpyro.predictor.TokenPredictor` of a trained factorization and guide.

    ``mode`` is "plugin" (posterior means) or "bma" (mean of ``num_samples`` per-sample
    probabilities). Inputs are cut into chunks of ``batch_size`` sentences; the BMA draws its
    S posterior samples once per call, so every chunk sees the same S classifiers. Work runs on
    the model's device; results come back on the device of ``mask``. ``features`` are word
    features, or subword states for a model that trained the encoder's top.
    """

    def __init__(
        self,
        factorization: ParameterFactorization,
        guide: FactorizationGuide,
        mode: str = "plugin",
        num_samples: int = 100,
        batch_size: int = 64,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown prediction mode {mode!r}; known: {', '.join(MODES)}")
        if num_samples < 1 or batch_size < 1:
            raise ConfigError(
                f"num_samples and batch_size must be positive, got {num_samples}, {batch_size}"
            )
        self.factorization = factorization
        self.guide = guide
        self.mode = mode
        self.num_samples = num_samples
        self.batch_size = batch_size

    @property
    def device(self) -> torch.device:
        return self.factorization.anchor.device

    # -- the TokenPredictor interface ------------------------------------------------------
    def predict_proba(self, task: str, lang: str, features: Inputs, mask: Tensor) -> Tensor:
        """p(y | x) per word: [N, T, e], [N, T] -> [N, T, c_task]."""
        if self.mode == "plugin":
            return self.plugin_proba(task, lang, features, mask)
        return self.bma_proba(task, lang, features, mask)

    def predict_with_entropy(
        self, task: str, lang: str, features: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(probabilities [N, T, c], predictive entropy per word [N, T], 0 at padding)."""
        probs = self.predict_proba(task, lang, features, mask)
        entropy = token_entropy(probs).to(probs.dtype).clamp_min(0.0)
        entropy = entropy.masked_fill(~mask.to(probs.device, torch.bool), 0.0)
        return probs, entropy

    # -- plug-in ---------------------------------------------------------------------------
    @torch.no_grad()
    def plugin_proba(self, task: str, lang: str, features: Inputs, mask: Tensor) -> Tensor:
        """Posterior means of t and l, θ at f_psi: one classifier (paper §3.2)."""
        self._check(task, lang, features, mask)
        if len(features) == 0:
            return self._empty(task, mask)[0]
        t_mean, l_mean = self.guide.posterior_means()
        out = [
            self.factorization.plugin_probs(task, lang, chunk, t_mean, l_mean)
            for chunk, _ in self._chunks(features, mask)
        ]
        return torch.cat(out).to(mask.device)

    # -- Bayesian model averaging ------------------------------------------------------------
    @torch.no_grad()
    def posterior_samples(self, num_samples: int | None = None) -> dict[str, Tensor]:
        """S draws of t [S, 1, n, h] and l [S, 1, m, h] from the guide's q(t) and q(l).

        The shapes put the sample dimension at -MAX_PLATE_NESTING - 1, where the model's
        plates expect it. We do not hand the guide to ``Predictive(model, guide=guide,
        parallel=True)``: it infers the plate nesting from the guide alone (only dim -1
        there), puts its sample plate at dim -2 and mis-shapes the event-dimensional sites.
        θ is not drawn here (see :meth:`sample_proba`).
        """
        shape = (num_samples or self.num_samples,) + (1,) * (MAX_PLATE_NESTING - 1)
        return {
            "t": self.guide.task_posterior().sample(shape),
            "l": self.guide.language_posterior().sample(shape),
        }

    def sample_proba(self, task: str, lang: str, features: Inputs, mask: Tensor, samples=None):
        """Per-sample probabilities [S, N, T, c]: the model run at each posterior sample
        (``samples`` as in :meth:`sample_proba_with_samples`, which also returns them)."""
        return self.sample_proba_with_samples(task, lang, features, mask, samples)[0]

    @torch.no_grad()
    def sample_proba_with_samples(
        self,
        task: str,
        lang: str,
        features: Inputs,
        mask: Tensor,
        samples: Mapping[str, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-sample probabilities [S, N, T, c], and the samples t, l, θ that gave them.

        ``samples`` (default: fresh ones from :meth:`posterior_samples`) go to the model
        through ``Predictive(posterior_samples=...)``. When they hold no θ, the model draws it
        from p(θ | t, l), which *is* the guide's q(θ | t, l) (the guide calls the model's own
        ``sample_theta``): the same draw as the guide's, without a second pass of the
        hypernetwork over the S samples. The θ of the first chunk is kept and given to the
        later chunks, so all sentences of one call see the same S classifiers. The label
        site y is conditioned on dummy labels: prediction needs its probabilities, not
        S·N·T categorical draws.
        """
        self._check(task, lang, features, mask)
        samples = dict(samples) if samples is not None else self.posterior_samples()
        size = samples["t"].shape[0]
        if len(features) == 0:
            return self._empty(task, mask).expand(size, -1, -1, -1), samples
        out = []
        for chunk, chunk_mask in self._chunks(features, mask):
            dummy = {"y": torch.zeros(chunk_mask.shape, dtype=torch.long, device=self.device)}
            predictive = Predictive(
                poutine.condition(self.factorization.model, data=dummy),
                posterior_samples=samples,
                num_samples=size,
                parallel=True,
                return_sites=["probs", "theta"],
            )
            result = predictive(task, lang, chunk, chunk_mask)
            out.append(result["probs"])
            samples.setdefault("theta", result["theta"])
        return torch.cat(out, dim=1).to(mask.device), samples

    def bma_proba(self, task: str, lang: str, features: Inputs, mask: Tensor) -> Tensor:
        """The model average (1/S) Σ_s p(y | x, θ_s) over S guide samples [N, T, c]."""
        return self.sample_proba(task, lang, features, mask).mean(0)

    # -- helpers ---------------------------------------------------------------------------
    def _check(self, task: str, lang: str, features: Inputs, mask: Tensor) -> None:
        self.factorization.task_index(task)
        self.factorization.lang_index(lang)
        if isinstance(features, SubwordStates):
            if features.first.shape != mask.shape:
                raise ConfigError(
                    f"expected word positions [N, T] as the mask {tuple(mask.shape)}, got "
                    f"{tuple(features.first.shape)}"
                )
            features = features.states
        elif features.dim() != 3 or features.shape[:2] != mask.shape:
            raise ConfigError(
                f"expected features [N, T, e] and mask [N, T], got {tuple(features.shape)} "
                f"and {tuple(mask.shape)}"
            )
        if features.shape[-1] != self.factorization.feature_dim:
            raise ConfigError(
                f"features have width {features.shape[-1]} but the model was trained on "
                f"width {self.factorization.feature_dim}"
            )

    def _empty(self, task: str, mask: Tensor) -> Tensor:
        classes = self.factorization.num_classes[task]
        return torch.zeros(1, 0, mask.shape[1], classes, device=mask.device)

    def _chunks(self, features: Inputs, mask: Tensor) -> Iterator[tuple[Inputs, Tensor]]:
        return sentence_chunks(features, mask, self.batch_size, self.device)

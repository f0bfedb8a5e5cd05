"""New heads (likelihoods) for the parameter-factorization model, added without editing pfpyro.

A head decides how a sampled parameter vector θ_ij turns word features x into a distribution
over labels, p(y | x, θ_ij). The paper's head is ``softmax(W x + b)``
(:class:`pfpyro.model.heads.SoftmaxHead`). Two variations here:

- :class:`TemperedSoftmaxHead`: ``softmax((W x + b) / τ)``. Only ``logits`` changes. A fixed
  τ > 1 flattens every generated classifier, which, with θ's prior variance f_phi, changes how
  much a draw of θ moves the predictions.
- :class:`LabelSmoothedSoftmaxHead`: ``p̃ = (1 − ε) softmax(W x + b) + ε / c``, the likelihood
  of a label that is the classifier's with probability 1 − ε and uniformly random otherwise
  (a label-noise model; as a training loss it is label smoothing). It stays a proper
  categorical distribution, so Pyro's Trace_ELBO, the plug-in predictor and Bayesian model
  averaging all work unchanged.

Each is registered by name (``@register("head", ...)``), so a config names it
(``model.head: {name: tempered-softmax, temperature: 2}``, with this file in
``model.imports``) and ``pfpyro.infer.train``, ``pfpyro train``, ``model.json`` and
``pfpyro.load`` all build it like the built-in head.

Run it: ``python docs/examples/heads.py`` (trains both heads on a synthetic world).

References: Ponti et al. (2021), TACL 9, §2 step (3); Müller, Kornblith and Hinton (2019),
"When does label smoothing help?", NeurIPS.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from torch import Tensor

from pfpyro.config import ModelConfig, OptimConfig, TrainConfig
from pfpyro.infer import PFPredictor, train
from pfpyro.model import register
from pfpyro.model.heads import SoftmaxHead
from pfpyro.testing.synthetic import make_world


# --8<-- [start:tempered]
@register("head", "tempered-softmax")
class TemperedSoftmaxHead(SoftmaxHead):
    """softmax((W x + b) / τ): the paper's head with a fixed temperature τ."""

    def __init__(self, feature_dim: int, max_classes: int, temperature: float = 2.0) -> None:
        super().__init__(feature_dim, max_classes)
        if temperature <= 0:
            raise ValueError(f"the temperature must be positive, got {temperature}")
        self.temperature = temperature

    def logits(self, theta: Tensor, features: Tensor, num_classes: int) -> Tensor:
        return super().logits(theta, features, num_classes) / self.temperature


# --8<-- [end:tempered]


# --8<-- [start:smoothed]
@register("head", "label-smoothed-softmax")
class LabelSmoothedSoftmaxHead(SoftmaxHead):
    """p̃(y | x, θ) = (1 − ε) softmax(W x + b)_y + ε / c: a label-noise likelihood."""

    def __init__(self, feature_dim: int, max_classes: int, smoothing: float = 0.1) -> None:
        super().__init__(feature_dim, max_classes)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"the smoothing must lie in [0, 1), got {smoothing}")
        self.smoothing = smoothing

    def logits(self, theta: Tensor, features: Tensor, num_classes: int) -> Tensor:
        # Returned as log-probabilities: Categorical(logits=...) and the plug-in predictor's
        # softmax both give back p̃ itself, so training and prediction see one distribution.
        probs = super().logits(theta, features, num_classes).softmax(-1)
        return torch.log((1.0 - self.smoothing) * probs + self.smoothing / num_classes)


# --8<-- [end:smoothed]


HEADS = {
    "tempered": {"name": "tempered-softmax", "temperature": 2.0},
    "smoothed": {"name": "label-smoothed-softmax", "smoothing": 0.1},
}


def demo(head_name: str, steps: int = 200, seed: int = 0) -> tuple[list[float], Tensor]:
    """Train the named head on a synthetic world; return the ELBO of each logging window and
    the BMA probabilities [N, T, c] of a held-out pair's first test sentences."""
    # --8<-- [start:use]
    world = make_world(num_tasks=2, num_langs=4, feature_dim=8, latent_dim=3, seed=seed)
    heldout = ("task1", "lang3")
    seen = [pair for pair in world.pairs() if pair != heldout]
    model = ModelConfig(
        latent_dim=3,
        hypernet={"name": "shared", "hidden_dims": [16]},
        head=HEADS[head_name],  # a registered head, by name, with its arguments
        guide={"name": "lr", "rank": 2},
    )
    config = TrainConfig(
        batch_size=8,
        optim=OptimConfig(lr=0.03),
        max_steps=steps,
        eval_every=steps,
        log_every=10,
        seed=seed,
        progress=False,
    )
    result = train(
        {pair: world.train[pair] for pair in seen},
        {pair: world.dev[pair] for pair in seen},
        config,
        model=model,
        tasks=world.tasks,
        langs=world.langs,
        num_classes=world.num_classes,
    )
    # The predictors call the head too: plug-in and model averaging work unchanged.
    test = world.test[heldout]
    predictor = PFPredictor(result.factorization, result.guide, mode="bma", num_samples=50)
    probs = predictor.predict_proba(*heldout, test.features[:4].float(), test.mask[:4])
    # --8<-- [end:use]
    elbo = [record["elbo_mean"] for record in result.history if record["kind"] == "train"]
    return elbo, probs


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="SVI steps per head")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(args: Sequence[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    for name in ("tempered", "smoothed"):
        elbo, probs = demo(name, ns.steps, ns.seed)
        print(
            f"{name}: mean ELBO of the first logging window {elbo[0]:.1f}, of the last "
            f"{elbo[-1]:.1f}; held-out predictions {tuple(probs.shape)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

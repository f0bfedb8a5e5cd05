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

A head goes to :class:`~pfpyro.model.factorization.ParameterFactorization` as ``head=``;
:func:`fit_with_svi` then trains the model with Pyro's SVI directly. (``pfpyro.infer.train``
and ``pfpyro train`` rebuild the model from ``model.json``, which knows only the softmax head.)

Run it: ``python docs/examples/heads.py`` (trains both heads on a synthetic world).

References: Ponti et al. (2021), TACL 9, §2 step (3); Müller, Kornblith and Hinton (2019),
"When does label smoothing help?", NeurIPS.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import ClippedAdam
from torch import Tensor

from pfpyro.data.batch import PairTensors
from pfpyro.data.synthetic import make_world
from pfpyro.infer import PFPredictor
from pfpyro.infer.trainer import step_weights
from pfpyro.model.factorization import MAX_PLATE_NESTING, ParameterFactorization
from pfpyro.model.guides import LowRankGuide
from pfpyro.model.heads import SoftmaxHead

Pair = tuple[str, str]


# --8<-- [start:tempered]
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


# --8<-- [start:fit]
def fit_with_svi(
    factorization: ParameterFactorization,
    guide: LowRankGuide,
    train: Mapping[Pair, PairTensors],
    steps: int = 200,
    batch_size: int = 8,
    lr: float = 0.03,
    num_particles: int = 3,
    seed: int = 0,
) -> list[float]:
    """Plain SVI on the seen pairs ``train``: one pair and a mini-batch of it per step.

    The step weights are the trainer's (``step_weights``: the likelihood scaled to the pair,
    the KL of t and l weighted 1/P over P seen pairs), so each step estimates ELBO / P, as in
    ``pfpyro.infer.train``. Returns the loss (−ELBO) of
    every step. Run it inside ``pyro.get_param_store().scope()`` to keep models apart.
    """
    pyro.set_rng_seed(seed)
    pairs = sorted(train)
    sizes = {pair: len(train[pair]) for pair in pairs}
    pair_weights, kl_weight = step_weights(sizes, "uniform")
    elbo = Trace_ELBO(
        num_particles=num_particles,
        vectorize_particles=True,
        max_plate_nesting=MAX_PLATE_NESTING,
    )
    svi = SVI(factorization.model, guide, ClippedAdam({"lr": lr}), elbo)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        task, lang = pairs[int(torch.randint(len(pairs), (1,), generator=generator))]
        size = sizes[task, lang]
        index = torch.randperm(size, generator=generator)[:batch_size]
        batch = train[task, lang].batch(index)
        loss = svi.step(
            task,
            lang,
            batch.features,
            batch.mask,
            batch.labels,
            pair_size=size,
            kl_weight=kl_weight,
            pair_weight=pair_weights[task, lang],
        )
        losses.append(loss)
    return losses


# --8<-- [end:fit]


def demo(head_name: str, steps: int = 200, seed: int = 0) -> tuple[list[float], Tensor]:
    """Train the named head on a synthetic world; return the losses and the BMA probabilities
    [N, T, c] of a held-out pair's first test sentences."""
    # --8<-- [start:use]
    world = make_world(num_tasks=2, num_langs=4, feature_dim=8, latent_dim=3, seed=seed)
    heldout = ("task1", "lang3")
    train = {pair: world.train[pair] for pair in world.pairs() if pair != heldout}
    heads = {
        "tempered": TemperedSoftmaxHead(world.feature_dim, 4, temperature=2.0),
        "smoothed": LabelSmoothedSoftmaxHead(world.feature_dim, 4, smoothing=0.1),
    }
    with pyro.get_param_store().scope():
        factorization = ParameterFactorization(
            world.tasks,
            world.langs,
            world.feature_dim,
            num_classes=world.num_classes,
            latent_dim=3,
            hidden_dims=(16,),
            head=heads[head_name],
        )
        guide = LowRankGuide(factorization, rank=2)
        losses = fit_with_svi(factorization, guide, train, steps=steps, seed=seed)
        # The predictors call the head too: plug-in and model averaging work unchanged.
        test = world.test[heldout]
        predictor = PFPredictor(factorization, guide, mode="bma", num_samples=50)
        probs = predictor.predict_proba(*heldout, test.features[:4].float(), test.mask[:4])
    # --8<-- [end:use]
    return losses, probs


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="SVI steps per head")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(args: Sequence[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    for name in ("tempered", "smoothed"):
        losses, probs = demo(name, ns.steps, ns.seed)
        window = max(1, len(losses) // 5)
        first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
        print(
            f"{name}: mean loss of the first {window} steps {first:.1f}, last {last:.1f}; "
            f"held-out predictions {tuple(probs.shape)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The step objective is an unbiased estimate of the full-data ELBO (issue 8, item 0).

Tested as a property, not a formula: on a tiny world with uneven pairs, the step objectives
the trainer would compute, averaged over its pair draws (uniform or by size) and over the
mini-batches of an epoch, times P (the number of seen pairs), equal the ELBO of all seen data
on the same draws of t, l and θ.
"""

from __future__ import annotations

import pytest
import torch
from pyro import poutine

from pfpyro.data.batch import PairTensors
from pfpyro.infer.trainer import pair_probabilities, step_weights
from pfpyro.model import Component, ModelDescription
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")

BATCH = 4


@pytest.fixture(scope="module")
def world():
    return make_world(2, 3, num_classes=3, feature_dim=5, sentences=(12, 4, 4), length=6, seed=5)


def uneven(world) -> dict[tuple[str, str], PairTensors]:
    """Five seen pairs of 12, 8, 4, 12, 8 sentences (multiples of the batch)."""
    pairs = [p for p in world.pairs() if p != ("task1", "lang2")]
    out = {}
    for k, pair in enumerate(pairs):
        n = (3 - k % 3) * BATCH
        data = world.train[pair]
        out[pair] = PairTensors(data.features[:n], data.labels[:n], data.mask[:n])
    return out


def log_density(trace) -> float:
    trace.compute_log_prob()
    sites = trace.nodes.values()
    return float(sum(site["log_prob_sum"].detach() for site in sites if "log_prob_sum" in site))


@pytest.mark.parametrize("sampling", ["uniform", "size"])
@pytest.mark.parametrize("kind", ["lr", "d"])
@pytest.mark.parametrize("beta", [1.0, 0.3])
@torch.no_grad()
def test_mean_step_objective_times_p_is_the_full_data_elbo(world, sampling, kind, beta):
    train = uneven(world)
    f, guide = ModelDescription.for_sizes(
        world.tasks, world.langs, world.num_classes, 5, latent_dim=2,
        hypernet=Component("shared", {"hidden_dims": []}), guide=kind,
    ).build()  # fmt: skip
    with torch.no_grad():
        t = guide.task_posterior().sample()
        l = guide.language_posterior().sample()
        thetas = {
            (task, lang): f.hypernet(
                t[f.task_index(task)], l[f.lang_index(lang)], f.task_index(task)
            )[0]
            for task, lang in train
        }
    sizes = {pair: len(data) for pair, data in train.items()}
    weights, kl_weight = step_weights(sizes, sampling, beta)
    probs = pair_probabilities(sizes, sampling)

    def step_objective(pair, index) -> float:
        data = {"t": t, "l": l, "theta": thetas[pair]}
        batch = train[pair].batch(index, torch.device("cpu"))
        args = (*pair, batch.features.float(), batch.mask, batch.labels, sizes[pair],
                kl_weight, weights[pair])  # fmt: skip
        guide_trace = poutine.trace(poutine.condition(guide, data)).get_trace(*args)
        model_trace = poutine.trace(
            poutine.replay(poutine.condition(f.model, data), trace=guide_trace)
        ).get_trace(*args)
        return log_density(model_trace) - log_density(guide_trace)

    expected_step = 0.0
    for pair, n in sizes.items():
        batches = [torch.arange(lo, lo + BATCH) for lo in range(0, n, BATCH)]
        expected_step += probs[pair] * sum(step_objective(pair, b) for b in batches) / len(batches)

    # The ELBO of all seen data on the same draws: every word's log-likelihood under its
    # pair's θ, and β times log p(t, l) - log q(t, l) (the θ terms cancel: q(θ) = p(θ)).
    log_lik = 0.0
    for pair, data in train.items():
        x = f.standardize(data.features.float())
        logits = f.head.logits(thetas[pair], x, world.num_classes[pair[0]])
        token = torch.distributions.Categorical(logits=logits).log_prob(data.labels)
        log_lik += float(token[data.mask].sum())
    prior = torch.distributions.Normal(0.0, 1.0)
    latent = sum(
        float(prior.log_prob(z).sum() - q.log_prob(z).sum())
        for z, q in ((t, guide.task_posterior()), (l, guide.language_posterior()))
    )
    full_elbo = log_lik + beta * latent
    assert len(sizes) * expected_step == pytest.approx(full_elbo, rel=1e-5)


def test_size_sampling_corrects_for_its_draw_probability():
    sizes = {("a", "x"): 30, ("a", "y"): 10, ("b", "x"): 60}
    weights, kl = step_weights(sizes, "size", beta=2.0)
    probs = pair_probabilities(sizes, "size")
    assert sum(probs.values()) == pytest.approx(1.0)
    assert probs["b", "x"] == pytest.approx(0.6)
    # each pair's expected contribution P·π·w is 1: every pair counts once per epoch
    for pair in sizes:
        assert len(sizes) * probs[pair] * weights[pair] == pytest.approx(1.0)
    assert kl == pytest.approx(2.0 / 3)

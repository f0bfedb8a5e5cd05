"""Posterior coverage on synthetic worlds: with the hypernetwork fixed to the truth, the true
task and language vectors fall inside the guide's credible intervals at about the nominal rate.

Each world is drawn from the generative model (t, l ~ N(0, I)), so an exact posterior covers
the truth at exactly the nominal rate on average over worlds; a variational one should come
close. What this can catch: a likelihood or KL on the wrong scale (too wide or too narrow
intervals), a guide whose variance is read as a standard deviation, a mean that does not
move towards the data. Each step is the trainer's objective (``step_weights``) on a random
half of every pair's sentences, so the sentence-plate scaling is exercised too.

Measured (this test's settings, both guides pooled): ``pytest tests/test_coverage.py -s``
prints the coverage of the central 50 % and 90 % intervals.
"""

from __future__ import annotations

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO

from pfpyro.infer.trainer import step_weights
from pfpyro.model import Component, ModelDescription
from pfpyro.model.factorization import MAX_PLATE_NESTING
from pfpyro.model.registry import lookup
from pfpyro.testing.synthetic import make_world

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

WORLDS = 6
LATENT_DIM = 4
# 900 steps: fits from a fresh start converge (d at 300 steps covered 0.98 at 90 %, too wide).
# 300 passed only while Pyro's global store made worlds 1-5 start from world 0's fit.
STEPS = 900
Z = {0.5: 0.6745, 0.9: 1.6449}  # two-sided standard normal quantiles


def fit_guide_with_true_hypernet(seed: int, kind: str):
    """Fit the guide of ``kind`` by SVI on a world whose hypernetwork is held at the truth;
    return the world and the guide."""
    world = make_world(2, 3, latent_dim=LATENT_DIM, sentences=(10, 1, 1), length=6, seed=seed)
    factorization, _ = ModelDescription.for_sizes(
        world.tasks,
        world.langs,
        world.num_classes,
        world.feature_dim,
        latent_dim=LATENT_DIM,
        hypernet=Component("shared", {"hidden_dims": []}),
        guide="d",  # (replaced below, after the seed)
    ).build()
    factorization.hypernet.load_state_dict(world.hypernet.state_dict())
    factorization.hypernet.requires_grad_(False)
    factorization.hypernet.train(False)  # Pyro registers no frozen parameter
    pyro.set_rng_seed(seed)
    guide = lookup("guide", kind)(factorization, **({"rank": 2} if kind == "lr" else {}))
    elbo = Trace_ELBO(
        num_particles=16, vectorize_particles=True, max_plate_nesting=MAX_PLATE_NESTING
    )
    sizes = {pair: len(data.labels) for pair, data in world.train.items()}
    pair_weight, kl_weight = step_weights(sizes, "uniform")
    generator = torch.Generator().manual_seed(seed)

    def objective() -> torch.Tensor:
        """P × one step's objective for each pair: the full-data negative ELBO, estimated."""
        total = 0.0
        for (task, lang), data in world.train.items():
            half = torch.randperm(sizes[task, lang], generator=generator)[: sizes[task, lang] // 2]
            total = total + elbo.differentiable_loss(
                factorization.model,
                guide,
                task,
                lang,
                data.features[half].float(),
                data.mask[half],
                data.labels[half],
                pair_size=sizes[task, lang],
                kl_weight=kl_weight,
                pair_weight=pair_weight[task, lang],
            )
        return total

    objective()  # creates the guide's parameters
    optimiser = torch.optim.Adam(guide.parameters(), lr=0.1)
    decay = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 0.05 ** (k / STEPS))
    for _ in range(STEPS):
        optimiser.zero_grad()
        objective().backward()
        optimiser.step()
        decay.step()
    return world, guide


@pytest.mark.parametrize("kind", ["d", "lr"])
def test_true_latents_fall_in_credible_intervals_at_the_nominal_rate(kind):
    z_scores = []
    for seed in range(WORLDS):
        world, guide = fit_guide_with_true_hypernet(seed, kind)
        with torch.no_grad():
            for posterior, truth in (
                (guide.task_posterior(), world.t),
                (guide.language_posterior(), world.l),
            ):
                z_scores.append(((truth - posterior.mean) / posterior.variance.sqrt()).flatten())
    z = torch.cat(z_scores).abs()
    assert z.numel() == WORLDS * 5 * LATENT_DIM
    coverage = {level: float((z < q).float().mean()) for level, q in Z.items()}
    print(f"guide {kind}: coverage {coverage} over {z.numel()} coordinates")
    # The 90 % interval covers about 90 %; the 50 % interval about half (binomial sd with
    # 120 coordinates: 0.027 and 0.046). Intervals off by a factor of 2 in width fail both.
    assert 0.80 <= coverage[0.9] <= 0.98
    assert 0.35 <= coverage[0.5] <= 0.65

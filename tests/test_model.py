"""The Pyro model and guides against the maths: sites, shapes, the ELBO and its KL terms."""

from __future__ import annotations

import math
import warnings

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from pyro.optim.clipped_adam import ClippedAdam
from pyro.poutine.util import site_is_subsample
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence
from torch.distributions import LowRankMultivariateNormal as TorchLowRank
from torch.nn.functional import softplus

from pfpyro.infer.trainer import closed_form_kl
from pfpyro.model import Component, ModelDescription
from pfpyro.model.factorization import MAX_PLATE_NESTING
from pfpyro.model.kl import kl_lowrank_to_standard
from pfpyro.testing.reference import reference_elbo
from pfpyro.testing.synthetic import make_world

PAIR = ("task1", "lang2")
PARTICLE_PLATE = "num_particles_vectorized"  # the name Pyro's ELBOs give their particle plate


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world():
    return make_world(3, 4, num_classes=3, feature_dim=5, sentences=(10, 4, 4), length=7, seed=3)


def build(world, kind: str, hidden_dims=(6,), seed: int = 0):
    pyro.set_rng_seed(seed)
    return ModelDescription.for_sizes(
        world.tasks,
        world.langs,
        world.num_classes,
        world.feature_dim,
        latent_dim=4,
        hypernet=Component("shared", {"hidden_dims": hidden_dims, "init_variance": 0.05}),
        guide=Component(kind, {"rank": 2} if kind == "lr" else {}),
    ).build()


def padded_batch(world, size: int = 5):
    """A mini-batch with padding: sentence k keeps 7 - k words."""
    data = world.train[PAIR].batch(list(range(size)))
    mask = data.mask.clone()
    for k in range(size):
        mask[k, data.mask.shape[1] - k :] = False
    return data.features, mask, data.labels


def model_and_guide_traces(f, guide, args, particles: int):
    """Guide and replayed model traces under a vectorised particle plate, as the ELBOs do."""
    with pyro.plate(PARTICLE_PLATE, particles, dim=-MAX_PLATE_NESTING - 1):
        guide_trace = poutine.trace(guide).get_trace(*args)
        model_trace = poutine.trace(poutine.replay(f.model, trace=guide_trace)).get_trace(*args)
    return model_trace, guide_trace


@pytest.mark.parametrize("kind", ["lr", "d"])
def test_model_and_guide_share_latent_sites_and_svi_step_is_silent(world, kind):
    f, guide = build(world, kind)
    features, mask, labels = padded_batch(world)
    args = (*PAIR, features, mask, labels, 10, 0.5)
    model_trace, guide_trace = model_and_guide_traces(f, guide, args, particles=3)
    latent = {
        name
        for name, site in model_trace.nodes.items()
        if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site)
    }
    guide_sites = {
        name
        for name, site in guide_trace.nodes.items()
        if site["type"] == "sample" and not site_is_subsample(site)
    }
    assert latent == guide_sites == {"t", "l", "theta"}
    # "Found vars in model but not guide" and every other Pyro warning would fail here. The
    # parameters are module-local, so the step is the torch one: the ELBO as a module whose
    # parameters are the model's and the guide's, and a torch optimiser over them.
    objective = Trace_ELBO(
        num_particles=3, vectorize_particles=True, max_plate_nesting=MAX_PLATE_NESTING
    )(f, guide)
    names = {name for name, _ in objective.named_parameters()}
    assert "guide.t_loc_unconstrained" in names and any(".hypernet." in n for n in names)
    optimiser = ClippedAdam(objective.parameters(), lr=0.01)
    before = guide.t_loc.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = objective(*args)
        loss.backward()
        optimiser.step()
    assert math.isfinite(float(loss.detach())) and not torch.equal(guide.t_loc, before)


def test_trace_shapes_under_three_vectorised_particles(world):
    f, guide = build(world, "lr")
    features, mask, labels = padded_batch(world, size=5)
    model_trace, _ = model_and_guide_traces(
        f, guide, (*PAIR, features, mask, labels, 10, 1.0), particles=3
    )
    n, m, h, d = len(world.tasks), len(world.langs), 4, f.head.num_params
    assert model_trace.nodes["t"]["value"].shape == (3, 1, n, h)
    assert model_trace.nodes["l"]["value"].shape == (3, 1, m, h)
    assert model_trace.nodes["theta"]["value"].shape == (3, 1, 1, d)
    assert model_trace.nodes["y"]["fn"].batch_shape == (3, 5, features.shape[1])
    model_trace.compute_log_prob()
    assert model_trace.nodes["y"]["log_prob"].shape == (3, 5, features.shape[1])
    # padding contributes nothing
    assert torch.all(model_trace.nodes["y"]["log_prob"][:, ~mask] == 0)


@pytest.mark.parametrize("kind", ["lr", "d"])
@pytest.mark.parametrize(("pair_size", "kl_weight"), [(None, 1.0), (40, 0.125)])
def test_pyro_elbo_equals_the_reference_on_the_same_draws(world, kind, pair_size, kl_weight):
    f, guide = build(world, kind)
    features, mask, labels = padded_batch(world)
    elbo = Trace_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=2)
    pyro.set_rng_seed(11)
    pyro_loss = elbo.loss(f.model, guide, *PAIR, features, mask, labels, pair_size, kl_weight)
    pyro.set_rng_seed(11)
    ref = reference_elbo(f, guide, *PAIR, features, mask, labels, pair_size, kl_weight, 3)
    assert pyro_loss == pytest.approx(-ref.item(), rel=1e-5)
    # and a different draw gives a different value: the comparison is not vacuous
    pyro.set_rng_seed(12)
    other = elbo.loss(f.model, guide, *PAIR, features, mask, labels, pair_size, kl_weight)
    assert other != pytest.approx(pyro_loss, rel=1e-5)


def test_kl_module_agrees_with_torch_kl_divergence():
    torch.manual_seed(0)
    h, rows, rank = 6, 3, 2
    loc, factor, diag = torch.randn(rows, h), torch.randn(rows, h, rank), torch.rand(rows, h) + 0.1
    prior = MultivariateNormal(torch.zeros(h), scale_tril=torch.eye(h))
    expected = kl_divergence(TorchLowRank(loc, factor, diag), prior)
    assert torch.allclose(kl_lowrank_to_standard(loc, factor, diag), expected, rtol=1e-5, atol=1e-6)
    diagonal = kl_divergence(
        Independent(Normal(loc, diag.sqrt()), 1), Independent(Normal(0.0, torch.ones(h)), 1)
    )
    assert torch.allclose(kl_lowrank_to_standard(loc, None, diag), diagonal, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["lr", "d"])
def test_meanfield_elbo_is_likelihood_minus_weighted_closed_form_kl(world, kind):
    f, guide = build(world, kind)
    features, mask, labels = padded_batch(world)
    pair_size, kl_weight, particles = 40, 0.25, 3
    args = (*PAIR, features, mask, labels, pair_size, kl_weight)
    elbo = TraceMeanField_ELBO(
        num_particles=particles, vectorize_particles=True, max_plate_nesting=2
    )
    pyro.set_rng_seed(5)
    loss = elbo.loss(f.model, guide, *args)
    pyro.set_rng_seed(5)  # the same draws, by hand
    model_trace, guide_trace = model_and_guide_traces(f, guide, args, particles)
    model_trace.compute_log_prob()
    guide_trace.compute_log_prob()
    # log p(θ | t, l) − log q(θ | t, l) is exactly zero: q(θ | t, l) is the model's own p.
    assert torch.equal(
        model_trace.nodes["theta"]["log_prob"], guide_trace.nodes["theta"]["log_prob"]
    )
    # the scaled (pair_size / B) and masked log-likelihood, averaged over particles
    y = model_trace.nodes["y"]
    assert y["scale"] == pytest.approx(pair_size / features.shape[0])
    log_lik = y["log_prob"].reshape(particles, -1).sum(-1).mean()
    kl_t, kl_l = closed_form_kl(guide)
    expected = log_lik.item() - kl_weight * (kl_t + kl_l)
    assert -loss == pytest.approx(expected, rel=1e-5)
    assert kl_t > 0 and kl_l > 0


@pytest.mark.parametrize("kind", ["lr", "d"])
def test_trace_elbo_kl_estimate_approaches_the_closed_form(world, kind):
    """Trace_ELBO samples log p(t) − log q(t) where TraceMeanField_ELBO has the exact KL; on
    the same draws the likelihood terms cancel, leaving a Monte Carlo error that shrinks as
    1/√P. The bound is 5 standard errors of that estimate (seed fixed)."""
    f, guide = build(world, kind)
    features, mask, labels = padded_batch(world)
    particles, kl_weight = 4000, 1.0
    args = (*PAIR, features, mask, labels, None, kl_weight)
    sampled = Trace_ELBO(num_particles=particles, vectorize_particles=True, max_plate_nesting=2)
    exact = TraceMeanField_ELBO(
        num_particles=particles, vectorize_particles=True, max_plate_nesting=2
    )
    pyro.set_rng_seed(2)
    loss_sampled = sampled.loss(f.model, guide, *args)
    pyro.set_rng_seed(2)
    loss_exact = exact.loss(f.model, guide, *args)
    # the per-particle spread of the sampled KL, from the guide's own draws
    pyro.set_rng_seed(2)
    _, guide_trace = model_and_guide_traces(f, guide, args, particles)
    q_t, q_l = guide.task_posterior(), guide.language_posterior()
    prior = MultivariateNormal(torch.zeros(4), scale_tril=torch.eye(4))
    with torch.no_grad():
        t, l = guide_trace.nodes["t"]["value"], guide_trace.nodes["l"]["value"]
        per_particle = (q_t.log_prob(t) - prior.log_prob(t)).sum(-1) + (
            q_l.log_prob(l) - prior.log_prob(l)
        ).sum(-1)
    kl_t, kl_l = closed_form_kl(guide)
    stderr = per_particle.std().item() / math.sqrt(particles)
    assert per_particle.mean().item() == pytest.approx(kl_t + kl_l, abs=5 * stderr)
    assert abs(loss_sampled - loss_exact) <= 5 * stderr
    assert stderr < 0.05 * (kl_t + kl_l)  # the test has power: the KL is well resolved


def test_closed_form_kl_reads_the_guides_parameters(world):
    _, guide = build(world, "lr")
    kl_t, kl_l = closed_form_kl(guide)
    by_hand = kl_divergence(
        TorchLowRank(guide.t_loc, guide.t_factor, softplus(guide.t_rho)),
        MultivariateNormal(torch.zeros(4), scale_tril=torch.eye(4)),
    ).sum()
    assert kl_t == pytest.approx(by_hand.item(), rel=1e-5)
    assert kl_l > 0


# -- the SVI benchmark and the changes it proposes -------------------------------------------
def load_bench():
    from conftest import load_script

    return load_script("experiments/bench/svi_step.py")


@pytest.mark.parametrize(
    "theta_shape", [(), (1,), (3, 1, 1), (2, 3, 1, 1), (4, 1), (4, 7)], ids=str
)
@pytest.mark.parametrize("classes", [5, 3])
def test_head_logits_are_x_w_plus_b_for_every_theta_batch_shape(theta_shape, classes):
    """The head's one-GEMM path (θ batch [..., 1, 1]) and its broadcasting path (θ per
    sentence or word) both give x W + b over the task's first ``classes`` columns."""
    from pfpyro.model.heads import SoftmaxHead

    torch.manual_seed(0)
    head = SoftmaxHead(6, 5)
    theta = torch.randn(*theta_shape, head.num_params)
    features = torch.randn(4, 7, 6)
    weight, bias = head.unpack(theta)
    weight, bias = weight[..., :classes], bias[..., :classes]
    expected = (features.unsqueeze(-2) @ weight).squeeze(-2) + bias
    got = head.logits(theta, features, classes)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)


def test_svi_bench_times_the_pf_of_a_config(capsys):
    """``--config``: the config's layout, guide, batch and particles, at the first offset
    scale of its selection grid, and steps over several pairs of its task-blocked layout."""
    bench = load_bench()
    tiny = "--feature-dim 6 --length 4 --classes 3 --tasks 2 --langs 3 --samples 2"
    runs = "--warmup 1 --repeats 1 --predict-repeats 1 --train-top 0 --pairs 1,2"
    config = "experiments/configs/paper.yaml"
    results = bench.main([*tiny.split(), *runs.split(), "--config", config])
    out = capsys.readouterr().out
    assert "B=16 " in out and "h=10 " in out and "particles=3 " in out
    assert "Component(name='adapter', args={'rank': 16, 'offset_scale': 0.3})" in out
    assert "'factor_init': 0.01" in out
    assert results["svi_step_p2_s"] > 0 and results["pf_over_jm_throughput"] > 0
    bench.main([*tiny.split(), *runs.split(), "--config", config, "--particles", "1"])
    assert "particles=1 " in capsys.readouterr().out  # a flag given wins over the config


def test_svi_bench_runs_with_tiny_sizes(capsys):
    bench = load_bench()
    tiny = "--feature-dim 6 --length 4 --batch-size 3 --latent-dim 3 --hidden-dims 5 --classes 3"
    runs = "--tasks 2 --langs 3 --rank 2 --samples 4 --warmup 1 --repeats 2 --predict-repeats 1"
    top = "--train-top 0,1 --subwords 6 --top-heads 2"
    results = bench.main([*tiny.split(), *runs.split(), *top.split(), "--pairs", "1,4"])
    assert set(results) == {
        "svi_step_top1_s",
        "reference_step_top1_s",
        "svi_over_reference_top1",
        "svi_step_s",
        "reference_step_s",
        "svi_over_reference",
        "svi_step_p4_s",
        "reference_step_p4_s",
        "svi_over_reference_p4",
        "plugin_s",
        "bma_s",
        "bma_over_plugin",
        "jm_step_s",
        "pf_sentences_per_s",
        "jm_sentences_per_s",
        "pf_over_jm_throughput",
    }
    assert all(value > 0 for value in results.values())
    assert results["pf_over_jm_throughput"] == pytest.approx(
        results["pf_sentences_per_s"] / results["jm_sentences_per_s"]
    )
    out = capsys.readouterr().out
    assert "SVI step" in out and "BMA predict" in out and "train_top k" in out
    assert f"PF/JM training throughput {results['pf_over_jm_throughput']:.3f}" in out
    assert (
        "pairs/step" in out
        and len([line for line in out.splitlines() if line.startswith(" " * 9 + "4")]) == 1
    )

"""Several pairs per SVI step (issue 10, item 3): one draw of t and l, the pairs' θ and words
in a ``pairs`` plate; the step's ELBO is the mean of the single-pair ELBOs on the same draws."""

from __future__ import annotations

import pyro
import pytest
import torch
from conftest import load_script, run_settings
from pyro import poutine
from pyro.infer import Trace_ELBO
from torch import Tensor

from pfpyro.data.batch import PairsBatch, PairTensors
from pfpyro.infer import train
from pfpyro.model import Component, ModelDescription
from pfpyro.model.factorization import PAIRS_PLATE_NESTING
from pfpyro.model.heads import SoftmaxHead
from pfpyro.testing.reference import reference_pairs_elbo
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")

PAIRS = [("a", "x"), ("b", "y"), ("a", "z"), ("b", "x")]
SIZES = [40, 30, 50, 25]
WEIGHTS = [0.7, 1.3, 1.0, 0.9]  # 1 / (P_seen π_p) of each pair
KL_WEIGHT = 0.25


HYPERNETS = {
    "shared": Component("shared", {"hidden_dims": [8]}),
    "blocked": Component("blocked", {"hidden_dims": [8]}),
    "adapter": Component("adapter", {"rank": 2}),
}


def build(kind: str, hypernet: str = "shared"):
    """Two tasks with different label counts (3 and 5), so the step mixes class widths."""
    pyro.set_rng_seed(0)
    factorization, guide = ModelDescription.for_sizes(
        ["a", "b"],
        ["x", "y", "z"],
        {"a": 3, "b": 5},
        6,
        latent_dim=4,
        hypernet=HYPERNETS[hypernet],
        guide=Component(kind, {"rank": 2} if kind == "lr" else {}),
    ).build()
    if hypernet == "adapter":  # its offsets start at zero: give the languages an effect
        with torch.no_grad():
            for name, value in factorization.hypernet.named_parameters():
                if not name.startswith("variance"):
                    value.copy_(torch.randn(value.shape))
    return factorization, guide


def own_theta(factorization, task: str, padded: Tensor) -> Tensor:
    """A pair's θ as its single-pair step draws it: the task's own columns of a task-blocked
    hypernetwork's padded θ, the whole padded θ of a shared one."""
    if not getattr(factorization.hypernet, "task_blocked", False):
        return padded
    weight, bias = factorization.head.unpack(padded)
    classes = factorization.num_classes[task]
    return torch.cat([weight[..., :classes].reshape(-1), bias[..., :classes]])


def batches(factorization) -> list[PairTensors]:
    """One mini-batch per pair, of different sizes and lengths, padding masked."""
    gen = torch.Generator().manual_seed(1)
    out = []
    for (task, _), size, length in zip(PAIRS, (4, 3, 5, 2), (6, 3, 4, 5), strict=True):
        mask = torch.rand(size, length, generator=gen) > 0.25
        mask[:, 0] = True
        labels = torch.randint(factorization.num_classes[task], (size, length), generator=gen)
        out.append(PairTensors(torch.randn(size, length, 6, generator=gen), labels * mask, mask))
    return out


def stacked(pair_batches: list[PairTensors]) -> PairsBatch:
    count = len(PAIRS)
    scale = [w * n / len(b) / count for w, n, b in zip(WEIGHTS, SIZES, pair_batches, strict=True)]
    return PairsBatch.stack(PAIRS, pair_batches, scale)


def elbo_of(model, guide, *args, **kwargs) -> float:
    """log p − log q of one draw: the guide's trace, the model replayed on it."""
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    return (model_trace.log_prob_sum() - guide_trace.log_prob_sum()).item()


@pytest.mark.parametrize("hypernet", list(HYPERNETS))
@pytest.mark.parametrize("kind", ["lr", "d"])
def test_a_step_over_several_pairs_is_the_mean_of_their_single_pair_steps(kind, hypernet):
    factorization, guide = build(kind, hypernet)
    pair_batches = batches(factorization)
    batch = stacked(pair_batches)
    guide_trace = poutine.trace(guide.pairs).get_trace(batch, KL_WEIGHT)
    replayed = poutine.replay(factorization.model_pairs, trace=guide_trace)
    model_trace = poutine.trace(replayed).get_trace(batch, KL_WEIGHT)
    several = (model_trace.log_prob_sum() - guide_trace.log_prob_sum()).item()
    t, l, theta = (guide_trace.nodes[name]["value"] for name in ("t", "l", "theta"))
    assert theta.shape == (len(PAIRS), 1, 1, factorization.head.num_params)

    singles = []
    for p, ((task, lang), pair_batch) in enumerate(zip(PAIRS, pair_batches, strict=True)):
        args = (task, lang, pair_batch.features, pair_batch.mask, pair_batch.labels)
        kwargs = {"pair_size": SIZES[p], "kl_weight": KL_WEIGHT, "pair_weight": WEIGHTS[p]}
        # the single-pair step on the same t, l and this pair's θ
        drawn = poutine.trace(guide).get_trace(*args, **kwargs)
        mine = own_theta(factorization, task, theta[p].reshape(-1)).reshape(1, -1)
        for name, value in (("t", t), ("l", l), ("theta", mine)):
            drawn.nodes[name]["value"] = value
        singles.append(elbo_of(factorization, poutine.replay(guide, trace=drawn), *args, **kwargs))
    assert several == pytest.approx(sum(singles) / len(singles), rel=1e-5)
    # not vacuous: the pairs' estimates differ, and the sum is not the mean
    assert max(singles) - min(singles) > 1.0
    assert several != pytest.approx(sum(singles), rel=1e-3)


@pytest.mark.parametrize("hypernet", ["shared", "adapter"])
@pytest.mark.parametrize("kind", ["lr", "d"])
def test_the_pyro_step_equals_the_plain_torch_reference_on_the_same_draws(kind, hypernet):
    """Also for a task-blocked hypernetwork (adapter), whose θ the model generates task by
    task over the step's pairs and the reference pair by pair."""
    factorization, guide = build(kind, hypernet)
    batch = stacked(batches(factorization))
    elbo = Trace_ELBO(
        num_particles=3, vectorize_particles=True, max_plate_nesting=PAIRS_PLATE_NESTING
    )
    pyro.set_rng_seed(11)
    loss = elbo.loss(factorization.model_pairs, guide.pairs, batch, KL_WEIGHT)
    pyro.set_rng_seed(11)
    reference = reference_pairs_elbo(factorization, guide, batch, KL_WEIGHT, num_particles=3)
    assert loss == pytest.approx(-reference.item(), rel=1e-5)
    pyro.set_rng_seed(12)
    assert elbo.loss(factorization.model_pairs, guide.pairs, batch, KL_WEIGHT) != pytest.approx(
        loss, rel=1e-5
    )


def test_the_head_gives_x_w_plus_b_for_stacked_pairs():
    torch.manual_seed(0)
    head = SoftmaxHead(6, 5)
    theta = torch.randn(3, 4, 1, 1, head.num_params)  # particles, pairs
    features = torch.randn(4, 2, 7, 6)  # pairs, sentences, words, e
    weight, bias = head.unpack(theta)
    expected = (features.unsqueeze(-2) @ weight[..., :4]).squeeze(-2) + bias[..., :4]
    got = head.logits(theta, features, 4)
    assert got.shape == (3, 4, 2, 7, 4)
    assert torch.allclose(got, expected, atol=1e-5)


def world_run(pairs_per_step: int, tmp_path=None, hypernet: str = "shared"):
    world = make_world(2, 4, latent_dim=1, seed=2, sentences=(40, 20, 20))
    seen = [p for p in world.pairs() if p != ("task1", "lang3")]
    result = train(
        {p: world.train[p] for p in seen},
        {p: world.dev[p] for p in seen},
        **run_settings(
            latent_dim=1,
            rank=1,
            hypernet=hypernet,
            batch_size=20,
            lr=0.05,
            max_steps=240,
            eval_every=60,
            patience=4,
            pairs_per_step=pairs_per_step,
            progress=False,
        ),
        out_dir=tmp_path,
        num_classes=world.num_classes,
    )
    return result


def test_training_with_four_pairs_per_step_learns_as_one_pair_per_step_does(tmp_path):
    one = world_run(1)
    four = world_run(4, tmp_path / "four")
    assert four.best_score > 0.6  # far above chance (4 classes)
    assert four.best_score >= one.best_score - 0.05
    logged = [r for r in four.history if r.get("kind") == "train"]
    assert logged and all(r["pair"].count("/") == 4 for r in logged)  # four pairs a step


def test_a_task_blocked_hypernetwork_trains_with_several_pairs_per_step():
    one = world_run(1, hypernet="blocked")
    four = world_run(4, hypernet="blocked")
    assert four.best_score > 0.6  # far above chance (4 classes)
    assert four.best_score >= one.best_score - 0.05


def test_the_gpu_check_agrees_cpu_with_itself(capsys):
    """experiments/bench/gpu_check.py, run CPU against CPU at tiny sizes: every comparison is
    made and passes, and its figures are printed (a GPU machine runs it against CUDA)."""
    module = load_script("experiments/bench/gpu_check.py")
    tiny = "--device cpu --steps 12 --pairs 3 --samples 5 --feature-dim 6 --latent-dim 3"
    results = module.main([*tiny.split(), "--hidden-dims", "8", "--langs", "3"])
    assert results["failures"] == 0
    assert results["elbo_relative_gap"] == 0 and results["plugin_max_gap"] == 0
    assert results["bma_max_gap"] == 0  # the same samples on the same device
    assert results["accuracy_cpu_p3"] == results["accuracy_device_p3"]  # the same seed
    assert all(results[f"steps_per_s_{w}_p{p}"] > 0 for w in ("cpu", "device") for p in (1, 3))
    out = capsys.readouterr().out
    assert "train P=3:" in out and "same draws: ELBO" in out and "OK: cpu and device agree" in out

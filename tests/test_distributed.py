"""Data-parallel SVI with Lightning (issue 10, item 4): two CPU processes (gloo) keep the same
parameters after every step and reach what one process reaches, within seed noise."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_settings
from pyro.infer import Trace_ELBO

from pfpyro.errors import ConfigError
from pfpyro.infer import PFPredictor, load_run, train
from pfpyro.infer.distributed import StepDraws, train_distributed
from pfpyro.infer.trainer import step_weights
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS = 60


@pytest.fixture(scope="module")
def world():
    return make_world(2, 3, num_classes=3, feature_dim=4, sentences=(30, 10, 10), length=6, seed=5)


@pytest.fixture(scope="module")
def data(world):
    seen = [p for p in world.pairs() if p != ("task0", "lang2")]
    return {p: world.train[p] for p in seen}, {p: world.dev[p] for p in seen}


def settings(**changes):
    values = dict(latent_dim=2, hidden_dims=(5,), rank=2, batch_size=6, lr=0.05,
                  max_steps=STEPS, eval_every=STEPS, patience=100, progress=False)  # fmt: skip
    values.update(changes)
    return run_settings(**values)


def full_elbo(result, data) -> float:
    """The ELBO of all seen training data (one pair per term, each scaled as the trainer's
    step), estimated with many particles on a fixed seed."""
    train_data, _ = data
    sizes = {p: len(t) for p, t in train_data.items()}
    weights, kl_weight = step_weights(sizes, "uniform")
    elbo = Trace_ELBO(num_particles=200, vectorize_particles=True, max_plate_nesting=2)
    torch.manual_seed(0)
    total = 0.0
    with torch.no_grad():
        for (task, lang), tensors in sorted(train_data.items()):
            batch = tensors.batch(range(len(tensors)))
            total -= elbo.loss(result.factorization, result.guide, task, lang, batch.inputs,
                               batch.mask, batch.labels, pair_size=len(tensors),
                               kl_weight=kl_weight, pair_weight=weights[task, lang])  # fmt: skip
    return total


def test_the_draws_are_one_seeded_sequence(data) -> None:
    config = settings()["config"]
    draws = StepDraws(data[0], config, 8)
    again = StepDraws(data[0], config, 8)
    for k in range(8):
        (p, a), (q, b) = draws[k], again[k]
        assert p == q and torch.equal(a.labels, b.labels)
    assert len({draws[k][0] for k in range(8)}) > 1  # pairs vary along the sequence


def test_two_processes_keep_the_same_parameters_and_match_one(world, data, tmp_path) -> None:
    train_data, dev = data
    kwargs = settings()
    result = train_distributed(
        train_data,
        dev,
        kwargs["config"],
        model=kwargs["model"],
        num_classes=world.num_classes,
        devices=2,
        strategy="ddp_spawn",
        accelerator="cpu",
        check_every=1,
        ranks_dir=tmp_path / "ranks",
        out_dir=tmp_path / "run",
    )
    ranks = [json.loads((tmp_path / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]) == STEPS and ranks[0] == ranks[1]  # identical after every step
    assert len(set(ranks[0])) == STEPS  # and they did move

    singles = [
        train(train_data, dev, **settings(seed=seed), num_classes=world.num_classes)
        for seed in (0, 1, 2)
    ]
    scores = [s.best_score for s in singles]
    elbos = [full_elbo(s, data) for s in singles]
    spread = max(scores) - min(scores)
    assert result.best_score >= min(scores) - spread - 0.02, (result.best_score, scores)
    elbo_spread = max(elbos) - min(elbos)
    ddp_elbo = full_elbo(result, data)
    assert ddp_elbo >= min(elbos) - elbo_spread - 0.02 * abs(min(elbos)), (ddp_elbo, elbos)
    untrained = train(train_data, dev, **settings(max_steps=1), num_classes=world.num_classes)
    assert ddp_elbo > full_elbo(untrained, data)  # it learned

    # The run folder is an ordinary one: it loads and predicts as the returned model does.
    factorization, guide, meta = load_run(tmp_path / "run")
    test = dev[("task1", "lang1")]
    ours = PFPredictor(result.factorization, result.guide).predict_proba(
        "task1", "lang1", test.inputs, test.mask
    )
    theirs = PFPredictor(factorization, guide).predict_proba(
        "task1", "lang1", test.inputs, test.mask
    )
    assert torch.allclose(ours, theirs)
    assert meta["step"] == STEPS


def test_bad_settings_are_refused_before_any_process_starts(data) -> None:
    kwargs = settings()
    with pytest.raises(ConfigError, match="strategy must be one of"):
        train_distributed(*data, kwargs["config"], model=kwargs["model"], strategy="fsdp")
    with pytest.raises(ConfigError, match="one pair per device"):
        train_distributed(*data, settings(pairs_per_step=2)["config"], model=kwargs["model"])

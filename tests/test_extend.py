"""Extending a trained posterior with a new language (or task) without retraining it.

A synthetic world with a one-dimensional latent space (identifiable from few pairs, see
test_recovery.py): the base run never sees lang4; extension fits q(l_4) on (task0, lang4)
alone, and the extended model must then predict the zero-shot pair (task1, lang4) near the
oracle, while every parameter it already had stays exactly as it was.
"""

from __future__ import annotations

import pytest
import torch
from conftest import run_settings

import pfpyro
from pfpyro.errors import ConfigError
from pfpyro.evaluate import token_accuracy
from pfpyro.infer import PFPredictor, train
from pfpyro.infer.checkpoint import load_checkpoint
from pfpyro.infer.extend import extend
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")

NEW, TARGET = ("task0", "lang4"), ("task1", "lang4")


def base_config(**changes) -> dict:
    settings = dict(
        guide="lr",
        rank=1,
        latent_dim=1,
        hidden_dims=(),
        batch_size=60,
        lr=0.05,
        max_steps=600,
        eval_every=100,
        patience=3,
        seed=0,
        progress=False,
    )
    return run_settings(**{**settings, **changes})


@pytest.fixture(scope="module")
def world():
    return make_world(2, 5, latent_dim=1, seed=0)


@pytest.fixture(scope="module")
def base_run(world, tmp_path_factory):
    """A run trained on every pair but lang4's."""
    seen = [p for p in world.pairs() if p[1] != "lang4"]
    out = tmp_path_factory.mktemp("extend") / "base"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a module fixture: the per-test fixture has not run yet
    try:
        train(
            {p: world.train[p] for p in seen},
            {p: world.dev[p] for p in seen},
            **base_config(),
            out_dir=out,
            num_classes=world.num_classes,
        )
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def extended_run(world, base_run):
    out = base_run.parent / "extended"
    result = extend(
        base_run, {NEW: world.train[NEW]}, out, steps=300, batch_size=60, lr=0.05, progress=False
    )
    assert result.new_langs == ("lang4",) and result.new_tasks == ()
    return out


def accuracy(run, pair, world, l_new=None, t_new=None) -> float:
    data = world.test[pair]
    if l_new is None and t_new is None:
        probs = PFPredictor(run.factorization, run.guide, mode="plugin").predict_proba(
            *pair, data.features.float(), data.mask
        )
    else:  # the plug-in with the pair's language (or task) vector set by hand
        t_mean, l_mean = (m.clone() for m in run.guide.posterior_means())
        if l_new is not None:
            l_mean[run.factorization.lang_index(pair[1])] = l_new
        if t_new is not None:
            t_mean[run.factorization.task_index(pair[0])] = t_new
        probs = run.factorization.plugin_probs(*pair, data.features.float(), t_mean, l_mean)
    return token_accuracy(data.labels, probs.argmax(-1), data.mask)


def test_extension_keeps_every_known_parameter_bit_for_bit(base_run, extended_run):
    before = load_checkpoint(base_run)["best_params"]
    after = load_checkpoint(extended_run)["params"]
    assert set(before) == set(after)
    j = 4  # lang4 is the last of lang0..lang4
    for name, value in before.items():
        if name.startswith("guide.l_"):
            assert torch.equal(after[name][:j], value), name
            assert after[name].shape[0] == value.shape[0] + 1
        else:
            assert torch.equal(after[name], value), name


def test_the_new_language_predicts_its_zero_shot_pair(world, extended_run):
    run = pfpyro.load(extended_run)
    assert run.langs == ("lang0", "lang1", "lang2", "lang3", "lang4")
    oracle = world.test[TARGET]
    best = token_accuracy(
        oracle.labels, world.oracle_probs(TARGET, oracle.features.float()).argmax(-1), oracle.mask
    )
    fitted = accuracy(run, TARGET, world)
    at_prior_mean = accuracy(run, TARGET, world, l_new=torch.zeros(1))
    assert fitted >= 0.9 * best
    assert fitted > at_prior_mean + 0.02  # what the new pair taught q(l_4)
    assert "lang4" in repr(run)


def test_a_new_task_is_fitted_through_its_own_vector(tmp_path):
    world = make_world(3, 4, latent_dim=1, seed=1)
    seen = [p for p in world.pairs() if p[0] != "task2"]
    train(
        {p: world.train[p] for p in seen},
        {p: world.dev[p] for p in seen},
        **base_config(max_steps=300),
        out_dir=tmp_path / "base",
        num_classes=world.num_classes,
    )
    result = extend(
        tmp_path / "base",
        {("task2", "lang0"): world.train["task2", "lang0"]},
        tmp_path / "extended",
        steps=200,
        batch_size=60,
        lr=0.05,
        num_classes=world.num_classes,
        progress=False,
    )
    assert result.new_tasks == ("task2",) and result.new_langs == ()
    run = pfpyro.load(tmp_path / "extended")
    assert run.tasks == ("task0", "task1", "task2")
    before = load_checkpoint(tmp_path / "base")["best_params"]["guide.t_loc_unconstrained"]
    assert torch.equal(run.guide.t_loc.detach()[:2], before)
    # What (task2, lang0) taught q(t_2) carries over to the zero-shot pair (task2, lang1).
    fitted = accuracy(run, ("task2", "lang1"), world)
    at_prior_mean = accuracy(run, ("task2", "lang1"), world, t_new=torch.zeros(1))
    assert fitted > at_prior_mean + 0.02


def test_extension_refuses_what_it_cannot_do(world, base_run, tmp_path):
    data = world.train[NEW]
    with pytest.raises(ConfigError, match="nothing to extend"):
        extend(base_run, {("task0", "lang1"): data}, tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="a new task and a new language at once"):
        extend(base_run, {("task9", "lang9"): data}, tmp_path / "b", progress=False)
    narrow = type(data)(data.features[..., :3], data.labels, data.mask)
    with pytest.raises(ConfigError, match="features are \\[3\\] wide"):
        extend(base_run, {NEW: narrow}, tmp_path / "c", progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        extend(base_run, {NEW: data}, tmp_path / "full", progress=False)
    assert (tmp_path / "full" / "x").read_text() == "keep me"


def test_a_blocked_hypernetwork_takes_new_languages_but_not_new_tasks(world, tmp_path):
    seen = [p for p in world.pairs() if p[1] != "lang4" and p != ("task1", "lang3")]
    train(
        {p: world.train[p] for p in seen},
        {},
        **base_config(hypernet="blocked", max_steps=20),
        out_dir=tmp_path / "base",
        num_classes=world.num_classes,
    )
    extend(tmp_path / "base", {NEW: world.train[NEW]}, tmp_path / "lang", steps=5, progress=False)
    assert pfpyro.load(tmp_path / "lang").langs[-1] == "lang4"
    with pytest.raises(ConfigError, match=r"only the shared .* layout takes new tasks"):
        extend(
            tmp_path / "base",
            {("task7", "lang0"): world.train[NEW]},
            tmp_path / "task",
            num_classes={"task7": 4},
            progress=False,
        )

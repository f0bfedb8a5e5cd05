"""Factorization variants (issue 8, item 5): task-blocked outputs, per-task base classifiers
with a language-dependent offset, and weight decay on the hypernetwork only."""

from __future__ import annotations

import pyro
import pytest
import torch

from pfpyro.data.synthetic import make_world
from pfpyro.errors import ConfigError
from pfpyro.infer import PFPredictor
from pfpyro.infer.checkpoint import load_run
from pfpyro.infer.trainer import TrainConfig, optimiser_settings, train
from pfpyro.model.factorization import ParameterFactorization
from pfpyro.model.guides import make_guide

pytestmark = pytest.mark.usefixtures("one_thread_and_fresh_store")


@pytest.fixture(scope="module")
def world():
    return make_world(2, 3, num_classes=3, feature_dim=5, sentences=(12, 6, 6), length=5, seed=2)


def config(**changes) -> TrainConfig:
    values = dict(latent_dim=2, hidden_dims=(), batch_size=4, max_steps=12, eval_every=6,
                  progress=False, guide="d")  # fmt: skip
    return TrainConfig(**{**values, **changes})


@pytest.mark.parametrize("kind", ["blocked", "residual"])
def test_blocked_outputs_give_each_task_its_own_theta(world, kind):
    classes = {"task0": 3, "task1": 2}
    f = ParameterFactorization(
        world.tasks, world.langs, 5, num_classes=classes, latent_dim=2, hidden_dims=(),
        hypernet=kind,
    )  # fmt: skip
    guide = make_guide(f, "d")
    t, l = guide.posterior_means()
    for i, task in enumerate(f.tasks):
        loc, variance = f.hypernet(t[i], l[0], i)
        assert loc.shape == variance.shape == (5 * classes[task] + classes[task],)
        probs = f.plugin_probs(task, world.langs[0], torch.randn(2, 4, 5), t, l)
        assert probs.shape == (2, 4, classes[task])
    # the two tasks share no output parameter
    assert f.hypernet.mean[0].weight.data_ptr() != f.hypernet.mean[1].weight.data_ptr()


def test_residual_with_a_zero_offset_is_the_per_task_base_classifier(world):
    f = ParameterFactorization(world.tasks, world.langs, 5, num_classes=world.num_classes,
                               latent_dim=2, hidden_dims=(), hypernet="residual")  # fmt: skip
    with torch.no_grad():
        for layer in f.hypernet.mean:
            layer.weight.zero_()
            layer.bias.zero_()
        f.hypernet.base[1].normal_()
    t, l = torch.randn(2), torch.randn(2)
    for j in range(3):  # every language gets the same classifier: JM
        assert torch.equal(f.hypernet(t, l * j, 1)[0], f.hypernet.base[1])


@pytest.mark.parametrize("kind", ["blocked", "residual"])
def test_a_variant_trains_saves_loads_and_predicts(world, tmp_path, kind):
    seen = [p for p in world.pairs() if p != ("task1", "lang2")]
    train_data = {p: world.train[p] for p in seen}
    result = train(
        train_data,
        {p: world.dev[p] for p in seen},
        config(hypernet=kind, offset_scale=0.5, weight_decay=0.1),
        num_classes=world.num_classes,
        tasks=world.tasks,
        langs=world.langs,
        out_dir=tmp_path,
    )
    test = world.test["task1", "lang2"]
    expected = PFPredictor(result.factorization, result.guide).predict_proba(
        "task1", "lang2", test.features.float(), test.mask
    )
    with pyro.get_param_store().scope():
        factorization, guide, meta = load_run(tmp_path)
    assert meta["model"]["hypernet"] == kind and meta["model"]["offset_scale"] == 0.5
    got = PFPredictor(factorization, guide).predict_proba(
        "task1", "lang2", test.features.float(), test.mask
    )
    assert torch.allclose(got, expected)


def test_weight_decay_reaches_the_hypernetwork_only():
    settings = optimiser_settings(config(weight_decay=0.01))
    assert settings("hypernet.mean.weight")["weight_decay"] == 0.01
    assert settings("hypernet.base$$$0")["weight_decay"] == 0.01
    assert settings("guide.l_loc")["weight_decay"] == 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [("hypernet", "wide"), ("kl_beta", -1.0), ("weight_decay", -0.1), ("offset_scale", 0.0)],
)
def test_bad_variant_settings_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        config(**{field: value}).validate()

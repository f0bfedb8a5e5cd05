"""Factorization variants (issue 8, item 5): task-blocked outputs, per-task base classifiers
with a language-dependent offset, and weight decay on the hypernetwork only."""

from __future__ import annotations

import pytest
import torch
from conftest import run_settings

from pfpyro.errors import ConfigError
from pfpyro.infer import PFPredictor
from pfpyro.infer.checkpoint import load_run, named_params
from pfpyro.infer.trainer import param_groups, train
from pfpyro.model import Component, ModelDescription
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world():
    return make_world(2, 3, num_classes=3, feature_dim=5, sentences=(12, 6, 6), length=5, seed=2)


def config(**changes) -> dict:
    values = dict(latent_dim=2, hidden_dims=(), batch_size=4, max_steps=12, eval_every=6,
                  progress=False, guide="d")  # fmt: skip
    return run_settings(**{**values, **changes})


@pytest.mark.parametrize("kind", ["blocked", "residual"])
def test_blocked_outputs_give_each_task_its_own_theta(world, kind):
    classes = {"task0": 3, "task1": 2}
    f, guide = ModelDescription.for_sizes(
        world.tasks, world.langs, classes, 5, latent_dim=2,
        hypernet=Component(kind, {"hidden_dims": []}), guide="d",
    ).build()  # fmt: skip
    t, l = guide.posterior_means()
    for i, task in enumerate(f.tasks):
        loc, variance = f.hypernet(t[i], l[0], i)
        assert loc.shape == variance.shape == (5 * classes[task] + classes[task],)
        probs = f.plugin_probs(task, world.langs[0], torch.randn(2, 4, 5), t, l)
        assert probs.shape == (2, 4, classes[task])
    # the two tasks share no output parameter
    assert f.hypernet.mean[0].weight.data_ptr() != f.hypernet.mean[1].weight.data_ptr()


def test_residual_with_a_zero_offset_is_the_per_task_base_classifier(world):
    f, _ = ModelDescription.for_sizes(
        world.tasks, world.langs, world.num_classes, 5, latent_dim=2,
        hypernet=Component("residual", {"hidden_dims": []}), guide="d",
    ).build()  # fmt: skip
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
        **config(hypernet=kind, offset_scale=0.5, weight_decay=0.1),
        num_classes=world.num_classes,
        tasks=world.tasks,
        langs=world.langs,
        out_dir=tmp_path,
    )
    test = world.test["task1", "lang2"]
    expected = PFPredictor(result.factorization, result.guide).predict_proba(
        "task1", "lang2", test.features.float(), test.mask
    )
    factorization, guide, meta = load_run(tmp_path)
    hypernet = meta["model"].hypernet
    assert hypernet.name == kind and hypernet.args.get("offset_scale", 0.5) == 0.5
    got = PFPredictor(factorization, guide).predict_proba(
        "task1", "lang2", test.features.float(), test.mask
    )
    assert torch.allclose(got, expected)


def test_weight_decay_reaches_the_hypernetwork_only(world):
    settings = config(hypernet="residual", offset_scale=0.5, weight_decay=0.01)
    description = ModelDescription.for_sizes(
        world.tasks,
        world.langs,
        world.num_classes,
        world.feature_dim,
        latent_dim=2,
        hypernet=Component(*settings["model"].component("hypernet")),
    )
    params = named_params(*description.build())
    groups = param_groups(params, settings["config"].optim)
    decay = {id(value): group["weight_decay"] for group in groups for value in group["params"]}
    assert set(decay) == {id(value) for value in params.values()}
    assert {decay[id(params[name])] for name in params if ".hypernet." in name} == {0.01}
    assert decay[id(params["model.hypernet.base.0"])] == 0.01
    assert decay[id(params["guide.l_loc_unconstrained"])] == 0.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hypernet", "wide", "unknown hypernet 'wide'"),
        ("kl_beta", -1.0, "kl_beta"),
        ("weight_decay", -0.1, "weight_decay"),
        ("offset_scale", 0.0, "offset_scale"),
    ],
)
def test_bad_variant_settings_are_refused(world, field, value, message):
    changes = {field: value, **({"hypernet": "residual"} if field == "offset_scale" else {})}
    settings = config(**changes)
    with pytest.raises(ConfigError, match=message):
        settings["config"].validate()
        settings["model"].validate()
        train({p: world.train[p] for p in world.pairs()}, {}, **settings,
              num_classes=world.num_classes)  # fmt: skip

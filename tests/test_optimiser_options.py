"""The optimiser's options (issue 26, item 3): how gradients are bounded (per element, by
global norm, or not), q(t) and q(l)'s own learning rate, and PF-lr's factor initialisation;
the defaults are pfpyro's so far."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import run_settings
from pyro.optim.clipped_adam import ClippedAdam

from pfpyro.config import OptimConfig, TrainConfig
from pfpyro.errors import ConfigError
from pfpyro.infer import train
from pfpyro.infer.checkpoint import named_params
from pfpyro.infer.trainer import NormClippedAdam, make_optimizer, param_groups
from pfpyro.model import Component, ModelDescription
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")


def small_model(guide: Component | None = None):
    guide = guide or Component("lr", {"rank": 2})
    torch.manual_seed(0)
    return ModelDescription.for_sizes(
        ["task0", "task1"], ["lang0", "lang1", "lang2"], {"task0": 3, "task1": 3}, 4,
        latent_dim=2, hypernet=Component("shared", {"hidden_dims": [5]}), guide=guide,
    ).build()  # fmt: skip


def with_gradients(params, scale: float) -> None:
    generator = torch.Generator().manual_seed(1)
    for value in params.values():
        value.grad = scale * torch.randn(value.shape, generator=generator)


def test_the_default_is_clippedadam_clamping_each_element_as_before():
    params = named_params(*small_model())
    optimizer = make_optimizer(params, OptimConfig())
    assert type(optimizer) is ClippedAdam
    assert [g["clip_norm"] for g in optimizer.param_groups] == [10.0, 10.0]
    assert len(optimizer.param_groups) == 2  # the hypernetwork, and the rest (the guide)
    with_gradients(params, 100.0)
    optimizer.step()
    assert max(float(v.grad.abs().max()) for v in params.values()) == 10.0  # clamped in place


def test_clip_none_leaves_the_gradient_as_it_is():
    params = named_params(*small_model())
    optimizer = make_optimizer(params, OptimConfig(clip="none"))
    assert all(math.isinf(g["clip_norm"]) for g in optimizer.param_groups)
    with_gradients(params, 100.0)
    before = {name: value.grad.clone() for name, value in params.items()}
    optimizer.step()
    for name, value in params.items():
        assert torch.equal(value.grad, before[name])


def test_clip_norm_scales_the_whole_gradient_to_the_bound_keeping_its_direction():
    params = named_params(*small_model())
    optimizer = make_optimizer(params, OptimConfig(clip="norm", clip_norm=2.0))
    assert isinstance(optimizer, NormClippedAdam)
    with_gradients(params, 100.0)
    before = torch.cat([v.grad.flatten() for v in params.values()])
    optimizer.step()
    after = torch.cat([v.grad.flatten() for v in params.values()])
    assert float(after.norm()) == pytest.approx(2.0, rel=1e-5)
    torch.testing.assert_close(after, before * (2.0 / before.norm()))
    with_gradients(params, 1e-4)  # a gradient within the bound is left alone
    small = torch.cat([v.grad.flatten() for v in params.values()])
    optimizer.step()
    assert torch.equal(torch.cat([v.grad.flatten() for v in params.values()]), small)


def test_latent_lr_gives_the_guide_its_own_group_and_rate():
    params = named_params(*small_model())
    groups = param_groups(params, OptimConfig(lr=1e-3, latent_lr=0.05))
    guide = {id(v) for name, v in params.items() if name.startswith("guide.")}
    assert guide and [g["lr"] for g in groups] == [1e-3, 0.05]
    assert {id(v) for v in groups[1]["params"]} == guide
    assert not guide & {id(v) for v in groups[0]["params"]}


@pytest.mark.parametrize(
    ("optim", "message"),
    [
        ({"clip": "global"}, "clip 'global' is unknown; known: value, norm, none"),
        ({"latent_lr": 0}, "latent_lr must be positive"),
    ],
)
def test_bad_optimiser_options_are_config_errors(optim, message):
    assert any(message in problem for problem in OptimConfig(**optim).problems())
    with pytest.raises(ConfigError, match=message.split(";")[0].replace("'", ".")):
        TrainConfig(optim=OptimConfig(**optim)).validate()


def test_factor_init_sets_the_low_rank_factors_start():
    _, paper = small_model()
    _, small = small_model(Component("lr", {"rank": 2, "factor_init": 0.01}))
    assert float(paper.t_factor.detach().max()) > 0.1
    assert float(small.t_factor.detach().max()) < 0.01
    assert float(small.l_factor.detach().min()) >= 0.0
    with pytest.raises(ConfigError, match="factor_init must be non-negative"):
        small_model(Component("lr", {"rank": 2, "factor_init": -1.0}))


def test_a_run_trains_with_every_new_option():
    world = make_world(2, 3, latent_dim=2, seed=0)
    pairs = [p for p in world.pairs() if p != ("task0", "lang2")]
    config = run_settings(latent_dim=2, rank=2, batch_size=8, max_steps=30, eval_every=10,
                          log_every=5, progress=False, lr=0.05)  # fmt: skip
    config["config"].optim.clip, config["config"].optim.latent_lr = "norm", 0.1
    result = train({p: world.train[p] for p in pairs}, {p: world.dev[p] for p in pairs},
                   **config, num_classes=world.num_classes)  # fmt: skip
    elbos = [r["elbo"] for r in result.history if r["kind"] == "train"]
    assert all(math.isfinite(e) for e in elbos) and elbos[-1] > elbos[0]

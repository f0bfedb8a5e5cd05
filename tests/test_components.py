"""Extension points that carry a whole model (issue 11): a prior, a hypernetwork, a head and a
guide defined here, in a test file, train, checkpoint, resume exactly, load with
``pfpyro.load`` and predict, with no change to pfpyro; the model description round-trips."""

from __future__ import annotations

import json
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from conftest import run_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from pyro.nn import PyroParam
from torch import nn
from torch.distributions import constraints

import pfpyro
from pfpyro.config import ModelConfig, OptimConfig, TrainConfig
from pfpyro.errors import CheckpointError, ConfigError
from pfpyro.infer import PFPredictor, train
from pfpyro.infer import checkpoint as ckpt
from pfpyro.model import Component, ModelDescription, register, registered
from pfpyro.model.guides import DiagonalGuide
from pfpyro.model.heads import SoftmaxHead
from pfpyro.model.hypernet import combine
from pfpyro.model.priors import LatentPrior
from pfpyro.model.registry import unregister
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")

HELD = ("task1", "lang2")


# -- four components, none of them pfpyro's ------------------------------------------------
@register("prior", "test-learned-scale")
class LearnedScalePrior(LatentPrior):
    """t_i ~ N(0, s_t² I), l_j ~ N(0, s_l² I) with the scales learned with the hypernetwork."""

    def __init__(self, tasks, langs, latent_dim, init_scale: float = 1.0) -> None:
        super().__init__(tasks, langs, latent_dim)
        self.task_scale = PyroParam(torch.tensor(init_scale), constraint=constraints.positive)
        self.lang_scale = PyroParam(torch.tensor(init_scale), constraint=constraints.positive)

    def _normal(self, rows: int, scale: torch.Tensor) -> dist.Distribution:
        loc = self.anchor.new_zeros(rows, self.latent_dim)
        return dist.Normal(loc, scale.expand(rows, self.latent_dim)).to_event(1)

    def task_prior(self) -> dist.Distribution:
        return self._normal(len(self.tasks), self.task_scale)

    def language_prior(self) -> dist.Distribution:
        return self._normal(len(self.langs), self.lang_scale)


@register("hypernet", "test-low-rank-output")
class LowRankOutputHyperNetwork(pyro.nn.PyroModule):
    """f_psi = U (V z) with a rank-r output map, f_phi a learned constant variance."""

    def __init__(self, latent_dim, out_dims, rank: int = 2) -> None:
        super().__init__()
        width = max(out_dims)
        self.down = nn.Linear(4 * latent_dim, rank)
        self.up = nn.Linear(rank, width)
        self.log_variance = nn.Parameter(torch.full((width,), math.log(1e-3)))

    def forward(self, t, l, task=None):
        loc = self.up(self.down(combine(t, l)))
        return loc, self.log_variance.exp().expand_as(loc)


@register("head", "test-tempered")
class TemperedHead(SoftmaxHead):
    def __init__(self, feature_dim, max_classes, temperature: float = 2.0) -> None:
        super().__init__(feature_dim, max_classes)
        self.temperature = temperature

    def logits(self, theta, features, num_classes):
        return super().logits(theta, features, num_classes) / self.temperature


@register("guide", "test-wide-diagonal")
class WideDiagonalGuide(DiagonalGuide):
    """PF-d started wider: the variances begin at ``init_variance``."""

    def __init__(self, factorization, init_variance: float = 0.5) -> None:
        super().__init__(factorization)
        rho = math.log(math.expm1(init_variance))
        self.t_rho = PyroParam(torch.full_like(self.t_rho, rho))
        self.l_rho = PyroParam(torch.full_like(self.l_rho, rho))


ARCHITECTURE = ModelConfig(
    latent_dim=2,
    prior={"name": "test-learned-scale", "init_scale": 0.8},
    hypernet={"name": "test-low-rank-output", "rank": 3},
    head={"name": "test-tempered", "temperature": 1.5},
    guide={"name": "test-wide-diagonal", "init_variance": 0.4},
)


def settings_(**changes) -> TrainConfig:
    values = dict(batch_size=4, max_steps=24, eval_every=6, patience=100, log_every=3)
    return TrainConfig(**{**values, "progress": False, **changes}, optim=OptimConfig(lr=0.05))


@pytest.fixture(scope="module")
def world():
    return make_world(2, 3, num_classes=3, feature_dim=4, sentences=(20, 6, 6), length=5, seed=4)


def fit(world, out_dir, **changes):
    seen = [p for p in world.pairs() if p != HELD]
    return train(
        {p: world.train[p] for p in seen},
        {p: world.dev[p] for p in seen},
        settings_(**changes),
        model=ARCHITECTURE,
        tasks=world.tasks,
        langs=world.langs,
        num_classes=world.num_classes,
        out_dir=out_dir,
        resume=True,
    )


def test_user_components_train_checkpoint_resume_load_and_predict(world, tmp_path):
    straight = fit(world, tmp_path / "straight")
    f = straight.factorization
    assert isinstance(f.prior, LearnedScalePrior) and isinstance(f.head, TemperedHead)
    assert isinstance(f.hypernet, LowRankOutputHyperNetwork)
    assert isinstance(straight.guide, WideDiagonalGuide)
    saved = ckpt.load_checkpoint(tmp_path / "straight")
    assert {"model.prior.task_scale_unconstrained", "model.hypernet.up.weight"} <= set(
        saved["params"]
    )
    model_json = json.loads((tmp_path / "straight" / "model.json").read_text())
    assert model_json["head"] == {"name": "test-tempered", "args": {"temperature": 1.5}}
    # the learned prior moved away from its start, so it really trained
    assert abs(float(f.prior.task_scale.detach()) - 0.8) > 1e-4

    # stopped at step 12, resumed to 24: the same parameters, bit for bit
    fit(world, tmp_path / "cut", max_steps=12)
    fit(world, tmp_path / "cut", max_steps=24)
    a, b = ckpt.load_checkpoint(tmp_path / "straight"), ckpt.load_checkpoint(tmp_path / "cut")
    assert a["step"] == b["step"] == 24
    assert set(a["params"]) == set(b["params"])
    assert all(torch.equal(a["params"][k], b["params"][k]) for k in a["params"])

    run = pfpyro.load(tmp_path / "straight")
    assert isinstance(run.guide, WideDiagonalGuide) and isinstance(
        run.factorization.head, TemperedHead
    )
    test = world.test[HELD]
    for mode in ("plugin", "bma"):
        pyro.set_rng_seed(1)
        expected = PFPredictor(f, straight.guide, mode=mode, num_samples=20).predict_proba(
            *HELD, test.features.float(), test.mask
        )
        pyro.set_rng_seed(1)
        got = PFPredictor(run.factorization, run.guide, mode=mode, num_samples=20).predict_proba(
            *HELD, test.features.float(), test.mask
        )
        assert torch.allclose(got, expected, atol=1e-6)
    labels = run.predict(*HELD, [["a", "b"]], features=test.features[:1, :2].float()).labels
    assert labels[0][0] in run.label_names(HELD[0])

    # a process that lacks the component cannot rebuild the run, and says which one
    unregister("head", "test-tempered")
    try:
        with pytest.raises(CheckpointError, match="unknown head 'test-tempered'"):
            pfpyro.load(tmp_path / "straight")
    finally:
        register("head", "test-tempered")(TemperedHead)


def test_two_models_in_one_process_share_no_parameter(world):
    pyro.clear_param_store()
    seen = [p for p in world.pairs() if p != HELD]
    data = {p: world.train[p] for p in seen}
    a = train(data, {}, **run_settings(max_steps=6, seed=0, progress=False),
              tasks=world.tasks, langs=world.langs, num_classes=world.num_classes)  # fmt: skip
    b = train(data, {}, **run_settings(max_steps=6, seed=1, progress=False),
              tasks=world.tasks, langs=world.langs, num_classes=world.num_classes)  # fmt: skip
    params_a = dict(a.factorization.named_parameters()) | dict(a.guide.named_parameters())
    params_b = dict(b.factorization.named_parameters()) | dict(b.guide.named_parameters())
    assert set(params_a) == set(params_b)
    storages_a = {p.untyped_storage().data_ptr() for p in params_a.values()}
    assert not storages_a & {p.untyped_storage().data_ptr() for p in params_b.values()}
    assert not torch.equal(params_a["l_loc_unconstrained"], params_b["l_loc_unconstrained"])
    assert len(pyro.get_param_store()) == 0  # the parameters live in the modules only


def test_a_registered_name_cannot_be_taken_twice():
    with pytest.raises(ConfigError, match="already registered"):
        register("head", "softmax")(TemperedHead)
    assert "test-tempered" in registered("head") and "softmax" in registered("head")
    with pytest.raises(ConfigError, match=r"unknown guide 'nope'.*model\.imports"):
        ModelDescription.for_sizes(["t"], ["l"], {"t": 2}, 3, guide="nope").build()


def json_values():
    scalars = st.one_of(
        st.integers(-5, 5), st.floats(-2, 2, allow_nan=False), st.booleans(), st.text(max_size=3)
    )
    return st.dictionaries(
        st.text("abcdefgh_", min_size=1, max_size=5),
        st.one_of(scalars, st.lists(scalars, max_size=3)),
        max_size=3,
    )


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.tuples(
        st.sampled_from(registered("prior")),
        st.sampled_from(registered("hypernet")),
        st.sampled_from(registered("head")),
        st.sampled_from(registered("guide")),
    ),
    args=st.tuples(json_values(), json_values(), json_values(), json_values()),
    tasks=st.lists(st.sampled_from(["pos", "ner", "dep", "t9"]), min_size=1, unique=True),
    langs=st.lists(st.text("abcxyz", min_size=2, max_size=3), min_size=1, max_size=4, unique=True),
    latent_dim=st.integers(1, 8),
    moments=st.booleans(),
)
def test_the_model_description_round_trips(kinds, args, tasks, langs, latent_dim, moments):
    parts = [Component(name, a) for name, a in zip(kinds, args, strict=True)]
    description = ModelDescription.for_sizes(
        tasks,
        langs,
        {task: 3 + k for k, task in enumerate(tasks)},
        4,
        latent_dim=latent_dim,
        prior=parts[0],
        hypernet=parts[1],
        head=parts[2],
        guide=parts[3],
        feature_mean=[0.5, -1.0, 2.0, 0.0] if moments else None,
        feature_scale=[1.0, 2.0, 0.5, 3.0] if moments else None,
    )
    text = json.dumps(description.to_json())
    again = ModelDescription.from_json(json.loads(text))
    assert again == description
    assert again.to_json() == description.to_json()


def test_a_version_1_model_json_reads_as_the_same_model():
    old = {
        "tasks": ["ner", "pos"], "langs": ["en", "wo"], "num_classes": {"ner": 7, "pos": 17},
        "feature_dim": 4, "latent_dim": 2, "hidden_dims": [], "init_variance": 0.001,
        "hypernet": "residual", "offset_scale": 0.1, "head": "SoftmaxHead", "max_classes": 17,
        "guide": "lr", "rank": 3, "feature_mean": None, "feature_scale": None,
    }  # fmt: skip
    description = ModelDescription.from_json(old)
    assert description.hypernet == Component(
        "residual", {"hidden_dims": [], "init_variance": 0.001, "offset_scale": 0.1}
    )
    assert description.guide == Component("lr", {"rank": 3})
    assert description.labels["ner"][0] == "O" and len(description.labels["pos"]) == 17
    factorization, _ = description.build()
    assert factorization.num_classes == {"ner": 7, "pos": 17}

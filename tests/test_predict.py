"""Plug-in and model-averaged prediction, and predictive entropy."""

from __future__ import annotations

import math

import pyro
import pytest
import torch

from pfpyro.errors import ConfigError
from pfpyro.evaluate import token_entropy
from pfpyro.evaluate.uncertainty import sentence_entropy
from pfpyro.infer.predict import PFPredictor
from pfpyro.model import Component, ModelDescription
from pfpyro.predictor import TokenPredictor
from pfpyro.testing.synthetic import make_world

PAIR = ("task0", "lang1")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world():
    return make_world(2, 3, num_classes=5, feature_dim=6, sentences=(4, 4, 9), length=8, seed=1)


@pytest.fixture
def model(world):
    pyro.set_rng_seed(0)
    return ModelDescription.for_sizes(
        world.tasks,
        world.langs,
        {"task0": 5, "task1": 3},  # task1 uses 3 of the head's 5 classes
        world.feature_dim,
        latent_dim=3,
        # init_variance 0.5: a wide p(θ | t, l), so samples differ visibly
        hypernet=Component("shared", {"hidden_dims": [7], "init_variance": 0.5}),
        guide=Component("lr", {"rank": 2}),
    ).build()


def test_entropy_lies_between_zero_and_log_c():
    torch.manual_seed(0)
    probs = torch.randn(4, 6, 5).mul(3).softmax(-1)
    probs[0, 0] = torch.tensor([1.0, 0, 0, 0, 0])  # certain: H = 0, with 0 ln 0 = 0
    probs[0, 1] = torch.full((5,), 0.2)  # uniform: H = ln 5
    h = token_entropy(probs)
    assert h.shape == (4, 6)
    assert torch.all(h >= 0) and torch.all(h <= math.log(5) + 1e-6)
    assert h[0, 0].item() == 0.0
    assert h[0, 1].item() == pytest.approx(math.log(5), rel=1e-6)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[1, 3:] = False
    per_sentence = sentence_entropy(probs, mask)
    assert per_sentence[1].item() == pytest.approx(h[1, :3].mean().item(), rel=1e-6)


def test_plugin_equals_a_hand_computation_from_the_posterior_means(world, model):
    f, guide = model
    data = world.test[PAIR].batch(list(range(9)))
    predictor = PFPredictor(f, guide, mode="plugin")
    assert isinstance(predictor, TokenPredictor)
    probs = predictor.predict_proba(*PAIR, data.features, data.mask)
    # by hand: t_0 and l_1 at their means, θ = f_psi(t, l), softmax(x W + b)
    with torch.no_grad():
        t, l = guide.t_loc[0], guide.l_loc[1]
        net = f.hypernet
        x = torch.cat([t, l, t - l, t * l])
        hidden = torch.relu(net.shared[0].weight @ x + net.shared[0].bias)
        theta = net.mean.weight @ hidden + net.mean.bias
        e, c = world.feature_dim, 5
        weight, bias = theta[: e * c].reshape(e, c), theta[e * c :]
        expected = (data.features @ weight + bias).softmax(-1)
    assert probs.shape == (9, 8, 5)
    assert torch.allclose(probs, expected, atol=1e-6)


def test_a_smaller_task_gets_only_its_own_classes(world, model):
    f, guide = model
    data = world.test["task1", "lang0"]
    for mode in ("plugin", "bma"):
        probs = PFPredictor(f, guide, mode=mode, num_samples=4).predict_proba(
            "task1", "lang0", data.features.float(), data.mask
        )
        assert probs.shape[-1] == 3
        assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:-1]), atol=1e-5)


def test_bma_averages_per_sample_probabilities_not_logits(world, model):
    f, guide = model
    data = world.test[PAIR].batch(list(range(9)))
    predictor = PFPredictor(f, guide, mode="bma", num_samples=6)
    pyro.set_rng_seed(4)
    bma = predictor.predict_proba(*PAIR, data.features, data.mask)
    pyro.set_rng_seed(4)
    per_sample, samples = predictor.sample_proba_with_samples(*PAIR, data.features, data.mask)
    assert samples["t"].shape == (6, 1, 2, 3)
    assert samples["l"].shape == (6, 1, 3, 3)
    assert samples["theta"].shape == (6, 1, 1, f.head.num_params)
    assert per_sample.shape == (6, 9, 8, 5)
    # each sample's probabilities are the softmax of that sample's classifier
    with torch.no_grad():
        logits = f.head.logits(samples["theta"], data.features, 5)
    assert torch.allclose(per_sample, logits.softmax(-1), atol=1e-6)
    assert torch.allclose(bma, logits.softmax(-1).mean(0), atol=1e-6)
    assert torch.allclose(bma.sum(-1), torch.ones(9, 8), atol=1e-5)
    # averaging logits would give something else
    assert not torch.allclose(bma, logits.mean(0).softmax(-1), atol=1e-3)


def test_chunking_does_not_change_predictions(world, model):
    f, guide = model
    data = world.test[PAIR]
    features = data.features.float()
    whole = PFPredictor(f, guide, batch_size=100).predict_proba(*PAIR, features, data.mask)
    chunked = PFPredictor(f, guide, batch_size=2).predict_proba(*PAIR, features, data.mask)
    assert torch.allclose(whole, chunked, atol=1e-6)
    bma_whole = PFPredictor(f, guide, mode="bma", num_samples=5, batch_size=100)
    bma_chunked = PFPredictor(f, guide, mode="bma", num_samples=5, batch_size=4)
    pyro.set_rng_seed(9)
    a = bma_whole.predict_proba(*PAIR, features, data.mask)
    pyro.set_rng_seed(9)
    b = bma_chunked.predict_proba(*PAIR, features, data.mask)
    assert torch.allclose(a, b, atol=1e-6)


def test_predict_with_entropy_zeroes_padding(world, model):
    f, guide = model
    data = world.test[PAIR].batch(list(range(3)))
    mask = data.mask.clone()
    mask[0, 5:] = False
    probs, entropy = PFPredictor(f, guide, mode="bma", num_samples=3).predict_with_entropy(
        *PAIR, data.features, mask
    )
    assert entropy.shape == (3, 8)
    assert torch.all(entropy[0, 5:] == 0)
    assert torch.all(entropy[mask] > 0) and torch.all(entropy <= math.log(5) + 1e-6)
    assert torch.allclose(entropy[mask], token_entropy(probs).float()[mask], atol=1e-6)


@pytest.mark.parametrize("mode", ["plugin", "bma"])
def test_prediction_ignores_a_stale_global_param_store(world, model, mode):
    """A store holding other values under the same names must not leak into predictions."""
    f, guide = model
    data = world.test[PAIR]
    predictor = PFPredictor(f, guide, mode=mode, num_samples=3)
    pyro.set_rng_seed(0)
    before = predictor.predict_proba(*PAIR, data.features.float(), data.mask)
    with pyro.get_param_store().scope():  # a store of the caller's, with the guide's old names
        pyro.param("guide.t_loc", torch.full_like(guide.t_loc, 5.0))
        pyro.param("guide.l_loc", torch.full_like(guide.l_loc, -5.0))
        pyro.set_rng_seed(0)
        after = predictor.predict_proba(*PAIR, data.features.float(), data.mask)
    assert torch.equal(before, after)


def test_bad_requests_are_refused(world, model):
    f, guide = model
    data = world.test[PAIR]
    with pytest.raises(ConfigError, match="unknown prediction mode"):
        PFPredictor(f, guide, mode="logits")
    with pytest.raises(ConfigError, match="unknown language 'xx'"):
        PFPredictor(f, guide).predict_proba("task0", "xx", data.features.float(), data.mask)
    with pytest.raises(ConfigError, match="width 4"):
        PFPredictor(f, guide).predict_proba(*PAIR, torch.zeros(2, 8, 4), data.mask[:2])
    empty = PFPredictor(f, guide).predict_proba(*PAIR, torch.zeros(0, 8, 6), data.mask[:0])
    assert empty.shape == (0, 8, 5)

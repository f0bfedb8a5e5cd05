"""Few-shot (issue 9, item 4): k sentences of an unseen pair update q(l_j) and q(θ_ij)."""

from __future__ import annotations

import pytest
import torch

from pfpyro.data.batch import PairTensors
from pfpyro.errors import ConfigError
from pfpyro.evaluate import token_accuracy
from pfpyro.infer import PFPredictor
from pfpyro.infer.checkpoint import named_params
from pfpyro.infer.pair_posterior import FewShotPredictor, FewShotSettings, fit_pair
from pfpyro.testing.synthetic import make_world, train_on_world

pytestmark = pytest.mark.usefixtures("one_thread")

HELD = ("task1", "lang2")


@pytest.fixture(scope="module")
def world():
    return make_world(2, 4, num_classes=4, feature_dim=6, latent_dim=3, sentences=(60, 10, 60),
                      length=8, seed=7)  # fmt: skip


@pytest.fixture(scope="module")
def run(world):
    """A PF-lr run trained without the held-out pair, on purpose a little short of good."""
    seen = [p for p in world.pairs() if p != HELD]
    return train_on_world(world, seen, max_steps=150, eval_every=50)


def accuracy(predictor, world) -> float:
    test = world.test[HELD]
    probs = predictor.predict_proba(*HELD, test.features.float(), test.mask)
    return token_accuracy(test.labels, probs.argmax(-1), test.mask)


def test_k_sentences_raise_the_unseen_pairs_accuracy_and_leave_the_run_alone(world, run):
    params = named_params(run.factorization, run.guide)
    before = {name: value.detach().clone() for name, value in params.items()}
    zero_shot = PFPredictor(run.factorization, run.guide)
    k0 = FewShotPredictor(run.factorization, run.guide, {})
    test = world.test[HELD]
    assert torch.equal(  # k = 0: nothing fitted, the zero-shot model itself
        k0.predict_proba(*HELD, test.features.float(), test.mask),
        zero_shot.predict_proba(*HELD, test.features.float(), test.mask),
    )
    scores = {0: accuracy(zero_shot, world)}
    for k in (5, 40):
        data = world.train[HELD].batch(torch.arange(k))
        posterior = fit_pair(run.factorization, run.guide, *HELD, data, FewShotSettings(steps=200))
        scores[k] = accuracy(
            FewShotPredictor(run.factorization, run.guide, {HELD: posterior}), world
        )
    assert scores[40] > scores[0] + 0.05, scores
    assert scores[40] >= scores[5] - 0.02, scores
    after = named_params(run.factorization, run.guide)
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(value.requires_grad for value in after.values())
    # the other pairs predict as before
    other = world.test["task0", "lang2"]
    predictor = FewShotPredictor(run.factorization, run.guide, {HELD: posterior})
    assert torch.equal(
        predictor.predict_proba("task0", "lang2", other.features.float(), other.mask),
        zero_shot.predict_proba("task0", "lang2", other.features.float(), other.mask),
    )


def test_few_shot_is_seeded_and_refuses_no_data(world, run):
    data = world.train[HELD].batch(torch.arange(8))
    a = fit_pair(run.factorization, run.guide, *HELD, data, FewShotSettings(steps=20, seed=3))
    b = fit_pair(run.factorization, run.guide, *HELD, data, FewShotSettings(steps=20, seed=3))
    assert torch.equal(a.theta_loc, b.theta_loc) and torch.equal(a.l_loc, b.l_loc)
    with pytest.raises(ConfigError, match="k = 0 is the zero-shot model"):
        fit_pair(
            run.factorization,
            run.guide,
            *HELD,
            PairTensors(data.features[:0], data.labels[:0], data.mask[:0]),
        )
    with pytest.raises(ConfigError, match="steps and batch_size"):
        fit_pair(run.factorization, run.guide, *HELD, data, FewShotSettings(steps=0))

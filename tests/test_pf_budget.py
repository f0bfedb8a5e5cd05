"""PF's budget in epochs (``selection.pf_epochs``), as the baselines': evaluation at the
steps of each candidate count, the best count refit on all seen pairs."""

from __future__ import annotations

import pytest
from conftest import run_settings

from pfpyro.config import TrainConfig
from pfpyro.errors import ConfigError
from pfpyro.infer import train
from pfpyro.pipeline.fit import epoch_steps
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")


def test_epochs_become_steps_over_the_sentences_each_step_reads():
    world = make_world(2, 3, sentences=(30, 5, 5), seed=0)
    data = {p: world.train[p] for p in world.pairs()}  # 6 pairs × 30 sentences
    config = TrainConfig(batch_size=15, pairs_per_step=2)
    assert epoch_steps(data, config, [1, 2, 0.01]) == {0.01: 1, 1.0: 6, 2.0: 12}
    assert epoch_steps(data, TrainConfig(batch_size=15), [2]) == {2.0: 24}


def test_the_trainer_evaluates_at_the_given_steps_only():
    world = make_world(2, 3, sentences=(20, 10, 5), seed=0)
    seen = [p for p in world.pairs() if p != ("task1", "lang0")]
    settings = run_settings(max_steps=9, eval_steps=[2, 5, 9], eval_every=1, patience=5,
                            progress=False)  # fmt: skip
    result = train(
        {p: world.train[p] for p in seen},
        {p: world.dev[p] for p in seen},
        settings["config"],
        model=settings["model"],
        num_classes=world.num_classes,
    )
    assert [r["step"] for r in result.history if r["kind"] == "eval"] == [2, 5, 9]
    assert result.best_step in (2, 5, 9)


def test_eval_steps_must_be_step_numbers():
    with pytest.raises(ConfigError, match="eval_steps"):
        TrainConfig(eval_steps=[0, 3]).validate()

"""The SVI training loop: what each step is given, model selection, stopping, logs, errors."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from conftest import run_settings

from pfpyro.data.batch import PairTensors
from pfpyro.errors import ConfigError, PfpyroError
from pfpyro.infer import NumericalError, TrainConfig, read_log, train
from pfpyro.infer import trainer as trainer_module
from pfpyro.infer.checkpoint import load_checkpoint
from pfpyro.infer.trainer import num_minibatches
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world():
    return make_world(2, 3, num_classes=3, feature_dim=4, sentences=(20, 6, 6), length=5, seed=2)


def small_config(**changes) -> dict:
    """``train()``'s config and model (``run_settings``) of a small fast run."""
    values = dict(
        latent_dim=2,
        hidden_dims=(6,),
        rank=2,
        batch_size=4,
        lr=0.05,
        max_steps=12,
        eval_every=4,
        patience=50,
        log_every=4,
        progress=False,
    )
    values.update(changes)
    return run_settings(**values)


def split(world, held=(("task1", "lang2"),)):
    seen = [p for p in world.pairs() if p not in held]
    return {p: world.train[p] for p in seen}, {p: world.dev[p] for p in seen}


class StepSpy:
    """Replaces the trainer's ``svi_update``: records what each step is given and returns a
    fixed loss."""

    def __init__(self, loss: float = 1.0) -> None:
        self.calls: list[dict] = []
        self.loss = loss

    def __call__(
        self,
        elbo,
        factorization,
        guide,
        optimizer,
        task,
        lang,
        features,
        mask,
        labels,
        pair_size=None,
        kl_weight=1.0,
        pair_weight=1.0,
    ):
        self.calls.append(
            dict(
                pair=(task, lang),
                batch=features.shape[0],
                pair_size=pair_size,
                kl=kl_weight,
                weight=pair_weight,
            )
        )
        return self.loss


def test_each_step_gets_a_seen_pair_its_size_and_kl_weight_beta_over_p(world, monkeypatch):
    train_data, dev = split(world)
    sizes = {p: len(t) for p, t in train_data.items()}
    sizes["task0", "lang0"] = 7  # uneven pairs: |K| must count each pair's own batches
    train_data["task0", "lang0"] = PairTensors(
        *(x[:7] for x in (world.train["task0", "lang0"].features,
                          world.train["task0", "lang0"].labels,
                          world.train["task0", "lang0"].mask))
    )  # fmt: skip
    spy = StepSpy()
    monkeypatch.setattr(trainer_module, "svi_update", spy)
    train(train_data, dev, **small_config(max_steps=30, kl_beta=2.0), num_classes=world.num_classes)
    k = sum(math.ceil(n / 4) for n in sizes.values())
    assert num_minibatches(sizes, 4) == k == 2 + 4 * 5
    assert len(spy.calls) == 30
    for call in spy.calls:
        assert call["pair"] in train_data
        assert call["pair_size"] == sizes[call["pair"]]
        # uniform pair draws: the likelihood needs no correction, the KL weighs β / P
        assert call["kl"] == pytest.approx(2.0 / len(sizes))
        assert call["weight"] == pytest.approx(1.0)
        assert call["batch"] == min(4, sizes[call["pair"]])
    assert len({c["pair"] for c in spy.calls}) > 1


def test_pair_sampling_uniform_or_by_size(world, monkeypatch):
    big, small = ("task0", "lang0"), ("task1", "lang1")
    full = world.train[big]
    tiny = world.train[small]
    data = {big: full, small: PairTensors(tiny.features[:2], tiny.labels[:2], tiny.mask[:2])}
    counts = {}
    for sampling in ("uniform", "size"):
        spy = StepSpy()
        monkeypatch.setattr(trainer_module, "svi_update", spy)
        config = small_config(max_steps=400, pair_sampling=sampling, eval_every=1000)
        train(data, {}, **config, num_classes=world.num_classes)
        counts[sampling] = Counter(c["pair"] for c in spy.calls)
    # seeded: uniform about 200 each; by size about 20:2, so about 364 for the big pair
    assert 150 < counts["uniform"][big] < 250
    assert counts["size"][big] > 330


def test_same_seed_same_run_and_another_seed_differs(world):
    train_data, dev = split(world)
    a = train(train_data, dev, **small_config(), num_classes=world.num_classes)
    b = train(train_data, dev, **small_config(), num_classes=world.num_classes)
    c = train(train_data, dev, **small_config(seed=1), num_classes=world.num_classes)
    pa, pb, pc = (dict(r.guide.named_parameters()) for r in (a, b, c))
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not all(torch.equal(pa[k], pc[k]) for k in pa)


def test_training_improves_the_elbo_and_dev_score(world):
    train_data, dev = split(world)
    config = small_config(max_steps=150, eval_every=50, log_every=50, lr=0.05)
    result = train(train_data, dev, **config, num_classes=world.num_classes)
    elbos = [r["elbo_mean"] for r in result.history if r["kind"] == "train"]
    scores = [r["dev_score"] for r in result.history if r["kind"] == "eval"]
    assert elbos[-1] > elbos[0]
    assert result.best_score == max(scores)
    assert result.best_score > 1 / 3 + 0.1  # clearly above chance with 3 classes


def test_dev_with_a_held_out_pair_is_refused(world):
    train_data, dev = split(world)
    dev["task1", "lang2"] = world.dev["task1", "lang2"]
    with pytest.raises(ConfigError, match=r"task1/lang2.*seen pairs only"):
        train(train_data, dev, **small_config(), num_classes=world.num_classes)


def test_nan_loss_stops_with_the_step_and_pair_and_keeps_the_checkpoint(world, tmp_path):
    train_data, dev = split(world)
    run = tmp_path / "run"
    train(train_data, dev, **small_config(max_steps=8), num_classes=world.num_classes, out_dir=run)
    bad = ("task0", "lang1")
    clean = train_data[bad]
    poisoned = PairTensors(torch.full_like(clean.features, float("nan")), clean.labels, clean.mask)
    train_data[bad] = poisoned
    with pytest.raises(NumericalError) as caught:
        train(
            train_data,
            dev,
            **small_config(max_steps=40),
            num_classes=world.num_classes,
            out_dir=run,
            resume=True,
        )
    err = caught.value
    assert isinstance(err, PfpyroError)
    assert err.pair == bad and err.step > 8
    assert str(err).startswith(f"step {err.step}, pair task0/lang1: ")
    # the checkpoint on disk is the last one written before the failure, and it is sound
    saved = load_checkpoint(run)
    assert saved["step"] == (err.step - 1) // 4 * 4
    assert all(torch.isfinite(p).all() for p in saved["params"].values())
    events = [r for r in read_log(run / "log.jsonl") if r.get("event") == "numerical_error"]
    assert events and events[-1]["step"] == err.step


def test_early_stopping_restores_the_best_parameters(world, tmp_path):
    train_data, dev = split(world)
    # a learning rate so small that the dev score cannot move: the second evaluation
    # does not improve, and patience 1 stops the run there
    config = small_config(lr=1e-9, max_steps=40, eval_every=4, patience=1)
    result = train(train_data, dev, **config, num_classes=world.num_classes, out_dir=tmp_path)
    evals = [r for r in result.history if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [4, 8]
    assert result.best_step == 4 and evals[-1]["stopped"]
    saved = load_checkpoint(tmp_path)
    assert saved["step"] == 8 and saved["state"]["stopped"]
    params = {n: p for n, p in result.guide.named_parameters()}
    best = saved["best_params"]
    assert torch.equal(params["t_loc_unconstrained"], best["guide.t_loc_unconstrained"])
    last = saved["params"]["guide.t_loc_unconstrained"]
    assert not torch.equal(best["guide.t_loc_unconstrained"], last)
    log = read_log(tmp_path / "log.jsonl")
    assert any(r.get("event") == "early_stop" for r in log)


def test_log_records_elbo_kl_lr_and_dev_scores(world, tmp_path):
    train_data, dev = split(world)
    config = small_config(tensorboard=True, guide="d", elbo="meanfield")
    train(train_data, dev, **config, num_classes=world.num_classes, out_dir=tmp_path)
    log = read_log(tmp_path / "log.jsonl")
    trains = [r for r in log if r["kind"] == "train"]
    evals = [r for r in log if r["kind"] == "eval"]
    assert [r["step"] for r in trains] == [4, 8, 12]
    assert [r["step"] for r in evals] == [4, 8, 12]
    for record in trains:
        assert {"elbo", "elbo_mean", "kl_t", "kl_l", "lr", "pair"} <= set(record)
        assert record["kl_t"] > 0 and record["lr"] == pytest.approx(0.05)
    assert set(evals[0]["dev"]) == {f"{t}/{l}" for t, l in dev}
    assert evals[0]["dev_score"] == pytest.approx(sum(evals[0]["dev"].values()) / len(dev))
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_progress_bar_on_stderr_only_when_asked(world, capsys):
    train_data, dev = split(world)
    train(train_data, dev, **small_config(max_steps=4), num_classes=world.num_classes)
    assert capsys.readouterr().err == ""
    train(
        train_data, dev, **small_config(max_steps=4, progress=True), num_classes=world.num_classes
    )
    err = capsys.readouterr().err
    assert "svi" in err and "4/4" in err


def test_extra_tasks_and_languages_enter_the_model(world):
    train_data, dev = split(world)
    langs = [*world.langs, "lang9"]
    result = train(
        train_data, dev, **small_config(max_steps=2), langs=langs, num_classes=world.num_classes
    )
    assert result.factorization.langs == tuple(sorted(langs))
    assert result.guide.l_loc.shape[0] == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(guide="no-such-guide"), "guide 'no-such-guide'"),
        (dict(elbo="renyi"), "elbo 'renyi'"),
        (dict(pair_sampling="random"), "pair_sampling"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), "lr must be positive"),
    ],
)
def test_bad_config_is_refused(world, changes, message):
    train_data, dev = split(world)
    with pytest.raises(ConfigError, match=message):
        train(train_data, dev, **small_config(**changes), num_classes=world.num_classes)


def test_bad_data_is_refused(world, tmp_path):
    train_data, dev = split(world)
    with pytest.raises(ConfigError, match="no label set"):
        train(train_data, dev, **small_config())  # synthetic tasks need num_classes
    with pytest.raises(ConfigError, match=r"label ids must lie in \[0, 2\)"):
        train(train_data, dev, **small_config(), num_classes={"task0": 2, "task1": 3})
    with pytest.raises(ConfigError, match=r"languages .*lang0"):
        train(train_data, dev, **small_config(), langs=["lang1"], num_classes=world.num_classes)
    train(
        train_data,
        dev,
        **small_config(max_steps=1),
        num_classes=world.num_classes,
        out_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match="already holds a checkpoint"):
        train(train_data, dev, **small_config(), num_classes=world.num_classes, out_dir=tmp_path)


def test_config_round_trips_through_a_dict():
    config = small_config(lr=0.2)["config"]
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown training config fields: colour"):
        TrainConfig.from_dict({"colour": "red"})

"""Checkpoints: exact resumption, safe and atomic files, rebuilding a model from its folder."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import run_settings

import pfpyro
from pfpyro.errors import CheckpointError, ConfigError
from pfpyro.infer import PFPredictor, TrainConfig, load_run, train
from pfpyro.infer import checkpoint as ckpt
from pfpyro.infer import trainer as trainer_module
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world():
    return make_world(2, 3, num_classes=3, feature_dim=4, sentences=(16, 6, 6), length=5, seed=4)


@pytest.fixture(scope="module")
def data(world):
    seen = [p for p in world.pairs() if p != ("task0", "lang2")]
    return {p: world.train[p] for p in seen}, {p: world.dev[p] for p in seen}


def config(**changes) -> dict:
    values = dict(
        latent_dim=2,
        hidden_dims=(5,),
        rank=2,
        batch_size=4,
        lr=0.05,
        max_steps=24,
        eval_every=6,
        patience=100,
        log_every=3,
        progress=False,
    )
    values.update(changes)
    return run_settings(**values)


def run(world, data, out_dir, resume=False, **changes):
    train_data, dev = data
    return train(
        train_data,
        dev,
        **config(**changes),
        num_classes=world.num_classes,
        out_dir=out_dir,
        resume=resume,
    )


def assert_same_params(a, b):
    """Equal, bit for bit: tensors, and nested dicts or lists of them."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for name in a:
            assert_same_params(a[name], b[name])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_params(x, y)
    else:
        assert a == b


@pytest.fixture(scope="module")
def straight(world, data, tmp_path_factory):
    """An uninterrupted 24-step run: the reference every resumption must reproduce."""
    folder = tmp_path_factory.mktemp("straight")
    result = run(world, data, folder)
    return folder, result


def test_resume_after_a_crash_matches_an_uninterrupted_run(world, data, straight, tmp_path):
    folder, reference = straight
    real_save = trainer_module.save_checkpoint

    def save_then_crash(out_dir, payload):  # the process dies right after step 12's save
        path = real_save(out_dir, payload)
        if payload["step"] == 12:
            raise KeyboardInterrupt
        return path

    trainer_module.save_checkpoint = save_then_crash
    try:
        with pytest.raises(KeyboardInterrupt):
            run(world, data, tmp_path)
    finally:
        trainer_module.save_checkpoint = real_save
    assert ckpt.load_checkpoint(tmp_path)["step"] == 12
    resumed = run(
        world, data, tmp_path, resume=True, progress=True, log_every=4
    )  # cosmetic changes are fine
    a, b = ckpt.load_checkpoint(folder), ckpt.load_checkpoint(tmp_path)
    assert a["step"] == b["step"] == 24
    assert_same_params(a["params"], b["params"])  # the last step's parameters
    assert_same_params(a["best_params"], b["best_params"])
    assert (resumed.best_step, resumed.best_score) == (reference.best_step, reference.best_score)
    assert_same_params(
        dict(reference.guide.named_parameters()), dict(resumed.guide.named_parameters())
    )
    assert_same_params(
        dict(reference.factorization.named_parameters()),
        dict(resumed.factorization.named_parameters()),
    )
    # the log reads as one run: the cut-off run's records after step 12 are gone
    steps = [
        r["step"] for r in pfpyro.infer.read_log(tmp_path / "log.jsonl") if r["kind"] == "eval"
    ]
    assert steps == [6, 12, 18, 24]


def test_resume_to_more_steps_matches_a_longer_run(world, data, straight, tmp_path):
    folder, reference = straight
    run(world, data, tmp_path, resume=True, max_steps=12)  # no checkpoint yet: starts afresh
    train_data, dev = data
    resumed = train(
        train_data,
        dev,
        **config(max_steps=24),
        num_classes=world.num_classes,
        out_dir=tmp_path,
        resume=True,
    )
    a, b = ckpt.load_checkpoint(folder), ckpt.load_checkpoint(tmp_path)
    assert_same_params(a["params"], b["params"])
    assert_same_params(a["optimizer"], b["optimizer"])
    assert resumed.best_score == reference.best_score
    assert [r for r in resumed.history] == [r for r in reference.history]


def test_resume_refuses_a_different_run(world, data, straight, tmp_path):
    folder, _ = straight
    shutil.copytree(folder, tmp_path / "copy")
    train_data, dev = data
    with pytest.raises(ConfigError, match=r"model\.json describes another model.*latent_dim"):
        train(train_data, dev, **config(latent_dim=3), num_classes=world.num_classes,
              out_dir=tmp_path / "copy", resume=True)  # fmt: skip
    with pytest.raises(ConfigError, match=r"optim\.lr \(checkpoint 0.05, now 0.1\)"):
        train(
            train_data,
            dev,
            **config(lr=0.1),
            num_classes=world.num_classes,
            out_dir=tmp_path / "copy",
            resume=True,
        )
    fewer = dict(list(train_data.items())[:-1])
    with pytest.raises(ConfigError, match="training pairs or their sizes differ"):
        train(
            fewer,
            {},
            **config(),
            tasks=world.tasks,
            langs=world.langs,
            num_classes=world.num_classes,
            out_dir=tmp_path / "copy",
            resume=True,
        )


def test_checkpoint_loads_with_weights_only_and_holds_everything(straight):
    folder, _ = straight
    body = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert body["version"] == pfpyro.__version__
    assert body["config"] == config()["config"].to_dict()
    assert set(body["params"]) == set(body["best_params"])
    assert body["format_version"] == 2
    names = {
        "guide.t_loc_unconstrained",
        "guide.l_factor_unconstrained",
        "model.hypernet.mean.weight",
    }
    assert names <= set(body["params"])
    assert set(body["optimizer"]) == {"state", "param_groups"}  # a torch optimiser state dict
    indices = [k for group in body["optimizer"]["param_groups"] for k in group["params"]]
    assert sorted(indices) == list(range(len(body["params"])))
    assert [g["weight_decay"] for g in body["optimizer"]["param_groups"]] == [0.0, 0.0]
    assert {"torch", "data", "python", "numpy"} <= set(body["rng"])
    model = json.loads((folder / "model.json").read_text())
    assert model["tasks"] == ["task0", "task1"] and model["langs"] == ["lang0", "lang1", "lang2"]
    assert model["labels"] == {"task0": ["0", "1", "2"], "task1": ["0", "1", "2"]}
    assert model["hypernet"] == {"name": "shared", "args": {"hidden_dims": [5]}}
    assert model["guide"] == {"name": "lr", "args": {"rank": 2}}
    assert (model["feature_dim"], model["latent_dim"]) == (4, 2)


def test_load_run_rebuilds_the_best_model_from_the_folder_alone(world, straight):
    folder, reference = straight
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    factorization, guide, meta = load_run(folder, device="cpu")
    assert torch.equal(torch.rand(3), before)  # the caller's random stream is untouched
    assert meta["best_step"] == reference.best_step and meta["step"] == 24
    assert_same_params(dict(guide.named_parameters()), dict(reference.guide.named_parameters()))
    test = world.test["task0", "lang2"]  # the held-out pair
    expected = PFPredictor(reference.factorization, reference.guide).predict_proba(
        "task0", "lang2", test.features.float(), test.mask
    )
    got = PFPredictor(factorization, guide).predict_proba(
        "task0", "lang2", test.features.float(), test.mask
    )
    assert torch.equal(expected, got)


def test_a_truncated_checkpoint_is_reported_and_the_original_survives(straight, tmp_path):
    folder, _ = straight
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    blob = (copy / "checkpoint.pt").read_bytes()
    (copy / "checkpoint.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: truncated or corrupt") as caught:
        load_run(copy)
    assert str(copy) in str(caught.value)
    (copy / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ckpt.load_checkpoint(copy)
    ckpt.load_checkpoint(folder)  # the original is intact
    shutil.copy(folder / "checkpoint.pt", copy / "checkpoint.pt")
    (copy / "model.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"model\.json: corrupt"):
        load_run(copy)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_run(tmp_path / "nowhere")


def test_a_checkpoint_of_unsafe_objects_is_refused(straight, tmp_path):
    folder, _ = straight
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    body = torch.load(copy / "checkpoint.pt", weights_only=True)
    body["config"] = TrainConfig()  # an arbitrary object: weights_only must refuse it
    torch.save(body, copy / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ckpt.load_checkpoint(copy)


def test_a_crash_while_writing_leaves_the_previous_checkpoint(straight, tmp_path, monkeypatch):
    folder, _ = straight
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    good = (copy / "checkpoint.pt").read_bytes()
    payload = ckpt.load_checkpoint(copy)

    def half_written(obj, handle):
        handle.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(copy, {k: v for k, v in payload.items() if k != "format"})
    assert (copy / "checkpoint.pt").read_bytes() == good
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == []


def test_rng_state_round_trip(tmp_path):
    import random

    import numpy as np

    generator = torch.Generator().manual_seed(5)
    state = ckpt.rng_state(generator)
    torch.save(state, tmp_path / "rng.pt")
    state = torch.load(tmp_path / "rng.pt", weights_only=True)
    first = (torch.rand(2), torch.rand(2, generator=generator), random.random(), np.random.rand())
    ckpt.set_rng_state(state, generator)
    again = (torch.rand(2), torch.rand(2, generator=generator), random.random(), np.random.rand())
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert first[2:] == again[2:]


#: How far a resumed format-1 run may end from today's uninterrupted run. The fixture's first
#: 12 steps ran on another CPU, whose float32 kernels round differently in the last bit
#: (relative 6e-8 an operation); on one such CPU the two runs ended 1e-7 to 2e-6 apart, and a
#: state perturbed by 1e-6 relative (ten times such rounding) ends 1.4e-5 from the unperturbed
#: one. One step fewer moves every tensor of this run by 4e-3 or more, 100 times the
#: tolerance: a resume that skipped, repeated or reset anything falls outside it (the control
#: below shows it).
LEGACY_TOLERANCE = {"rtol": 1e-4, "atol": 4e-5}


def assert_close_params(a, b, **tolerance):
    """As :func:`assert_same_params`, floats within ``tolerance`` (exact integers and keys)."""
    if isinstance(a, torch.Tensor):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, **tolerance)
        else:
            assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for name in a:
            assert_close_params(a[name], b[name], **tolerance)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_close_params(x, y, **tolerance)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=tolerance["rtol"], abs=tolerance["atol"])
    else:
        assert a == b


def _legacy_settings():
    import sys
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    sys.path.insert(0, str(fixtures))
    try:
        from make_legacy_run import LEGACY_STEPS, settings
    finally:
        sys.path.remove(str(fixtures))
    return fixtures / "legacy_run", LEGACY_STEPS, settings


def _train_legacy_world(settings, steps, out_dir, resume=False):
    data, config_, model = settings(steps)
    sizes = {"tasks": data["tasks"], "langs": data["langs"], "num_classes": data["num_classes"]}
    return train(data["train"], data["dev"], config_, model=model, **sizes, out_dir=out_dir,
                 resume=resume)  # fmt: skip


def _perturbed(tensors, generator):
    """Every float tensor times (1 + 1e-6 · noise): another CPU's rounding, and more."""
    out = {}
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            noise = torch.randn(value.shape, generator=generator, dtype=value.dtype)
            out[name] = value * (1 + 1e-6 * noise)
        elif isinstance(value, dict):
            out[name] = _perturbed(value, generator)
        else:
            out[name] = value
    return out


def test_a_format_1_run_loads_and_resumes_to_todays_run(tmp_path):
    """A run folder written while parameters lived in Pyro's global store (checkpoint format
    1, by store name, one optimiser per tensor; tests/fixtures/make_legacy_run.py) loads for
    prediction, and resumed it ends where an uninterrupted run of today's code ends, within
    :data:`LEGACY_TOLERANCE`: the fixture was made on another CPU, so bit-exactness cannot be
    promised (same-machine resumes are exact, tested above). Its hypernetwork is
    task-blocked, so the check covers tensors that a step does not touch."""
    fixture, legacy_steps, settings = _legacy_settings()
    legacy = tmp_path / "legacy"
    shutil.copytree(fixture, legacy)
    body = ckpt.load_checkpoint(legacy)
    assert body["format_version"] == 1 and body["step"] == legacy_steps
    assert "hypernet.mean$$$1.weight" in body["params"]

    factorization, guide, meta = load_run(legacy)  # a format-1 run loads for prediction
    assert meta["step"] == legacy_steps
    best = body["best_params"] or body["params"]
    assert torch.equal(guide.l_loc_unconstrained, best["guide.l_loc"])
    assert torch.equal(factorization.hypernet.mean[1].weight, best["hypernet.mean$$$1.weight"])

    # The fixture's step-12 state is today's step-12 state, read through the old names.
    _train_legacy_world(settings, legacy_steps, tmp_path / "twelve")
    twelve = ckpt.load_checkpoint(tmp_path / "twelve")
    saved = ckpt.saved_params(body, "params", twelve["params"], str(legacy))
    assert_close_params(twelve["params"], saved, **LEGACY_TOLERANCE)

    resumed = _train_legacy_world(settings, 2 * legacy_steps, legacy, resume=True)
    straight = _train_legacy_world(settings, 2 * legacy_steps, tmp_path / "straight")
    a, b = ckpt.load_checkpoint(tmp_path / "straight"), ckpt.load_checkpoint(legacy)
    assert b["format_version"] == 2 and a["step"] == b["step"] == 2 * legacy_steps
    assert_close_params(a["params"], b["params"], **LEGACY_TOLERANCE)
    assert_close_params(a["best_params"], b["best_params"], **LEGACY_TOLERANCE)
    assert_close_params(a["optimizer"], b["optimizer"], **LEGACY_TOLERANCE)
    assert [r["step"] for r in resumed.history] == [r["step"] for r in straight.history]
    assert_close_params(resumed.history, straight.history, **LEGACY_TOLERANCE)

    # Control: one step fewer is far outside the tolerance, so the check can fail.
    _train_legacy_world(settings, 2 * legacy_steps - 1, tmp_path / "short")
    short = ckpt.load_checkpoint(tmp_path / "short")
    with pytest.raises(AssertionError):
        assert_close_params(a["params"], short["params"], **LEGACY_TOLERANCE)


def test_the_legacy_tolerance_holds_another_cpus_rounding(tmp_path):
    """The fixture's state with every float perturbed by 1e-6 relative (more than a CPU's
    rounding differences) still resumes within :data:`LEGACY_TOLERANCE` of the unperturbed
    resume, so the tolerance is not tuned to this machine's arithmetic."""
    fixture, legacy_steps, settings = _legacy_settings()
    plain, noisy = tmp_path / "plain", tmp_path / "noisy"
    shutil.copytree(fixture, plain)
    shutil.copytree(fixture, noisy)
    body = ckpt.load_checkpoint(noisy)
    generator = torch.Generator().manual_seed(0)
    for key in ("params", "best_params", "optimizer"):
        if isinstance(body.get(key), dict):
            body[key] = _perturbed(body[key], generator)
    torch.save(body, noisy / ckpt.CHECKPOINT_NAME)
    before = ckpt.load_checkpoint(plain)["params"]
    assert not torch.equal(ckpt.load_checkpoint(noisy)["params"]["guide.l_loc"],
                           before["guide.l_loc"])  # fmt: skip
    _train_legacy_world(settings, 2 * legacy_steps, plain, resume=True)
    _train_legacy_world(settings, 2 * legacy_steps, noisy, resume=True)
    a, b = ckpt.load_checkpoint(plain), ckpt.load_checkpoint(noisy)
    assert a["step"] == b["step"] == 2 * legacy_steps
    assert_close_params(a["params"], b["params"], **LEGACY_TOLERANCE)
    assert_close_params(a["optimizer"], b["optimizer"], **LEGACY_TOLERANCE)

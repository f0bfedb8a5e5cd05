"""Data-parallel runs that survive a kill (issue 25): Lightning checkpoints every N steps,
written atomically by rank 0 and the newest K kept; a 2-process CPU (gloo) run killed with
SIGKILL (a worker rank, or the launcher, rank 0) and resumed ends bit for bit where the
uninterrupted run ends; 2 nodes × 1 process on localhost is the same run; a checkpoint
resumes only on as many processes as wrote it, and the refusals say why.

The runs are ``python -m pfpyro.testing.ddp_job`` (Lightning starts it again for each worker):
the world and model of tests/test_distributed.py, 40 steps, a checkpoint every 10. Each rank
kills itself at the end of a given step, so the kill needs no timing. Bit-exactness holds on
two processes: each gradient element is averaged by one addition, which is commutative.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pfpyro.config import (
    ModelConfig,
    OptimConfig,
    TrainConfig,
    check_model_sections,
    config_from_dict,
)
from pfpyro.errors import CheckpointError, ConfigError
from pfpyro.infer import train
from pfpyro.infer.checkpoint import LIGHTNING_DIR, lightning_checkpoints
from pfpyro.infer.distributed import (
    AtomicCheckpointIO,
    StepDraws,
    StepLoader,
    resumable_checkpoint,
    train_distributed,
)
from pfpyro.infer.trainer import config_changes
from pfpyro.testing.ddp_job import HELDOUT
from pfpyro.testing.synthetic import make_world

ROOT = Path(__file__).resolve().parents[1]
STEPS, EVERY = 40, 10


def job(out: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a ddp_job run in a session of its own (so that what it starts can be waited for
    and, at worst, cleaned up as one group)."""
    command = [
        sys.executable,
        "-m",
        "pfpyro.testing.ddp_job",
        "--out",
        str(out),
        "--steps",
        str(STEPS),
        "--checkpoint-every",
        str(EVERY),
        *args,
    ]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    environment.update(env or {})
    return subprocess.Popen(
        command,
        env=environment,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    """Wait for ``process`` and for every process of its session (a killed launcher's
    worker must exit on its own, its peer gone); (exit code, output)."""
    output, _ = process.communicate(timeout=timeout)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            os.killpg(process.pid, 0)  # raises once the group is empty
            time.sleep(0.5)
        pytest.fail("a worker outlived its run by a minute")
    except ProcessLookupError:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):  # only after a failure: else none left
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, output


def run_job(out: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    return finish(job(out, *args, env=env))


def result(out: Path) -> dict:
    return torch.load(out / "result.pt", weights_only=True)


def assert_same_run(ours: dict, theirs: dict) -> None:
    assert ours["params"].keys() == theirs["params"].keys()
    for name, value in ours["params"].items():
        assert torch.equal(value, theirs["params"][name]), name
    assert torch.equal(ours["probs"], theirs["probs"])  # the held-out pair's predictions


def steps_of(out: Path) -> list[int]:
    return [int(p.stem.removeprefix("step")) for p in lightning_checkpoints(out)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("whole") / "run"
    code, output = run_job(out)
    assert code == 0, output[-3000:]
    assert steps_of(out) == [30, 40]  # every 10 steps, the newest 2 kept
    return result(out)


# -- fast: the pieces ---------------------------------------------------------------------
def small_model() -> ModelConfig:
    return ModelConfig(latent_dim=2, hypernet={"name": "shared", "hidden_dims": [5]})


def world_data():
    world = make_world(2, 3, num_classes=3, feature_dim=4, sentences=(30, 10, 10), length=6, seed=5)
    seen = [p for p in world.pairs() if p != HELDOUT]
    return world, {p: world.train[p] for p in seen}, {p: world.dev[p] for p in seen}


def test_the_loader_goes_on_from_its_saved_state() -> None:
    _, train_data, _ = world_data()
    config = TrainConfig(batch_size=6, max_steps=12)
    draws = StepDraws(train_data, config, 12)
    whole = list(StepLoader(draws, 12, world=1))
    assert [step for step, _, _ in whole] == list(range(12))
    loader = StepLoader(draws, 12, world=1)
    loader.consumed = 7  # what training had taken when the checkpoint was written
    again = StepLoader(draws, 12, world=1)
    again.load_state_dict(loader.state_dict())
    rest = list(again)
    assert [step for step, _, _ in rest] == list(range(7, 12))
    for (_, p, a), (_, q, b) in zip(whole[7:], rest, strict=True):
        assert p == q and torch.equal(a.labels, b.labels)
    with pytest.raises(CheckpointError, match="for 2 processes, not 1"):
        StepLoader(draws, 12, world=1).load_state_dict({"step": 3, "world": 2})


def test_a_failed_checkpoint_write_leaves_the_previous_one(tmp_path, monkeypatch) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "step000010.ckpt"
    io.save_checkpoint({"pfpyro": {"world": 2}, "x": torch.arange(3)}, path)

    def dies_halfway(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")
        raise KeyboardInterrupt  # what a signal mid-write raises

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"pfpyro": {"world": 2}, "x": torch.arange(5)}, path)
    monkeypatch.undo()
    assert torch.equal(io.load_checkpoint(path)["x"], torch.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step000010.ckpt"]  # no temporary


def test_checkpoint_settings_are_validated_and_old_configs_still_load() -> None:
    with pytest.raises(ConfigError, match=r"checkpoint_every must be a step count >= 0"):
        TrainConfig(checkpoint_every=-5).validate()
    with pytest.raises(ConfigError, match="keep_checkpoints must be at least 1, got 0"):
        TrainConfig(keep_checkpoints=0).validate()
    with pytest.raises(ConfigError, match=r"train\.checkpoint_every: expected int"):
        check_model_sections(config_from_dict({"train": {"checkpoint_every": "ten"}}), "my.yaml")
    old = TrainConfig().to_dict()  # a run recorded before these settings existed
    del old["checkpoint_every"], old["keep_checkpoints"]
    assert TrainConfig.from_dict(old).checkpoint_every is None
    assert TrainConfig.from_dict(old).keep_checkpoints == 2
    # changing how often checkpoints are written does not stop a resume
    assert config_changes(TrainConfig(checkpoint_every=5, keep_checkpoints=4), old) == []
    assert config_changes(TrainConfig(batch_size=8), old) == ["batch_size (checkpoint 32, now 8)"]


def test_a_single_process_run_folder_is_not_resumed_data_parallel(tmp_path) -> None:
    world, train_data, dev = world_data()
    config = TrainConfig(batch_size=6, max_steps=4, eval_every=2, progress=False)
    model = small_model()
    train(train_data, dev, config, model=model, num_classes=world.num_classes, out_dir=tmp_path)
    with pytest.raises(CheckpointError, match="written by a single-process run: resume it "):
        train_distributed(
            train_data,
            dev,
            config,
            num_classes=world.num_classes,
            model=model,
            out_dir=tmp_path,
            resume=True,
            accelerator="cpu",
        )
    assert not (tmp_path / LIGHTNING_DIR).exists()  # refused before any process started


# -- slow: killed, resumed, on several processes and nodes -----------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("rank", "step"),
    [(1, 27), (0, 30)],  # a worker between checkpoints; the launcher just before one
    ids=["worker", "launcher"],
)
def test_a_killed_run_resumes_to_the_uninterrupted_end(uninterrupted, tmp_path, rank, step):
    out = tmp_path / "run"
    code, output = run_job(out, "--die-at", str(step), "--die-rank", str(rank))
    assert code != 0 and not (out / "result.pt").exists(), output[-3000:]
    assert steps_of(out) == [10, 20]  # the kill came before step 30's checkpoint
    code, output = run_job(out, "--resume")
    assert code == 0, output[-3000:]
    assert "Restored all states from the checkpoint" in output and "step000020" in output
    assert_same_run(result(out), uninterrupted)
    assert steps_of(out) == [30, 40]  # the newest 2, the killed attempt's older ones gone


@pytest.mark.slow
def test_two_nodes_of_one_process_are_the_same_run(uninterrupted, tmp_path) -> None:
    with socket.socket() as probe:  # a free port for the two nodes to meet on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    common = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2"}
    nodes = ["--devices", "1", "--num-nodes", "2"]
    second = job(out, *nodes, env={**common, "NODE_RANK": "1"})
    code, output = run_job(out, *nodes, env={**common, "NODE_RANK": "0"})
    second_code, second_output = finish(second)
    assert code == 0 and second_code == 0, (output[-2000:], second_output[-2000:])
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in second_output
    assert_same_run(result(out), uninterrupted)


@pytest.mark.slow
def test_a_checkpoint_resumes_only_on_as_many_processes(tmp_path) -> None:
    world, train_data, dev = world_data()
    sizes = {p: len(t) for p, t in train_data.items()}
    config = TrainConfig(
        batch_size=6,
        max_steps=STEPS,
        eval_every=STEPS,
        checkpoint_every=EVERY,
        progress=False,
        optim=OptimConfig(lr=0.05),
    )
    two, one = tmp_path / "two", tmp_path / "one"
    (code, _), (code_one, _) = (
        run_job(two, "--die-at", "15"),
        run_job(one, "--devices", "1", "--die-at", "15", "--die-rank", "0"),
    )
    assert code != 0 and code_one != 0 and steps_of(two) == steps_of(one) == [10]
    with pytest.raises(
        CheckpointError,
        match=r"written by 2 processes, this run has 1 .*"
        r"resume with 2",
    ):
        resumable_checkpoint(two, True, config, 1, sizes)
    with pytest.raises(CheckpointError, match="written by 1 processes, this run has 2"):
        resumable_checkpoint(one, True, config, 2, sizes)
    with pytest.raises(CheckpointError, match=r"data-parallel run's checkpoints \(2 processes\)"):
        train(
            train_data,
            dev,
            config,
            num_classes=world.num_classes,
            out_dir=two,
            resume=True,
            model=small_model(),
        )
    with pytest.raises(ConfigError, match="already holds a data-parallel run's checkpoints"):
        resumable_checkpoint(two, False, config, 2, sizes)
    other = dataclasses.replace(config, batch_size=8)
    with pytest.raises(ConfigError, match=r"config differs in batch_size \(checkpoint 6, now 8"):
        resumable_checkpoint(two, True, other, 2, sizes)
    assert resumable_checkpoint(two, True, config, 2, sizes) == two / LIGHTNING_DIR / (
        "step000010.ckpt"
    )


def test_a_single_process_run_also_checkpoints_every_n_steps(tmp_path, monkeypatch) -> None:
    import pfpyro.infer.trainer as trainer_module

    world, train_data, dev = world_data()
    written: list[int] = []
    save = trainer_module.save_checkpoint

    def counted(out_dir, payload):
        written.append(payload["step"])
        return save(out_dir, payload)

    monkeypatch.setattr(trainer_module, "save_checkpoint", counted)
    for every, run in ((3, "every3"), (None, "default")):
        config = TrainConfig(
            batch_size=6, max_steps=7, eval_every=5, checkpoint_every=every, progress=False
        )
        written.clear()
        train(train_data, dev, config, model=small_model(), num_classes=world.num_classes,
              out_dir=tmp_path / run)  # fmt: skip
        expected = [3, 5, 6, 7, 7] if every else [5, 7, 7]  # evaluations, and the end
        assert written == expected, (every, written)

"""One small data-parallel run on a synthetic world, as a command that Lightning can start
again for each of its processes (``python -m pfpyro.testing.ddp_job ...``): what
tests/test_distributed_resume.py kills and resumes, and what experiments/bench/ddp.py times.

Every process draws the same world (``make_world``, seeded) and trains
:func:`pfpyro.infer.distributed.train_distributed` on its seen pairs. Rank 0 then writes
``OUT/result.pt``: every parameter (by module path) and the plug-in predictions on the
held-out pair's test sentences. ``--die-at K --die-rank R`` makes rank R kill itself with
SIGKILL at the end of step K (before that step's checkpoint, if any, is written): a kill at
a known step, without timing. ``--timing FILE`` makes rank 0 write the steps after
``--warmup`` and their seconds there (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import lightning
import torch

from pfpyro.config import ModelConfig, OptimConfig, TrainConfig
from pfpyro.infer.checkpoint import named_params, snapshot
from pfpyro.infer.distributed import train_distributed
from pfpyro.infer.predict import PFPredictor
from pfpyro.testing.synthetic import make_world

#: The pair held out of training, whose test predictions a run writes.
HELDOUT = ("task0", "lang2")


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--devices", type=int, default=2, help="processes per node")
    parser.add_argument("--num-nodes", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40, help="train.max_steps")
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--keep-checkpoints", type=int, default=2)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--die-at", type=int, help="step at whose end a rank kills itself")
    parser.add_argument("--die-rank", type=int, default=1, help="the rank that dies")
    parser.add_argument("--sentences", type=int, default=30, help="training sentences per pair")
    parser.add_argument("--length", type=int, default=6, help="words per sentence")
    parser.add_argument("--feature-dim", type=int, default=4, help="e")
    parser.add_argument("--hidden", type=int, default=5, help="the hypernetwork's hidden width")
    parser.add_argument("--latent-dim", type=int, default=2, help="h")
    parser.add_argument("--batch-size", type=int, default=6)
    parser.add_argument("--lr", type=float, default=0.05, help="optim.lr")
    parser.add_argument("--timing", type=Path, help="rank 0 writes its step timing here")
    parser.add_argument("--warmup", type=int, default=5, help="steps not timed")
    return parser


class Die(lightning.Callback):
    """Rank ``rank`` sends itself SIGKILL at the end of step ``step``."""

    def __init__(self, step: int, rank: int) -> None:
        self.step, self.rank = step, rank

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step and trainer.global_rank == self.rank:
            os.kill(os.getpid(), signal.SIGKILL)


class StepTimer(lightning.Callback):
    """Rank 0's wall time from the end of step ``warmup`` to the end of training, and the
    steps in between, written to ``path`` as JSON."""

    def __init__(self, path: Path, warmup: int) -> None:
        self.path, self.warmup = path, warmup
        self.started: float | None = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self.started = time.perf_counter()

    def on_train_end(self, trainer, module) -> None:
        if trainer.global_rank == 0 and self.started is not None:
            record = {
                "steps": trainer.global_step - self.warmup,
                "seconds": time.perf_counter() - self.started,
                "world": trainer.world_size,
            }
            self.path.write_text(json.dumps(record), encoding="utf-8")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The run of ``args``; rank 0's result record (parameters, held-out predictions). One
    torch thread per process: without OMP_NUM_THREADS Lightning sets cores / processes,
    which gave the 1-process run 2 threads on a busy 2-core machine and made its steps over
    ten times slower than the 2-process run's (measured: 0.6 s against 0.05 s)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    sentences = (args.sentences, 10, 10)
    world = make_world(2, 3, num_classes=3, feature_dim=args.feature_dim, sentences=sentences,
                       length=args.length, seed=5)  # fmt: skip
    seen = [p for p in world.pairs() if p != HELDOUT]
    config = TrainConfig(
        batch_size=args.batch_size,
        max_steps=args.steps,
        eval_every=args.steps,
        checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints,
        progress=False,
        optim=OptimConfig(lr=args.lr),
    )
    model = ModelConfig(
        latent_dim=args.latent_dim, hypernet={"name": "shared", "hidden_dims": [args.hidden]}
    )
    callbacks: list[lightning.Callback] = []
    if args.die_at is not None:
        callbacks.append(Die(args.die_at, args.die_rank))
    if args.timing is not None:
        callbacks.append(StepTimer(args.timing, args.warmup))
    result = train_distributed(
        {p: world.train[p] for p in seen},
        {p: world.dev[p] for p in seen},
        config,
        model=model,
        tasks=world.tasks,
        langs=world.langs,
        num_classes=world.num_classes,
        devices=args.devices,
        num_nodes=args.num_nodes,
        strategy="ddp",
        accelerator="cpu",
        out_dir=args.out,
        resume=args.resume,
        callbacks=callbacks,
    )
    test = world.test[HELDOUT]
    probs = PFPredictor(result.factorization, result.guide).predict_proba(
        *HELDOUT, test.inputs, test.mask
    )
    return {"params": snapshot(named_params(result.factorization, result.guide)), "probs": probs}


def global_rank(devices: int) -> int:
    """This process's rank, from the variables Lightning's launcher (or the user) set."""
    local = int(os.environ.get("LOCAL_RANK", 0))
    return int(os.environ.get("NODE_RANK", 0)) * devices + local


def main(argv: list[str] | None = None) -> int:
    args = build_argparse().parse_args(argv)
    record = run(args)
    if global_rank(args.devices) == 0:
        torch.save(record, args.out / "result.pt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

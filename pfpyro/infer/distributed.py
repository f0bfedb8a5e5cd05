"""Data-parallel SVI on many devices with PyTorch Lightning (``pfpyro train --devices N``).

The pattern of Pyro's own ``examples/svi_lightning.py``: parameters live in the modules
(:mod:`pfpyro.model` sets ``module_local_params``), a :class:`SVIModule` holds the model and
guide, its ``training_step`` returns the ELBO's differentiable loss, and Lightning's
distributed strategy (``ddp``; ``gloo`` on CPUs, ``nccl`` on GPUs) averages the gradients of
the R processes before every optimiser step. Each process draws its own pair and mini-batch
(:class:`StepDraws`: draw k of one seeded sequence goes to rank k mod R), so one step's
objective is the mean of R single-pair estimates of ELBO / P, unbiased as in
:mod:`pfpyro.infer.trainer`, with R times the work of a step. The optimiser and its parameter
groups are the single-process trainer's.

Resuming is Lightning's own: a :class:`~lightning.pytorch.callbacks.ModelCheckpoint` on rank 0
writes ``RUN/lightning/step<k>.ckpt`` every ``train.checkpoint_every`` steps (atomically,
:class:`AtomicCheckpointIO`; the newest ``train.keep_checkpoints`` kept) and ``trainer.fit(...,
ckpt_path=...)`` restores it: the parameters, the optimiser's state, the loops, the data order
(:class:`StepLoader`, a resumable loader) and every rank's random states (:class:`SVIModule`'s
``pfpyro`` record). On two processes each gradient element is averaged by one (commutative)
addition, so a resumed run ends bit for bit where the uninterrupted one ends
(tests/test_distributed_resume.py); on more, the order of the all-reduce's sums follows
DDP's gradient buckets, which it rebuilds after a resumed run's first step, so the two may
differ by float rounding. A checkpoint resumes on as many processes as wrote it (each rank's
random state and share of the draws belong to it); any other count is refused.

What it does not do (yet): early stopping and the selection of the step count (the run takes
``max_steps`` steps), several pairs per process step, and ``model.init: jm``. The dev score
of the result is computed once, at the end. :class:`RankAgreement` checks, every
``check_every`` steps, that the parameters are the same on every rank.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

try:
    import lightning
except ImportError as _missing:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "training on several devices needs Lightning: pip install 'pyro-ppl[lightning]' "
        "(or pip install lightning)"
    ) from _missing

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

import pfpyro
from pfpyro.atomic import atomic_write
from pfpyro.config import DDP_STRATEGIES
from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair, pair_name
from pfpyro.errors import CheckpointError, ConfigError
from pfpyro.infer.checkpoint import (
    CHECKPOINT_NAME,
    LIGHTNING_DIR,
    lightning_checkpoints,
    load_checkpoint,
    load_lightning_checkpoint,
    load_model_json,
    named_params,
    rng_state,
    safe_load,
    save_checkpoint,
    save_model_json,
    set_rng_state,
)
from pfpyro.infer.trainer import (
    Scorer,
    TrainResult,
    accuracy_scorer,
    build_model,
    check_data,
    check_same_model,
    checkpoint_payload,
    config_changes,
    describe,
    evaluate_plugin,
    make_elbo,
    make_optimizer,
    pair_arguments,
    pair_probabilities,
    step_weights,
)


class StepDraws(torch.utils.data.Dataset):
    """The mini-batches of a run: item k is (pair index, the pair's batch), drawn from a
    generator seeded by (seed, k), so every rank can make any item and the ranks' items are
    the draws of one sequence (k = step · R + rank under Lightning's distributed sampler)."""

    def __init__(self, train: Mapping[Pair, PairTensors], config: Any, draws: int) -> None:
        self.train = train
        self.pairs = sorted(train)
        self.config = config
        self.draws = draws
        probs = pair_probabilities({p: len(train[p]) for p in self.pairs}, config.pair_sampling)
        self.probs = torch.tensor([probs[p] for p in self.pairs], dtype=torch.float64)

    def __len__(self) -> int:
        return self.draws

    def __getitem__(self, k: int) -> tuple[int, PairTensors]:
        generator = torch.Generator().manual_seed(
            zlib.crc32(f"{self.config.seed}/{k}".encode()) % 2**31
        )
        pair = int(torch.multinomial(self.probs, 1, generator=generator))
        tensors = self.train[self.pairs[pair]]
        index = torch.randperm(len(tensors), generator=generator)[: self.config.batch_size]
        return pair, tensors.batch(index)


class StepLoader:
    """This process's draws in step order: at step s the item s · R + r of :class:`StepDraws`
    (r its rank, R the processes), yielded as (s, pair index, batch), from step ``start`` on.

    A resumable loader in Lightning's sense: its :meth:`state_dict` (the steps whose draws
    training has taken, set by :class:`SVIModule`, not those fetched ahead) goes into every
    checkpoint, and Lightning hands it back to :meth:`load_state_dict` on resume, so the
    resumed run takes the draws of the step after the checkpoint's."""

    def __init__(self, draws: StepDraws, steps: int, world: int) -> None:
        self.draws, self.steps, self.world = draws, steps, world
        self.start = 0
        self.consumed = 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[int, int, PairTensors]]:
        rank, world = process_rank()
        if world != self.world:
            raise RuntimeError(f"the loader was made for {self.world} processes, not {world}")
        for step in range(self.start, self.steps):
            pair, batch = self.draws[step * world + rank]
            yield step, pair, batch

    def state_dict(self) -> dict[str, int]:
        return {"step": self.consumed, "world": self.world}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        if int(state["world"]) != self.world:
            raise CheckpointError(
                f"the checkpoint's draws are for {state['world']} processes, not {self.world}"
            )
        self.start = self.consumed = int(state["step"])


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process in the default process group; (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_objects(value: Any) -> list[Any]:
    """``value`` of every rank, by rank (``all_gather_object``; ``[value]`` in one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


class SVIModule(lightning.LightningModule):
    """The model and guide of one run, trained by Lightning on one pair per step and rank.

    Every checkpoint gets a ``pfpyro`` record beside Lightning's own state (parameters,
    optimiser, loops, the :class:`StepLoader`'s position): the process count, the
    TrainConfig, the pairs' sizes, and every rank's random states (torch, Python, numpy:
    what Pyro draws from), gathered to rank 0, which writes the file. On resume each rank
    puts its own back just before its first step, where the uninterrupted run had them."""

    def __init__(self, factorization, guide, config, pairs, pair_weights, kl_weight, sizes):
        super().__init__()
        self.factorization, self.guide, self.config = factorization, guide, config
        self.pairs, self.sizes = list(pairs), dict(sizes)
        self.pair_weights, self.kl_weight = dict(pair_weights), kl_weight
        self.elbo = make_elbo(config)
        self.loader: StepLoader | None = None
        self.pending_rng: dict[str, Any] | None = None

    def training_step(self, batch: tuple[int, int, PairTensors], batch_idx: int) -> Tensor:
        step, index, data = batch
        if step != self.global_step:
            raise RuntimeError(f"the draws of step {step} came at step {self.global_step}")
        if self.loader is not None:
            self.loader.consumed = step + 1
        if data.labels.device != self.device:
            data = data.to(self.device)
        pair = self.pairs[int(index)]
        args, kwargs = pair_arguments(pair, data, self.sizes, self.pair_weights, self.kl_weight)
        loss = self.elbo.differentiable_loss(self.factorization, self.guide, *args, **kwargs)
        self.log("elbo", -loss.detach(), prog_bar=True, on_step=True, sync_dist=False)
        return loss

    def configure_optimizers(self):
        params = named_params(self.factorization, self.guide)
        return make_optimizer(params, self.config.optim)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["pfpyro"] = {
            "version": pfpyro.__version__,
            "world": self.trainer.world_size,
            "config": self.config.to_dict(),
            "pair_sizes": {pair_name(p): n for p, n in sorted(self.sizes.items())},
            "rng": gather_objects(rng_state()),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.pending_rng = checkpoint["pfpyro"]["rng"][self.trainer.global_rank]

    def on_train_start(self) -> None:
        steps = gather_objects(self.global_step)
        if len(set(steps)) != 1:
            raise RuntimeError(f"the ranks start at different steps {steps}: one checkpoint each")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.pending_rng is not None:
            set_rng_state(self.pending_rng)
            self.pending_rng = None


class PeriodicCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint every ``every`` steps into ``folder`` (``step<k>.ckpt``),
    keeping the newest ``keep`` files there: the older ones are removed (by rank 0) only
    once the new one is written, and files of an earlier, killed attempt count too (a
    resumed ModelCheckpoint knows only those its own checkpoint listed)."""

    def __init__(self, folder: Path, every: int, keep: int) -> None:
        super().__init__(
            dirpath=folder,
            filename="step{step:06d}",
            auto_insert_metric_name=False,
            every_n_train_steps=every,
            save_top_k=-1,
            save_on_train_epoch_end=False,
            enable_version_counter=False,
        )
        self.keep = keep

    def _save_checkpoint(self, trainer: lightning.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        for old in lightning_checkpoints(Path(self.dirpath).parent)[: -self.keep]:
            trainer.strategy.remove_checkpoint(old)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O, written as pfpyro writes its own (:mod:`pfpyro.atomic`: a
    temporary file, fsync, rename, so that a kill mid-write leaves the previous checkpoint
    whole) and read ``weights_only`` (:func:`~pfpyro.infer.checkpoint.safe_load`)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        atomic_write(path, lambda handle: torch.save(checkpoint, handle))

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: Any = None):
        return safe_load(Path(path))  # also ddp_spawn's hand-over of the weights


class RankAgreement(lightning.Callback):
    """Every ``check_every`` steps: a digest of all parameters, gathered from every rank,
    must be the same everywhere (else RuntimeError); the digests are kept in ``digests``
    and, with ``folder``, written to ``rank<r>.json`` there at the end."""

    def __init__(self, check_every: int = 1, folder: Path | None = None) -> None:
        self.check_every = check_every
        self.folder = folder
        self.digests: list[str] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.check_every:
            return
        digest = parameter_digest(module)
        code = torch.tensor([int(digest[:15], 16)], dtype=torch.int64)
        gathered = trainer.strategy.all_gather(code).reshape(-1)
        if len(set(gathered.tolist())) != 1:
            raise RuntimeError(f"step {step}: the ranks' parameters differ")
        self.digests.append(digest)

    def on_train_end(self, trainer, module) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"rank{trainer.global_rank}.json"
            path.write_text(json.dumps(self.digests), encoding="utf-8")


def parameter_digest(module: torch.nn.Module) -> str:
    """sha256 over every parameter's bytes, in name order."""
    digest = hashlib.sha256()
    for name, value in sorted(module.named_parameters(), key=lambda item: item[0]):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_distributed(
    train: Mapping[Pair, PairTensors],
    dev: Mapping[Pair, PairTensors],
    config: Any,
    *,
    devices: int = 2,
    strategy: str = "ddp",
    accelerator: str = "auto",
    num_nodes: int = 1,
    model: Any = None,
    tasks: Sequence[str] | None = None,
    langs: Sequence[str] | None = None,
    num_classes: Mapping[str, int] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    scorer: Scorer = accuracy_scorer,
    encoder_top: torch.nn.Module | None = None,
    check_every: int = 0,
    ranks_dir: str | Path | None = None,
    callbacks: Sequence[lightning.Callback] = (),
) -> TrainResult:
    """:func:`pfpyro.infer.train` on ``devices`` × ``num_nodes`` processes with Lightning's
    ``strategy`` (see the module notes): ``max_steps`` steps, each of one pair per process.

    The result (rank 0's, which every rank shares) is returned, scored on ``dev`` once, and
    with ``out_dir`` written there as a run folder that ``pfpyro predict`` and
    :func:`~pfpyro.infer.load_run` read. With ``out_dir`` rank 0 also writes a Lightning
    checkpoint every ``config.checkpoint_every`` steps (None: ``eval_every``; 0: none) to
    ``out_dir/lightning``, keeping the newest ``keep_checkpoints``; ``resume=True`` goes on
    from the newest one (and starts afresh when there is none), ending exactly where the
    uninterrupted run ends, on as many processes as wrote it. ``check_every`` > 0 checks
    that the ranks agree every that many steps (:class:`RankAgreement`; digests written to
    ``ranks_dir``); ``callbacks`` are more Lightning callbacks.
    """
    config.validate()
    if strategy not in DDP_STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(DDP_STRATEGIES)}, got {strategy!r}")
    if devices < 1 or num_nodes < 1:
        raise ConfigError(f"devices and num_nodes must be positive, got {devices}, {num_nodes}")
    if config.pairs_per_step > 1:
        raise ConfigError("several devices take one pair per device and step (pairs_per_step 1)")
    task_list, lang_list, classes, feature_dim = check_data(
        train, dev, tasks, langs, num_classes, "seen"
    )
    world = devices * num_nodes
    sizes = {pair: len(train[pair]) for pair in sorted(train)}
    run_dir = Path(out_dir) if out_dir is not None else None
    resume_from = resumable_checkpoint(run_dir, resume, config, world, sizes)
    previous = load_model_json(run_dir) if resume_from is not None else None
    description = describe(
        model, train, task_list, lang_list, classes, feature_dim, previous, encoder_top
    )
    check_same_model(previous, description, run_dir)
    if run_dir is not None:  # every process: the same file, written atomically
        save_model_json(run_dir, description)
    # every rank builds the same initial parameters
    factorization, guide = build_model(description, config.seed, encoder_top)
    pair_weights, kl_weight = step_weights(sizes, config.pair_sampling, config.kl_beta)
    module = SVIModule(factorization, guide, config, sorted(train), pair_weights, kl_weight, sizes)
    draws = StepDraws(train, config, config.max_steps * world)
    module.loader = StepLoader(draws, config.max_steps, world)
    callbacks = list(callbacks)
    if check_every:
        callbacks.append(RankAgreement(check_every, Path(ranks_dir) if ranks_dir else None))
    every = config.eval_every if config.checkpoint_every is None else config.checkpoint_every
    if run_dir is not None and every:
        callbacks.append(
            PeriodicCheckpoint(run_dir / LIGHTNING_DIR, every, config.keep_checkpoints)
        )
    chosen: Any = strategy
    if strategy.startswith("ddp"):
        from lightning.pytorch.strategies import DDPStrategy

        backend = "gloo" if accelerator == "cpu" or not torch.cuda.is_available() else None
        chosen = DDPStrategy(
            start_method="spawn" if strategy == "ddp_spawn" else "popen",
            process_group_backend=backend,
            find_unused_parameters=True,  # a task-blocked hypernetwork leaves blocks unused
            checkpoint_io=AtomicCheckpointIO(),
        )
    trainer = lightning.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=chosen,
        max_steps=config.max_steps,
        max_epochs=-1,
        logger=False,
        default_root_dir=run_dir / LIGHTNING_DIR if run_dir is not None else None,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        callbacks=callbacks,
        use_distributed_sampler=False,  # the StepLoader gives each rank its draws
    )
    trainer.fit(module, module.loader, ckpt_path=resume_from)
    factorization, guide = module.factorization.cpu(), module.guide.cpu()
    scores = evaluate_plugin(factorization, guide, dev, scorer=scorer) if dev else {}
    score = sum(scores.values()) / len(scores) if scores else None
    history = [
        {
            "kind": "eval",
            "step": config.max_steps,
            "dev_score": score,
            "dev": {pair_name(p): s for p, s in scores.items()},
            "devices": world,
        }
    ]
    if run_dir is not None and trainer.is_global_zero:
        params = named_params(factorization, guide)
        payload = checkpoint_payload(
            step=config.max_steps,
            params=params,
            best_params=None,
            optimizer={},
            rng=None,
            config=config,
            history=history,
            state={"best_step": config.max_steps, "best_score": score, "devices": world},
        )
        save_checkpoint(run_dir, payload)
    return TrainResult(factorization, guide, history, config.max_steps, score)


def resumable_checkpoint(
    run_dir: Path | None, resume: bool, config: Any, world: int, sizes: Mapping[Pair, int]
) -> Path | None:
    """The Lightning checkpoint a run in ``run_dir`` goes on from: the newest, when
    ``resume``, after checking that it was written by ``world`` processes with this config
    and these pairs (else a one-line CheckpointError or ConfigError that says why); None for
    a fresh start. A folder of a single-process run, or one with checkpoints and no
    ``resume``, is refused."""
    if run_dir is None:
        return None
    found = lightning_checkpoints(run_dir)
    final = run_dir / CHECKPOINT_NAME
    if final.is_file() and not load_checkpoint(run_dir)["state"].get("devices"):
        raise CheckpointError(
            f"{final} was written by a single-process run: resume it without --devices (its "
            "data generator and random state belong to one process)"
        )
    if (found or final.is_file()) and not resume:
        raise ConfigError(
            f"{run_dir} already holds a data-parallel run's checkpoints; resume it or choose "
            "another folder"
        )
    if not (found and resume):
        return None
    path = found[-1]
    record = load_lightning_checkpoint(path)["pfpyro"]
    if int(record["world"]) != world:
        raise CheckpointError(
            f"{path} was written by {record['world']} processes, this run has {world} "
            f"(--devices × --num-nodes): each process's random state and share of the draws "
            f"belong to it; resume with {record['world']}"
        )
    changed = config_changes(config, record["config"])
    if changed:
        raise ConfigError(f"cannot resume {path}: the config differs in " + "; ".join(changed))
    if record["pair_sizes"] != {pair_name(p): n for p, n in sorted(sizes.items())}:
        raise ConfigError(f"cannot resume {path}: the training pairs or their sizes differ")
    return path


__all__ = [
    "AtomicCheckpointIO",
    "PeriodicCheckpoint",
    "RankAgreement",
    "SVIModule",
    "StepDraws",
    "StepLoader",
    "parameter_digest",
    "resumable_checkpoint",
    "train_distributed",
]

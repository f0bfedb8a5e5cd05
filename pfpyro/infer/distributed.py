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

What it does not do (yet): early stopping and the selection of the step count (the run takes
``max_steps`` steps), several pairs per process step, and resuming. The dev score of the
result is computed once, at the end. :class:`RankAgreement` checks, every ``check_every``
steps, that the parameters are the same on every rank.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
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

from pfpyro.config import DDP_STRATEGIES
from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair, pair_name
from pfpyro.errors import ConfigError
from pfpyro.infer.checkpoint import named_params, save_checkpoint, save_model_json
from pfpyro.infer.trainer import (
    Scorer,
    TrainResult,
    accuracy_scorer,
    build_model,
    check_data,
    checkpoint_payload,
    describe,
    evaluate_plugin,
    make_elbo,
    pair_arguments,
    pair_probabilities,
    param_groups,
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


class SVIModule(lightning.LightningModule):
    """The model and guide of one run, trained by Lightning on one pair per step and rank."""

    def __init__(self, factorization, guide, config, pairs, pair_weights, kl_weight, sizes):
        super().__init__()
        self.factorization, self.guide, self.config = factorization, guide, config
        self.pairs, self.sizes = list(pairs), dict(sizes)
        self.pair_weights, self.kl_weight = dict(pair_weights), kl_weight
        self.elbo = make_elbo(config)

    def training_step(self, batch: tuple[Tensor, PairTensors], batch_idx: int) -> Tensor:
        index, data = batch
        pair = self.pairs[int(index)]
        args, kwargs = pair_arguments(pair, data, self.sizes, self.pair_weights, self.kl_weight)
        loss = self.elbo.differentiable_loss(self.factorization, self.guide, *args, **kwargs)
        self.log("elbo", -loss.detach(), prog_bar=True, on_step=True, sync_dist=False)
        return loss

    def configure_optimizers(self):
        from pyro.optim.clipped_adam import ClippedAdam

        params = named_params(self.factorization, self.guide)
        return ClippedAdam(param_groups(params, self.config.optim))


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
    scorer: Scorer = accuracy_scorer,
    encoder_top: torch.nn.Module | None = None,
    check_every: int = 0,
    ranks_dir: str | Path | None = None,
) -> TrainResult:
    """:func:`pfpyro.infer.train` on ``devices`` × ``num_nodes`` processes with Lightning's
    ``strategy`` (see the module notes): ``max_steps`` steps, each of one pair per process.

    The result (rank 0's, which every rank shares) is returned, scored on ``dev`` once, and
    with ``out_dir`` written there as a run folder that ``pfpyro predict`` and
    :func:`~pfpyro.infer.load_run` read (it cannot be resumed). ``check_every`` > 0 checks
    that the ranks agree every that many steps (:class:`RankAgreement`; digests written to
    ``ranks_dir``).
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
    description = describe(
        model, train, task_list, lang_list, classes, feature_dim, encoder_top=encoder_top
    )
    # every rank builds the same initial parameters
    factorization, guide = build_model(description, config.seed, encoder_top)
    sizes = {pair: len(train[pair]) for pair in sorted(train)}
    pair_weights, kl_weight = step_weights(sizes, config.pair_sampling, config.kl_beta)
    module = SVIModule(factorization, guide, config, sorted(train), pair_weights, kl_weight, sizes)
    world = devices * num_nodes
    draws = StepDraws(train, config, config.max_steps * world)
    loader = torch.utils.data.DataLoader(draws, batch_size=None, shuffle=False)
    callbacks = []
    if check_every:
        callbacks.append(RankAgreement(check_every, Path(ranks_dir) if ranks_dir else None))
    chosen: Any = strategy
    if strategy.startswith("ddp"):
        from lightning.pytorch.strategies import DDPStrategy

        backend = "gloo" if accelerator == "cpu" or not torch.cuda.is_available() else None
        chosen = DDPStrategy(
            start_method="spawn" if strategy == "ddp_spawn" else "popen",
            process_group_backend=backend,
            find_unused_parameters=True,  # a task-blocked hypernetwork leaves blocks unused
        )
    trainer = lightning.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=chosen,
        max_steps=config.max_steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        callbacks=callbacks,
        use_distributed_sampler=True,
    )
    trainer.fit(module, loader)
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
    if out_dir is not None and trainer.is_global_zero:
        run_dir = Path(out_dir)
        params = named_params(factorization, guide)
        save_model_json(run_dir, description)
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


__all__ = [
    "RankAgreement",
    "SVIModule",
    "StepDraws",
    "parameter_digest",
    "train_distributed",
]

"""Add a language (or a task) to a trained posterior without retraining it.

A trained run holds q(t_i), q(l_j) and the hypernetwork ψ, φ. A new language l_new with one
labelled pair (task i, new language) gets its own q(l_new), fitted by SVI on that pair's data
with everything else held fixed: the ELBO terms of the new pair are
E_q[log p(y | x, θ(t_i, l_new))] − KL(q(l_new) ‖ N(0, I)), and nothing else of the ELBO depends
on q(l_new). Its other tasks are then zero-shot pairs of the extended model, predicted like
any held-out pair (plug-in or model averaging). A new task works the same way through
q(t_new), for hypernetworks whose output the task fits (the paper's shared, padded layout).

Held fixed, bit for bit: the hypernetwork and every known task's and language's guide
parameters. A guide says which of its parameters are per-language and per-task tables
(:meth:`~pfpyro.model.guides.FactorizationGuide.indexed_by`); only the new rows of
those are trained.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import Trace_ELBO
from torch import Tensor

from pfpyro.atomic import atomic_write_text
from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair, pair_name
from pfpyro.errors import CheckpointError, ConfigError
from pfpyro.infer.checkpoint import (
    load_model_json,
    load_run,
    named_params,
    rng_state,
    save_checkpoint,
    save_model_json,
    snapshot,
)
from pfpyro.infer.trainer import step_weights
from pfpyro.model.capabilities import declares
from pfpyro.model.description import ModelDescription, default_labels, known_task_specs
from pfpyro.model.factorization import MAX_PLATE_NESTING, ParameterFactorization
from pfpyro.model.guides import FactorizationGuide
from pfpyro.model.registry import lookup
from pfpyro.progress import progress_bar
from pfpyro.run_record import encoder_section


@dataclass
class ExtendResult:
    """The extended model and guide, what was added, and how the fit went."""

    factorization: ParameterFactorization
    guide: FactorizationGuide
    new_langs: tuple[str, ...]
    new_tasks: tuple[str, ...]
    losses: list[float]
    seconds: float


def new_latents(
    description: ModelDescription, pairs: list[Pair]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(new languages, new tasks) that ``pairs`` bring to the model of ``description``;
    ConfigError when a pair brings both at once (nothing would anchor either) or nothing."""
    tasks, langs = set(description.tasks), set(description.langs)
    both = [pair_name(p) for p in pairs if p[0] not in tasks and p[1] not in langs]
    if both:
        raise ConfigError(
            f"pair(s) {', '.join(both)} bring a new task and a new language at once; extend "
            "with a pair whose task or language the model knows"
        )
    new_langs = tuple(sorted({lang for _, lang in pairs} - langs))
    new_tasks = tuple(sorted({task for task, _ in pairs} - tasks))
    if not new_langs and not new_tasks:
        raise ConfigError(
            "every pair's task and language are already in the model: nothing to extend "
            "(to learn from more data of known languages, train again)"
        )
    if new_tasks and not declares(
        lookup("hypernet", description.hypernet.name), "accepts_new_tasks"
    ):
        raise ConfigError(
            f"a new task ({', '.join(new_tasks)}) needs output columns of its own in a "
            f"{description.hypernet.name!r} hypernetwork, which extension cannot add; only the "
            "shared (padded) layout takes new tasks"
        )
    return new_langs, new_tasks


def extended_description(
    description: ModelDescription,
    new_langs: tuple[str, ...],
    new_tasks: tuple[str, ...],
    num_classes: Mapping[str, int] | None = None,
) -> ModelDescription:
    """``description`` (model.json) with the new languages and tasks added (a new task's
    labels from its label set, or ``num_classes`` of them)."""
    labels = dict(description.labels)
    width = max(description.num_classes.values())
    for task in new_tasks:
        labels[task] = default_labels(task, (num_classes or {}).get(task))
        if len(labels[task]) > width:
            raise ConfigError(
                f"task {task!r} has {len(labels[task])} labels, more than the {width} output "
                "slots of the trained hypernetwork"
            )
    return description.replace(
        langs=(*description.langs, *new_langs),
        tasks=(*description.tasks, *new_tasks),
        labels=labels,
        task_specs={
            **description.task_specs,
            **known_task_specs({task: labels[task] for task in new_tasks}),
        },
    )


def _row_map(old: Sequence[str], new: Sequence[str]) -> tuple[Tensor, Tensor]:
    """(rows in the new table, rows in the old one) of the names both tables hold."""
    kept = [name for name in new if name in old]
    return (
        torch.tensor([new.index(n) for n in kept], dtype=torch.long),
        torch.tensor([old.index(n) for n in kept], dtype=torch.long),
    )


@dataclass(frozen=True)
class _Rows:
    """Where a known value sits in the extended model: for each of the guide's per-task and
    per-language tables (as the guide declares them), its known rows, old and new."""

    description: ModelDescription
    extended: ModelDescription
    guide: FactorizationGuide

    def known(self, name: str) -> tuple[Tensor, Tensor] | None:
        """(rows in the extended table, rows in the run's) of parameter ``name``; None for a
        parameter that is not indexed by task or language (it is copied whole)."""
        owner, _, short = name.partition(".")
        axis = self.guide.indexed_by(short) if owner == "guide" else None
        if axis is None:
            return None
        return _row_map(list(getattr(self.description, axis)), list(getattr(self.extended, axis)))


def extend(
    run_dir: str | Path,
    train: Mapping[Pair, PairTensors],
    out_dir: str | Path,
    *,
    steps: int = 500,
    batch_size: int = 32,
    lr: float = 0.02,
    num_particles: int = 3,
    seed: int = 0,
    num_classes: Mapping[str, int] | None = None,
    progress: bool = True,
) -> ExtendResult:
    """Add the new languages and tasks of ``train``'s pairs to the run in ``run_dir`` and
    write the extended run to ``out_dir`` (a new folder; ``pfpyro.load`` reads it).

    Only q(l_new) and q(t_new) are fitted: ``steps`` Adam steps at ``lr`` on mini-batches of
    ``batch_size`` sentences of a pair drawn uniformly, each step an unbiased estimate of the
    new pairs' ELBO over their number (as in :func:`pfpyro.infer.train`). ``num_classes``
    gives a new task's label count when it has no built-in label set.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir} is not empty; extend into a new folder")
    if not train:
        raise ConfigError("extend needs at least one labelled pair of a new language or task")
    if steps < 1 or batch_size < 1 or lr <= 0 or num_particles < 1:
        raise ConfigError("steps, batch_size and num_particles must be >= 1 and lr > 0")
    description = load_model_json(run_dir)
    pairs = sorted(train)
    new_langs, new_tasks = new_latents(description, pairs)
    widths = {int(t.feature_dim) for t in train.values()}
    if widths != {description.feature_dim}:
        raise ConfigError(
            f"the new pairs' features are {sorted(widths)} wide; the run's model reads "
            f"{description.feature_dim} (encode them with the run's encoder)"
        )
    extended = extended_description(description, new_langs, new_tasks, num_classes)
    old_factorization, old_guide, meta = load_run(run_dir)
    old = snapshot(named_params(old_factorization, old_guide))
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        pyro.set_rng_seed(seed)
        factorization, guide = extended.build()
        params = named_params(factorization, guide)
        rows = _Rows(description, extended, guide)
        trained, masks = _copy_known(params, old, rows)
        settings = (steps, batch_size, lr, num_particles, seed, progress)
        losses = _fit(factorization, guide, train, params, trained, masks, *settings)
        _check_unchanged(params, old, rows)
        final = snapshot(params)
    seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model_json(out_dir, extended)
    record = {
        "extended_from": str(run_dir.resolve()),
        "new_langs": list(new_langs),
        "new_tasks": list(new_tasks),
        "pairs": [pair_name(p) for p in pairs],
        "sizes": {pair_name(p): len(train[p]) for p in pairs},
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "num_particles": num_particles,
        "seed": seed,
        "seconds": seconds,
    }
    save_checkpoint(
        out_dir,
        {
            "step": int(meta["step"]),
            "params": final,
            "best_params": None,
            "optimizer": {},
            "rng": rng_state(torch.Generator().manual_seed(seed)),
            "config": meta["config"],
            "history": [*meta["history"], {"kind": "extend", **record}],
            "state": {"best_step": meta["best_step"], "best_score": meta["best_score"]},
        },
    )
    atomic_write_text(out_dir / "run.json", json.dumps(_run_record(run_dir, record), indent=2))
    return ExtendResult(factorization, guide, new_langs, new_tasks, losses, seconds)


def _run_record(run_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """The extended run's run.json: the extension, and the original run's encoder section
    (so that ``pfpyro.load`` finds the encoder that made its features)."""
    section = encoder_section(run_dir)
    if section is not None:
        return {"extend": record, "config": {"encoder": section}}
    return {"extend": record}


def _copy_known(
    params: dict[str, Tensor], old: dict[str, Tensor], rows: _Rows
) -> tuple[list[Tensor], dict[str, Tensor]]:
    """Copy every known value into the extended model; returns the tensors to train (the
    guide's per-language and per-task tables) and, for each, the mask of its new rows."""
    trained, masks = [], {}
    with torch.no_grad():
        for name, value in params.items():
            if name not in old:
                raise CheckpointError(f"the extended model has a parameter {name} the run lacks")
            known = rows.known(name)
            if known is None:
                if value.shape != old[name].shape:
                    raise CheckpointError(
                        f"parameter {name} changes shape when the model is extended "
                        f"({tuple(old[name].shape)} -> {tuple(value.shape)})"
                    )
                value.copy_(old[name])
                continue
            new_rows, old_rows = known
            value[new_rows] = old[name][old_rows].to(value.dtype)
            mask = torch.ones(value.shape[0], dtype=torch.bool)
            mask[new_rows] = False
            if mask.any():
                trained.append(value)
                masks[name] = mask
    return trained, masks


@contextlib.contextmanager
def only_training(params: dict[str, Tensor], trained: list[Tensor], *modules) -> Iterator[None]:
    """Within: every tensor of ``params`` but ``trained`` has no gradient, and ``modules`` are
    in eval mode (which tells Pyro the frozen tensors are meant to be frozen)."""
    kept = {id(value) for value in trained}
    frozen = [value for value in params.values() if id(value) not in kept]
    for value in frozen:
        value.requires_grad_(False)
    for module in modules:
        module.train(False)
    try:
        yield
    finally:
        for value in frozen:
            value.requires_grad_(True)
        for module in modules:
            module.train(True)


def _fit(
    factorization: ParameterFactorization,
    guide: FactorizationGuide,
    train: Mapping[Pair, PairTensors],
    params: dict[str, Tensor],
    trained: list[Tensor],
    masks: dict[str, Tensor],
    steps: int,
    batch_size: int,
    lr: float,
    num_particles: int,
    seed: int,
    progress: bool,
) -> list[float]:
    """Adam on the new rows only: the gradient of every known row is zeroed before each
    update, so Adam (whose moments then stay zero there) leaves them exactly as they were."""
    by_tensor = {id(params[name]): mask for name, mask in masks.items()}
    with only_training(params, trained, factorization, guide):
        optimiser = torch.optim.Adam(trained, lr=lr)
        elbo = Trace_ELBO(
            num_particles=num_particles,
            vectorize_particles=True,
            max_plate_nesting=MAX_PLATE_NESTING,
        )
        pairs = sorted(train)
        sizes = {pair: len(train[pair]) for pair in pairs}
        pair_weights, kl_weight = step_weights(sizes, "uniform")
        generator = torch.Generator().manual_seed(seed)
        device = factorization.anchor.device
        losses = []
        for _ in progress_bar(range(steps), desc="extend", enabled=progress):
            pair = pairs[int(torch.randint(len(pairs), (1,), generator=generator))]
            index = torch.randperm(sizes[pair], generator=generator)[:batch_size]
            batch = train[pair].batch(index, device)
            optimiser.zero_grad()
            loss = elbo.differentiable_loss(
                factorization,
                guide,
                pair[0],
                pair[1],
                batch.inputs,
                batch.mask,
                batch.labels,
                pair_size=sizes[pair],
                kl_weight=kl_weight,
                pair_weight=pair_weights[pair],
            )
            loss.backward()
            for value in trained:
                if value.grad is not None:
                    value.grad[~by_tensor[id(value)]] = 0.0
            optimiser.step()
            losses.append(float(loss.detach()))
        return losses


def _check_unchanged(params: dict[str, Tensor], old: dict[str, Tensor], rows: _Rows) -> None:
    """Every known value is still exactly what the run had (a guard, not a hope)."""
    for name, value in params.items():
        known = rows.known(name)
        if known is None:
            same = torch.equal(value.detach().cpu(), old[name])
        else:
            new_rows, old_rows = known
            same = torch.equal(value.detach().cpu()[new_rows], old[name][old_rows])
        if not same:
            raise RuntimeError(f"extension changed the known values of {name}")

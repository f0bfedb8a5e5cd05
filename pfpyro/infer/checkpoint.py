"""Checkpoints of a training run, written atomically and read without unpickling objects.

A run folder holds:

- ``checkpoint.pt``: a plain dict saved by ``torch.save`` and read by
  ``torch.load(weights_only=True)``, which refuses anything but tensors, numbers, strings and
  containers of them, so a checkpoint cannot run code. It holds every parameter of the model
  and the guide by its module path (:func:`named_params`; PyroParams unconstrained), the
  optimiser's ``state_dict()``, the random states (torch, the trainer's data
  generator, Python's ``random``, numpy's), the step, the best dev score with its parameters,
  the history, the TrainConfig as a dict and the package version.
- ``model.json``: the model's :class:`~pfpyro.model.description.ModelDescription` (its
  components by registered name, sizes, label names, feature moments), which rebuilds the
  model and guide from the folder alone.

Both are written to a temporary file in the same folder, fsync'ed and moved into place with
``os.replace``, so a crash mid-write leaves the previous good file untouched.
"""

from __future__ import annotations

import json
import pickle
import random
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import pfpyro
from pfpyro.atomic import atomic_write
from pfpyro.errors import CheckpointError, ConfigError
from pfpyro.model.description import ModelDescription
from pfpyro.model.factorization import ParameterFactorization
from pfpyro.model.guides import FactorizationGuide

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.json"
#: Where a data-parallel run keeps its periodic Lightning checkpoints (infer/distributed.py).
LIGHTNING_DIR = "lightning"
FORMAT = "pfpyro-checkpoint"
FORMAT_VERSION = 2
#: Formats this pfpyro reads: 1 (parameters by Pyro store name, one optimiser per tensor), 2.
READABLE_VERSIONS = (1, 2)
REQUIRED_KEYS = (
    "format",
    "format_version",
    "version",
    "step",
    "params",
    "best_params",
    "optimizer",
    "rng",
    "config",
    "history",
    "state",
)


# -- parameters ---------------------------------------------------------------------------
def named_params(
    factorization: ParameterFactorization, guide: FactorizationGuide
) -> dict[str, Tensor]:
    """Every trained tensor of the model and guide by its module path: ``model.hypernet.…``,
    ``guide.t_loc_unconstrained`` (a PyroParam is stored unconstrained). What the optimiser
    steps and a checkpoint saves; a tensor shared by both appears once."""
    return dict(torch.nn.ModuleDict({"model": factorization, "guide": guide}).named_parameters())


def _legacy_key(name: str) -> str:
    """A name of either format reduced to what both share: format 1 named a tensor by its
    Pyro store name (no ``model.`` prefix, ``$$$`` after a plain nn.Module, a PyroParam by
    its constrained name); format 2 by its module path."""
    name = name.replace("$$$", ".").removeprefix("model.")
    return name.removesuffix("_unconstrained")


def _legacy_names(saved: Mapping[str, Any], params: Mapping[str, Tensor], where: str) -> dict:
    """``{today's name: format-1 name}`` for every tensor of ``params``."""
    by_key = {_legacy_key(name): name for name in saved}
    names = {}
    for name in params:
        if _legacy_key(name) not in by_key:
            raise CheckpointError(f"{where}: format-1 checkpoint has no parameter for {name}")
        names[name] = by_key[_legacy_key(name)]
    return names


def saved_params(
    body: Mapping[str, Any], key: str, params: Mapping[str, Tensor], where: str
) -> dict[str, Tensor] | None:
    """``body[key]`` ("params" or "best_params") under the names of ``params``; a format-1
    checkpoint's store names are mapped onto them."""
    saved = body[key]
    if saved is None or body["format_version"] >= 2:
        return saved
    return {name: saved[old] for name, old in _legacy_names(saved, params, where).items()}


def saved_optimizer(
    body: Mapping[str, Any],
    params: Mapping[str, Tensor],
    optimizer: torch.optim.Optimizer,
    where: str,
) -> dict[str, Any]:
    """The checkpoint's optimiser state as ``optimizer.load_state_dict`` takes it. Format 1
    held one ClippedAdam per tensor (``PyroOptim.get_state()``, by store name); each tensor's
    moments and step go to its index in ``optimizer``, and each group's (decayed) learning
    rate is that of its tensors, which all took the same steps."""
    if body["format_version"] >= 2:
        return body["optimizer"]
    old_states = body["optimizer"]
    names = _legacy_names(old_states, params, where)
    name_of = {id(value): name for name, value in params.items()}
    groups = optimizer.state_dict()["param_groups"]  # the indices load_state_dict expects
    state = {}
    for group, live in zip(groups, optimizer.param_groups, strict=True):
        for k, value in zip(group["params"], live["params"], strict=True):
            old = old_states[names[name_of[id(value)]]]
            group["lr"] = old["param_groups"][0]["lr"]
            if old["state"]:
                state[k] = next(iter(old["state"].values()))
    return {"state": state, "param_groups": groups}


def snapshot(params: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Detached CPU copies of ``params`` (what a checkpoint stores)."""
    return {name: value.detach().to("cpu", copy=True) for name, value in params.items()}


def restore(params: Mapping[str, Tensor], saved: Mapping[str, Tensor], where: str) -> None:
    """Copy ``saved`` into the live ``params`` in place (optimisers keep their references)."""
    missing = sorted(set(params) - set(saved))
    extra = sorted(set(saved) - set(params))
    if missing or extra:
        raise CheckpointError(
            f"{where}: parameters do not match the model (missing {missing[:5]}, "
            f"unexpected {extra[:5]})"
        )
    with torch.no_grad():
        for name, value in params.items():
            if value.shape != saved[name].shape:
                raise CheckpointError(
                    f"{where}: parameter {name} has shape {tuple(saved[name].shape)}, "
                    f"the model expects {tuple(value.shape)}"
                )
            value.copy_(saved[name])


# -- random states -------------------------------------------------------------------------
def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """The random states that a training step can touch, as tensors and plain numbers
    (Pyro draws from torch's, Python's and numpy's); ``generator`` is a run's own data
    generator, where it has one."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": {
            "version": py_version,
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss": py_gauss,
        },
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
    }
    if generator is not None:
        state["data"] = generator.get_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any], generator: torch.Generator | None = None) -> None:
    """Put back the states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if generator is not None:
        generator.set_state(state["data"])
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = list(state["cuda"])
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


# -- atomic files ----------------------------------------------------------------------------
def save_model_json(out_dir: str | Path, description: ModelDescription) -> Path:
    path = Path(out_dir) / MODEL_NAME
    text = json.dumps(description.to_json(), indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
    return path


def save_checkpoint(out_dir: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` (see :data:`REQUIRED_KEYS`) as ``out_dir/checkpoint.pt``, atomically."""
    path = Path(out_dir) / CHECKPOINT_NAME
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    body.setdefault("version", pfpyro.__version__)
    missing = [key for key in REQUIRED_KEYS if key not in body]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    atomic_write(path, lambda handle: torch.save(body, handle))
    return path


# -- reading ---------------------------------------------------------------------------------
def safe_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors, numbers, strings and
    containers only, so that a checkpoint cannot run code; CheckpointError when the file
    cannot be read."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
    ) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint, cannot be read ({reason})"
        ) from err


def load_checkpoint(out_dir: str | Path) -> dict[str, Any]:
    """Read ``out_dir/checkpoint.pt`` safely; CheckpointError says what is wrong with it."""
    path = Path(out_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there")
    body = safe_load(path)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a pfpyro checkpoint (no format tag {FORMAT!r})")
    if body.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint format {body.get('format_version')!r}, this pfpyro reads "
            f"formats {', '.join(map(str, READABLE_VERSIONS))}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in body]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint, missing {', '.join(missing)}")
    for key in ("params",):
        if not isinstance(body[key], dict) or not all(
            isinstance(v, Tensor) for v in body[key].values()
        ):
            raise CheckpointError(f"{path}: {key!r} should map names to tensors")
    return body


def lightning_checkpoints(run_dir: str | Path) -> list[Path]:
    """A data-parallel run's periodic Lightning checkpoints, ``RUN/lightning/step<k>.ckpt``
    (complete files: each was written atomically), oldest step first."""
    found = []
    for path in (Path(run_dir) / LIGHTNING_DIR).glob("step*.ckpt"):
        digits = path.stem.removeprefix("step")
        if digits.isdigit():
            found.append((int(digits), path))
    return [path for _, path in sorted(found)]


def load_lightning_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint of a data-parallel run, read as :func:`load_checkpoint` reads
    ours (``weights_only``: tensors, numbers, strings and containers only); CheckpointError
    when it cannot be read or was not written by pfpyro (no ``pfpyro`` record)."""
    path = Path(path)
    body = safe_load(path)
    if not isinstance(body, dict) or not isinstance(body.get("pfpyro"), dict):
        raise CheckpointError(f"{path}: not a pfpyro data-parallel checkpoint (no 'pfpyro' record)")
    return body


def load_model_json(out_dir: str | Path) -> ModelDescription:
    """The run's :class:`ModelDescription` (``model.json``, today's form or pfpyro 0.1's)."""
    path = Path(out_dir) / MODEL_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: no model description there")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: corrupt model description ({err})") from err
    try:
        return ModelDescription.from_json(data, str(path))
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def load_run(
    out_dir: str | Path, device: str | torch.device | None = None
) -> tuple[ParameterFactorization, FactorizationGuide, dict[str, Any]]:
    """Rebuild the trained model and guide of a run folder, with its best parameters.

    ``meta`` holds model.json's description, the step, best step and score, the config, the
    history and the version that wrote it. Building the modules draws their (overwritten)
    initial values from torch's RNG, which is forked so that the caller's stream is unchanged.
    """
    from pfpyro.device import resolve_device

    body = load_checkpoint(out_dir)
    description = load_model_json(out_dir)
    where = str(Path(out_dir) / CHECKPOINT_NAME)
    target = resolve_device(None if device is None else str(device))
    try:
        with torch.random.fork_rng(devices=[]):
            factorization, guide = description.build()
    except ConfigError as err:  # a component that is not registered in this process
        raise CheckpointError(f"{Path(out_dir) / MODEL_NAME}: {err}") from None
    factorization.to(target)
    guide.to(target)
    params = named_params(factorization, guide)
    key = "best_params" if body["best_params"] is not None else "params"
    restore(params, saved_params(body, key, params, where), where)
    state = body["state"]
    meta = {
        "model": description,
        "step": int(body["step"]),
        "best_step": state.get("best_step"),
        "best_score": state.get("best_score"),
        "config": body["config"],
        "history": body["history"],
        "version": body["version"],
        "device": str(target),
    }
    return factorization, guide, meta


__all__ = [
    "CHECKPOINT_NAME",
    "LIGHTNING_DIR",
    "MODEL_NAME",
    "lightning_checkpoints",
    "load_checkpoint",
    "load_lightning_checkpoint",
    "load_model_json",
    "load_run",
    "named_params",
    "restore",
    "rng_state",
    "safe_load",
    "save_checkpoint",
    "save_model_json",
    "saved_optimizer",
    "saved_params",
    "set_rng_state",
    "snapshot",
]

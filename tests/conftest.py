"""Shared fixtures. The real corpora live in ``../shared/data`` (CI sets ``PFPYRO_DATA``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from pfpyro.config import ModelConfig, OptimConfig, TrainConfig
from pfpyro.data.catalog import Catalog, default_catalog_path
from pfpyro.data.paths import data_root as find_data_root


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data root, found as every command finds it (``paths.data_root``)."""
    return find_data_root()


@pytest.fixture(scope="session")
def catalog(data_root: Path) -> Catalog:
    """The paper's catalog (``experiments/data/paper33.yaml``) over the real data."""
    return Catalog.load(default_catalog_path(), data_root)


def load_script(relative: str) -> ModuleType:
    """A script of the repository (``experiments/bench/svi_step.py``, ...) as a module: the
    scripts are not a package, and the tests call their ``main``."""
    path = Path(__file__).resolve().parents[1] / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads (on 2 cores they lose). No parameter store to
    reset: pfpyro's parameters live in its modules (pfpyro.model)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_settings(
    *,
    latent_dim: int = 2,
    guide: str = "lr",
    rank: int | None = None,
    hypernet: str = "shared",
    hidden_dims: tuple[int, ...] = (),
    init_variance: float | None = None,
    offset_scale: float | None = None,
    standardize: bool = True,
    **run: Any,
) -> dict[str, Any]:
    """``train()``'s ``config`` and ``model`` from one set of keywords (tests' shorthand):
    the architecture's, the optimiser's (lr, clip_norm, lr_decay, weight_decay) and the
    run's."""
    optim = {
        key: run.pop(key) for key in ("lr", "clip_norm", "lr_decay", "weight_decay") if key in run
    }
    net: dict[str, Any] = {"name": hypernet, "hidden_dims": list(hidden_dims)}
    if init_variance is not None:
        net["init_variance"] = init_variance
    if offset_scale is not None and hypernet == "residual":
        net["offset_scale"] = offset_scale
    model = ModelConfig(
        latent_dim=latent_dim,
        guide={"name": guide, "rank": rank} if rank is not None and guide == "lr" else guide,
        hypernet=net,
        standardize=standardize,
    )
    return {"config": TrainConfig(**run, optim=OptimConfig(**optim)), "model": model}

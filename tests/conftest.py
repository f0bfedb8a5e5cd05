"""Shared fixtures. The real corpora live in ``../shared/data`` (CI sets ``PFPYRO_DATA``)."""

from __future__ import annotations

from pathlib import Path

import pyro
import pytest
import torch

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


@pytest.fixture
def one_thread_and_fresh_store():
    """Tiny models gain nothing from threads (on 2 cores they lose); a fresh Pyro parameter
    store keeps each test's modules from binding another test's parameters."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pyro.get_param_store().scope():
        yield
    torch.set_num_threads(threads)

"""The pipeline is a package by stage; the old module names still work, with a warning."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import pfpyro

ROOT = Path(pfpyro.__file__).resolve().parent


def test_the_old_experiment_module_is_a_deprecated_shim_over_the_pipeline():
    sys.modules.pop("pfpyro.experiment", None)
    with pytest.warns(DeprecationWarning, match="pfpyro.experiment is deprecated"):
        experiment = importlib.import_module("pfpyro.experiment")
    from pfpyro.pipeline import fit, grid, setup

    assert experiment.run_experiment is grid.run_experiment
    assert experiment.prepare is setup.prepare
    assert experiment.fit_pf is fit.fit_pf
    assert experiment.with_typology_vectors is fit.with_language_data


def test_one_module_is_named_for_the_k_shot_study():
    # commands/ holds one module per CLI verb (`pfpyro fewshot`), named after the verb
    named = sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("fewshot.py"))
    assert named == ["commands/fewshot.py", "pipeline/fewshot.py"]
    assert (ROOT / "infer" / "pair_posterior.py").exists()
    assert not (ROOT / "features.py").exists() and (ROOT / "encode" / "store.py").exists()

"""A fitted posterior in ArviZ's format, and its printed summary."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from conftest import run_settings

import pfpyro
from pfpyro.infer import train
from pfpyro.testing.synthetic import make_world

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    world = make_world(2, 3, latent_dim=2, seed=0)
    config = run_settings(
        guide="lr",
        rank=2,
        latent_dim=2,
        hidden_dims=(),
        batch_size=20,
        max_steps=30,
        eval_every=10,
        progress=False,
    )
    out = tmp_path_factory.mktemp("arviz") / "run"
    pairs = world.pairs()
    train(
        {p: world.train[p] for p in pairs},
        {p: world.dev[p] for p in pairs},
        **config,
        out_dir=out,
        num_classes=world.num_classes,
    )
    return out


def test_to_arviz_holds_the_guides_draws_with_named_coordinates(run_dir):
    import arviz as az

    run = pfpyro.load(run_dir)
    idata = run.to_arviz(num_samples=400, seed=0)
    t, l = idata.posterior["t"], idata.posterior["l"]
    assert t.dims == ("chain", "draw", "task", "latent")
    assert l.dims == ("chain", "draw", "language", "latent")
    assert list(t["task"].values) == list(run.tasks)
    assert list(l["language"].values) == list(run.langs)
    assert l.shape == (1, 400, len(run.langs), 2)
    # the draws are the guide's: their mean is the posterior mean within Monte Carlo error
    _, means = run.posterior_means()
    for lang in run.langs:
        drawn = l.sel(language=lang).values.reshape(-1, 2)
        error = drawn.std(0) / np.sqrt(len(drawn))
        assert np.all(np.abs(drawn.mean(0) - means[lang]) < 5 * error)
    summary = az.summary(idata, kind="stats")
    assert len(summary) == (len(run.tasks) + len(run.langs)) * 2
    axes = az.plot_forest(idata, var_names=["l"], combined=True)
    assert len(np.atleast_1d(axes)) >= 1
    matplotlib.pyplot.close("all")


def test_a_fitted_posterior_prints_a_short_summary(run_dir):
    text = repr(pfpyro.load(run_dir))
    assert text.startswith("FittedPosterior: 2 tasks × 3 languages, h = 2, guide LowRankGuide")
    assert "languages: lang0, lang1, lang2" in text
    assert "posterior std" in text and "trained 30 steps" in text


_FRESH_IMPORT = """
import configparser, sys, warnings
from _pytest.config import parse_warning_filter
parser = configparser.ConfigParser()
parser.read(sys.argv[1])
lines = parser["tool:pytest"]["filterwarnings"].strip().splitlines()
for line in [line for line in lines if sys.argv[2] not in line]:  # in order, as pytest does
    warnings.filterwarnings(*parse_warning_filter(line.strip(), escape=False))
import arviz
"""


def _import_arviz_fresh(cache: Path, leave_out: str) -> subprocess.CompletedProcess:
    """``import arviz`` in a new process under setup.cfg's warning filters (as pytest parses
    them), less the lines containing ``leave_out``, with an empty user cache folder."""
    setup_cfg = Path(__file__).resolve().parents[1] / "setup.cfg"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run(
        [sys.executable, "-c", _FRESH_IMPORT, str(setup_cfg), leave_out],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_arvizs_daily_warning_cannot_fail_a_fresh_machine(tmp_path):
    """ArviZ 0.23 warns once a day (a date stamp in the user's cache folder): under the
    suite's ``filterwarnings = error`` that failed the first run of every day and machine.
    With setup.cfg's filters, importing it with no stamp passes; without that one line it
    fails (the control), so the line is what makes a fresh machine pass."""
    passed = _import_arviz_fresh(tmp_path / "fresh", leave_out="<nothing>")
    assert passed.returncode == 0, passed.stderr
    assert list((tmp_path / "fresh").rglob("daily_warning"))  # the warning's code ran
    failed = _import_arviz_fresh(tmp_path / "control", leave_out="ArviZ is undergoing")
    assert failed.returncode != 0 and "FutureWarning" in failed.stderr


def test_arvizs_other_future_warnings_still_fail():
    """The filter is that one message: any other FutureWarning from ArviZ is still an error."""
    with pytest.raises(FutureWarning):
        warnings.warn_explicit("a changed default", FutureWarning, "arviz/rcparams.py", 1,
                               module="arviz")  # fmt: skip

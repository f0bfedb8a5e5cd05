"""Components declare what they need and allow (pfpyro.model.capabilities); the whole-config
check reads the declarations, names the component and the capability when a config combines
them wrongly, and nothing tests a component by its name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pfpyro.baselines import BASELINES, baseline_class, register_baseline
from pfpyro.baselines.ls import LargestSource
from pfpyro.baselines.ns import NearestSource
from pfpyro.config import ModelConfig, load_config
from pfpyro.errors import ConfigError
from pfpyro.model import register
from pfpyro.model.capabilities import DEFAULTS, check_components, declares
from pfpyro.model.heads import SoftmaxHead
from pfpyro.model.hypernet import (
    ResidualHyperNetwork,
    SharedHyperNetwork,
    TaskBlockedHyperNetwork,
)
from pfpyro.model.registry import lookup, unregister
from pfpyro.model.typology import TypologyPrior
from pfpyro.pipeline.setup import run_components

DEMO = {
    "data": {"languages": ["eu", "fi", "ta", "tr", "vi", "wo", "yo"]},
    "partition": {"indices": [0]},
}


def config_file(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**DEMO, **values}), encoding="utf-8")
    return path


def test_the_shipped_components_declare_what_they_need():
    assert declares(TaskBlockedHyperNetwork, "task_blocked")
    assert declares(ResidualHyperNetwork, "task_blocked")
    assert declares(TaskBlockedHyperNetwork, "supports_pairs_per_step")  # θ padded
    assert declares(ResidualHyperNetwork, "with_base")
    assert not declares(TaskBlockedHyperNetwork, "with_base")
    assert declares(lookup("hypernet", "adapter"), "needs_feature_dim")
    assert declares(SharedHyperNetwork, "supports_pairs_per_step")
    assert declares(SharedHyperNetwork, "accepts_new_tasks")
    assert not declares(ResidualHyperNetwork, "accepts_new_tasks")
    assert declares(TypologyPrior, "needs_language_table")
    assert declares(NearestSource, "needs_language_table")
    assert declares(LargestSource, "needs_source_data")
    assert not declares(SoftmaxHead, "needs_language_table")  # the default
    assert lookup("hypernet", "blocked") is TaskBlockedHyperNetwork
    with pytest.raises(KeyError, match="unknown capability"):
        declares(SoftmaxHead, "flies")


def test_a_task_blocked_hypernetwork_that_says_nothing_refuses_several_pairs_per_step():
    class Silent:  # a user's task-blocked hypernetwork that declares nothing else
        task_blocked = True

    assert not declares(Silent, "supports_pairs_per_step")
    register("hypernet", "test-blocked-silent")(Silent)
    try:
        model = ModelConfig(hypernet="test-blocked-silent")
        with pytest.raises(ConfigError, match=r"'test-blocked-silent'.*declares task_blocked"):
            check_components(model, pairs_per_step=2)
        check_components(model, pairs_per_step=1)
    finally:
        unregister("hypernet", "test-blocked-silent")
    residual = ModelConfig(hypernet={"name": "residual", "hidden_dims": []})
    check_components(residual, pairs_per_step=4)  # its θ are padded
    check_components(ModelConfig(), pairs_per_step=8)  # the shared layout takes several


def test_any_component_can_refuse_several_pairs_per_step():
    @register("head", "test-one-pair-head")
    class OnePairHead(SoftmaxHead):
        supports_pairs_per_step = False

    try:
        model = ModelConfig(head="test-one-pair-head")
        with pytest.raises(
            ConfigError, match=r"model.head 'test-one-pair-head'.*supports_pairs_per_step"
        ):
            check_components(model, pairs_per_step=3)
    finally:
        unregister("head", "test-one-pair-head")


def test_the_whole_config_check_names_the_component_and_the_capability(tmp_path, data_root):
    from pfpyro.cli import main

    path = config_file(tmp_path, {"model": {"hypernet": {"name": "blocked"}, "init": "jm"}})
    out = tmp_path / "run"
    code = main(["experiment", str(path), "--out", str(out), "--data", str(data_root)])
    assert code == 2  # model.init: jm needs a base per task, which blocked has not
    assert not out.exists() or not any(out.iterdir())


def test_run_components_lists_the_models_and_the_baselines_of_a_config(tmp_path):
    config = load_config(config_file(tmp_path, {"models": ["pf-lr", "ns", "jm"]}))
    named = run_components(config)
    assert set(named) == {"model.prior", "model.hypernet", "model.head", "model.guide", "ns", "jm"}
    needing = sorted(name for name, c in named.items() if declares(c, "needs_language_table"))
    assert needing == ["ns"]
    typology = load_config(config_file(tmp_path, {"model": {"prior": "typology"}}))
    assert declares(run_components(typology)["model.prior"], "needs_language_table")


def test_a_baseline_name_cannot_be_taken_twice():
    class Mine:
        @classmethod
        def fit(cls, train, dev=None, *, seed=0, config=None):
            return cls()

    with pytest.raises(ConfigError, match="baseline 'jm' is already registered"):
        register_baseline("jm")(Mine)
    register_baseline("test-mine")(Mine)
    try:
        assert baseline_class("test-mine") is Mine
        assert set(DEFAULTS) >= {"needs_source_data", "needs_language_table"}
    finally:
        BASELINES.pop("test-mine")
    with pytest.raises(ConfigError, match="unknown baseline 'test-mine'"):
        baseline_class("test-mine")

"""A whole config is checked before any work, and its settings are honoured.

Every command reads its config first, without importing torch, so a typo is one line with a
close-match suggestion; what needs the catalog or the model's registries is checked by
``prepare`` before the encoder is built. The encoder here fails if it is ever constructed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pfpyro.cli import main
from pfpyro.commands.train import run_train_config
from pfpyro.config import load_config, unknown_keys_message
from pfpyro.errors import ConfigError


class EncoderMustNotBeBuilt:
    def __init__(self, *args, **kwargs) -> None:
        raise AssertionError("the encoder was built before the config was checked")


@pytest.fixture
def no_encoder(monkeypatch):
    import pfpyro.pipeline.setup

    monkeypatch.setattr(pfpyro.pipeline.setup, "WordEncoder", EncoderMustNotBeBuilt)


def write(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


DEMO = {
    "data": {"languages": ["eu", "fi", "ta", "tr", "vi", "wo", "yo"]},
    "partition": {"indices": [0]},
}


@pytest.mark.usefixtures("no_encoder")
@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"train": {"max_stpes": 10}},
            r"train: unknown key\(s\) max_stpes \(did you mean max_steps\?\)",
        ),
        (
            {"baselines": {"epoch": 3}},
            r"baselines: unknown key\(s\) epoch \(did you mean epochs\?\)",
        ),
        ({"optim": {"lr": "fast"}}, r"optim.lr: expected float, found 'fast'"),
        ({"baselines": {"epochs": 0}}, "baselines: epochs and batch_size must be positive"),
        ({"selecton": {"mode": "zero-shot"}}, r"selecton \(did you mean selection\?\)"),
        ({"model": {"guide": "full-rank"}}, "guide 'full-rank'"),
        ({"model": {"hypernet": {"hidden_dims": []}}}, "model.hypernet: expected a name"),
        (
            {"selection": {"mode": "zero-shot", "extra_languages": ["xx"]}},
            "languages not in the catalog: xx",
        ),
        ({"selection": {"mode": "zero-shot", "validation_pairs": 1}}, "allows only 0 validation"),
        ({"train": {"pairs_per_step": 0}}, "pairs_per_step must be at least 1"),
        ({"encoder": {"precision": "int4"}}, "encoder.precision 'int4' is unknown; known: fp32"),
        (
            {"data": {**DEMO["data"], "caps": {"train": 10, "tset": 5}}},
            r"data.caps: unknown key\(s\) tset \(did you mean test\?\)",
        ),
        (
            {"model": {"hypernet": {"name": "blocked"}, "init": "jm"}},
            "model.init: jm need a hypernetwork with a base classifier per task",
        ),
    ],
)
@pytest.mark.parametrize("command", ["train", "experiment"])
def test_a_bad_config_exits_2_with_one_line_before_any_encoding(
    tmp_path, capsys, values, message, command, data_root
):
    config = write(tmp_path, {**DEMO, **values})
    assert (
        main([command, str(config), "--out", str(tmp_path / "run"), "--data", str(data_root)]) == 2
    )
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(config) in err
    assert re.search(message, err), err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_a_typo_is_reported_without_importing_torch(tmp_path):
    config = write(tmp_path, {"train": {"max_stpes": 10}})
    code = (
        "import sys; from pfpyro.cli import main; "
        f"rc = main(['train', {str(config)!r}, '--out', {str(tmp_path / 'run')!r}]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "did you mean max_steps?" in done.stderr


def test_the_suggestion_is_the_closest_known_key_or_none():
    message = unknown_keys_message("f: train", ["latnt_dim", "zzz"], {"latent_dim", "lr"})
    assert "latnt_dim (did you mean latent_dim?)" in message
    assert "zzz;" in message and "zzz (" not in message


def flags(guide: str | None = None, seed: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(guide=guide, seed=seed)


def test_pfpyro_train_honours_the_configs_guide_and_seed_unless_a_flag_is_given(tmp_path):
    values = {"model": {"guide": "d"}, "train": {"seed": 7}, "seeds": [3]}
    config = load_config(write(tmp_path, values))
    chosen, model = run_train_config(config, flags(), progress=False)
    assert (model.component("guide")[0], chosen.seed) == ("d", 7)
    chosen, model = run_train_config(config, flags(guide="lr", seed=11), progress=False)
    assert (model.component("guide")[0], chosen.seed) == ("lr", 11)


def test_a_guide_flag_keeps_the_sections_arguments_for_the_same_guide(tmp_path):
    config = load_config(write(tmp_path, {"model": {"guide": {"name": "lr", "rank": 4}}}))
    _, model = run_train_config(config, flags(guide="lr"), progress=False)
    assert model.component("guide") == ("lr", {"rank": 4})
    _, model = run_train_config(config, flags(guide="d"), progress=False)
    assert model.component("guide") == ("d", {})
    assert config.model.with_guide("lr", rank=2).component("guide") == ("lr", {"rank": 2})


def test_without_train_seed_pfpyro_train_takes_the_first_of_seeds(tmp_path):
    config = load_config(write(tmp_path, {"seeds": [3, 4]}))
    chosen, model = run_train_config(config, flags(), progress=False)
    assert (model.component("guide")[0], chosen.seed) == ("lr", 3)  # ModelConfig's default


def test_a_version_1_train_section_is_read_into_model_and_optim(tmp_path):
    values = {"train": {"guide": "d", "latent_dim": 4, "hidden_dims": [], "lr": 0.1,
                        "hypernet": "residual", "offset_scale": 0.5, "max_steps": 9}}  # fmt: skip
    with pytest.warns(FutureWarning, match="now belong in model:"):
        config = load_config(write(tmp_path, values))
    assert config.model.latent_dim == 4 and config.model.guide == "d"
    assert config.model.hypernet == {"name": "residual", "hidden_dims": [], "offset_scale": 0.5}
    assert config.optim.lr == 0.1 and config.train == {"max_steps": 9}
    both = {**values, "model": {"latent_dim": 3}}
    with pytest.raises(ConfigError, match="belong in model:/optim:, which the file also has"):
        load_config(write(tmp_path, both))


def test_configs_built_in_code_are_checked_by_prepare(tmp_path, no_encoder, data_root):
    from pfpyro.config import ExperimentConfig
    from pfpyro.pipeline.setup import prepare

    config = ExperimentConfig(train={"max_stpes": 3}, data=load_config(write(tmp_path, DEMO)).data)
    with pytest.raises(ConfigError, match="did you mean max_steps"):
        prepare(config, tmp_path / "run", data=str(data_root))


@pytest.mark.usefixtures("no_encoder")
def test_a_partition_that_breaks_the_constraint_names_the_config(tmp_path, capsys, data_root):
    partition = {"scheme": "explicit", "heldout": [["pos", "wo"], ["ner", "wo"]]}
    config = write(tmp_path, {"data": {"languages": ["wo", "yo"]}, "partition": partition})
    assert (
        main(["experiment", str(config), "--out", str(tmp_path / "run"), "--data", str(data_root)])
        == 2
    )
    err = capsys.readouterr().err
    assert f"{config}: partition:" in err and "seen in no other task" in err


def test_caps_null_reads_every_sentence(tmp_path, catalog):
    """`data.caps: null` (issue 10, item 1): no split of any pair is capped."""
    from pfpyro.config import load_config
    from pfpyro.encode.store import FeatureStore

    path = write(tmp_path, {"data": {"languages": ["wo", "yo"], "caps": None}})
    caps = load_config(path).data.caps
    assert caps == {"train": None, "dev": None, "test": None}
    store = FeatureStore(catalog, encoder=None, caps=caps)
    for task, lang, split, role in (
        ("pos", "wo", "train", "seen"),
        ("ner", "wo", "test", "heldout"),
    ):
        every = catalog.sentences(task, lang, split, role)
        assert len(every) > 400 and store.sentences(task, lang, split, role) == every
    capped = FeatureStore(catalog, encoder=None, caps={"train": 100})
    assert len(capped.sentences("pos", "wo", "train", "seen")) == 100


def test_the_full_data_config_is_the_paper_config_without_caps():
    from pfpyro.config import load_config

    folder = Path(__file__).resolve().parents[1] / "experiments" / "configs"
    for paper_name, full_name in (("paper.yaml", "paper-full.yaml"),
                                  ("paper-v1.yaml", "paper-full-v1.yaml")):  # fmt: skip
        paper = load_config(folder / paper_name).to_dict()
        full = load_config(folder / full_name).to_dict()
        assert {key for key in paper if paper[key] != full[key]} == {"name", "source", "data"}
        assert full["data"] == {**paper["data"], "caps": {"train": None, "dev": None, "test": None}}


def test_the_full6_config_is_the_full_data_config_on_seven_languages():
    """experiments/configs/full6: paper-full-v1.yaml (what it was run with) but for its
    languages, one partition and one seed (nothing tuned on the side)."""
    from pfpyro.config import load_config

    folder = Path(__file__).resolve().parents[1] / "experiments" / "configs"
    full = load_config(folder / "paper-full-v1.yaml").to_dict()
    six = load_config(folder / "full6" / "full6.yaml").to_dict()
    differ = {key for key in full if full[key] != six[key]}
    assert differ == {"name", "source", "data", "partition", "seeds"}
    assert six["data"] == {**full["data"], "languages": ["bm", "hy", "ta", "te", "ug", "wo", "yo"]}
    assert six["partition"] == {**full["partition"], "indices": [0]}
    assert six["seeds"] == [0]

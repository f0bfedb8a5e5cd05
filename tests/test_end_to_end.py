"""The whole pipeline on the real data: `pfpyro experiment`, `pfpyro train`, `pfpyro predict`.

Small on purpose (three languages, a few dozen sentences, a few SVI steps): what is checked is
that every part composes, resumes and reports, not how good the numbers are.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import pfpyro as pfpyro_api
from pfpyro.cli import main as pfpyro
from pfpyro.data.tasks import label_set
from pfpyro.encode import install_offline_encoder

UPOS = label_set("pos")

pytestmark = pytest.mark.slow

ALL_MODELS = ("pf-d", "pf-lr", "ns", "ls", "jm", "bea")  # the paper's six

TINY = {
    "name": "tiny",
    "data": {"languages": ["tr", "vi", "wo"], "caps": {"train": 30, "dev": 12, "test": 20}},
    "partition": {"scheme": "paper", "indices": [0]},
    "model": {"latent_dim": 8, "hypernet": {"name": "shared", "hidden_dims": [32]}},
    "optim": {"lr": 0.01},
    "train": {
        "batch_size": 8,
        "max_steps": 30,
        "eval_every": 15,
        "num_particles": 3,
        "progress": False,
    },
    "baselines": {"epochs": 3},
    "predict": {"bma_samples": 10, "entropy_sentences": 10},
    "models": list(ALL_MODELS),
    "seeds": [0],
}


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    install_offline_encoder(progress=False)
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    return path


def test_experiment_runs_every_model_reports_and_resumes(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert pfpyro(["experiment", str(config), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "POS acc" in printed and "PF-lr" in printed  # Table 1 is printed

    results = pd.read_csv(out / "results.csv")
    scored = results[results["task"] != "all"]
    heldout = {("ner", "tr"), ("ner", "wo"), ("pos", "vi")}  # paper-0 over (tr, vi, wo)
    assert set(zip(scored["task"], scored["lang"], strict=True)) == heldout
    expected_models = {*ALL_MODELS, "pf-d-bma", "pf-lr-bma"}
    assert set(scored["model"]) == expected_models
    headline = scored[scored["metric"] == "score"]
    assert headline["value"].between(0, 1).all()
    assert len(headline) == len(expected_models) * len(heldout)
    for name in (
        "table1.md",
        "table1.csv",
        "per_pair_pos.md",
        "per_pair_ner.md",
        "run.json",
        "fig2_pos.png",
        "fig2_ner.png",
        "fig3_entropy.png",
        "fig4_language_posteriors.png",
        "reliability.png",
    ):
        assert (out / name).stat().st_size > 0, name

    # A second run finds every unit done and changes none of them.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "units").glob("*.csv")}
    assert len(stamps) == len(ALL_MODELS)
    assert pfpyro(["experiment", str(config), "--out", str(out), "--quiet"]) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # On a new machine, a committed results.csv stands for its units: none is run again and
    # the new folder's results are the same rows.
    elsewhere = tmp_path / "elsewhere"
    committed = out / "results.csv"
    capsys.readouterr()
    argv = ["experiment", str(config), "--out", str(elsewhere), "--resume-from", str(committed)]
    assert pfpyro(argv) == 0
    assert f"{len(ALL_MODELS)} units taken from {committed}" in capsys.readouterr().out
    assert not (elsewhere / "train").exists()  # nothing trained
    order = ["model", "task", "lang", "metric"]
    again = pd.read_csv(elsewhere / "results.csv").sort_values(order, ignore_index=True)
    pd.testing.assert_frame_equal(again, results.sort_values(order, ignore_index=True))
    # a table that is not a results.csv is refused, with its file and line, before any work
    bad = tmp_path / "bad" / "results.csv"
    bad.parent.mkdir()
    (bad.parent / "run.json").write_text((out / "run.json").read_text())
    bad.write_text("model,score\npf-d,0.5\n")
    fresh = tmp_path / "fresh"
    argv = ["experiment", str(config), "--out", str(fresh), "--quiet", "--resume-from", str(bad)]
    assert pfpyro(argv) == 2
    err = capsys.readouterr().err
    assert f"{bad}, line 1: expected the columns model,partition,seed" in err
    assert not (fresh / "run.json").exists() and not (fresh / "units").exists()


def test_train_then_predict_a_held_out_pair(config, tmp_path, data_root, capsys):
    run = tmp_path / "pf-lr"
    assert pfpyro(["train", str(config), "--out", str(run), "--quiet"]) == 0
    assert "held-out test scores" in capsys.readouterr().out
    source = data_root / "ud" / "UD_Vietnamese-VTB" / "vi_vtb-ud-test.conllu"
    tagged = tmp_path / "vi.pos.tsv"
    code = pfpyro(
        [
            "predict",
            str(run),
            str(source),
            "--task",
            "pos",
            "--lang",
            "vi",
            "--format",
            "conllu",
            "--bma",
            "5",
            "--out",
            str(tagged),
            "--quiet",
        ]
    )
    assert code == 0
    assert "accuracy" in capsys.readouterr().err  # gold labels were scored
    words = [
        line.split("\t")
        for line in tagged.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert all(len(w) == 4 for w in words)
    assert {w[1] for w in words} <= set(UPOS)
    assert all(0.0 <= float(w[2]) <= 1.0 and float(w[3]) >= 0.0 for w in words)


def test_components_of_ones_own_train_through_pfpyro_train(config, tmp_path, capsys):
    """The docs' example head and guide, named in a config's model: section with their files in
    model.imports, train through `pfpyro train`, and the run loads with pfpyro.load."""
    examples = Path(__file__).resolve().parents[1] / "docs" / "examples"
    values = yaml.safe_load(config.read_text(encoding="utf-8"))
    values["model"] = {
        **values["model"],
        "imports": [str(examples / "heads.py"), str(examples / "full_rank_guide.py")],
        "head": {"name": "tempered-softmax", "temperature": 2.0},
        "guide": "full",
    }
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump(values), encoding="utf-8")
    run = tmp_path / "own"
    assert pfpyro(["train", str(own), "--out", str(run), "--quiet"]) == 0
    assert "held-out test scores" in capsys.readouterr().out
    model = json.loads((run / "model.json").read_text(encoding="utf-8"))
    assert model["head"] == {"name": "tempered-softmax", "args": {"temperature": 2.0}}
    assert model["guide"] == {"name": "full", "args": {}}
    loaded = pfpyro_api.load(run)
    assert type(loaded.guide).__name__ == "FullRankGuide"
    assert type(loaded.factorization.head).__name__ == "TemperedSoftmaxHead"


def test_predict_names_the_known_languages(config, tmp_path, capsys):
    run = tmp_path / "pf-d"
    assert pfpyro(["train", str(config), "--out", str(run), "--guide", "d", "--quiet"]) == 0
    text = tmp_path / "input.txt"
    text.write_text("Dakar la\n", encoding="utf-8")
    capsys.readouterr()
    code = pfpyro(["predict", str(run), str(text), "--task", "ner", "--lang", "xx"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown language 'xx'" in err and "tr, vi, wo" in err and len(err.splitlines()) == 1


def test_extend_adds_a_language_to_a_trained_run(config, tmp_path, data_root, capsys):
    """A run over tr, vi, wo learns Yoruba from its POS data alone; NER in Yoruba is then a
    zero-shot pair of the extended model, scored, and predicted by `pfpyro predict`."""
    run = tmp_path / "pf-lr"
    assert pfpyro(["train", str(config), "--out", str(run), "--quiet"]) == 0
    extended = tmp_path / "pf-lr+yo"
    args = ["extend", str(run), "--config", str(config), "--pair", "pos/yo"]
    code = pfpyro(
        [*args, "--out", str(extended), "--steps", "40", "--data", str(data_root), "--quiet"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "added yo" in printed and "zero-shot ner\tyo\tspan_f1" in printed
    text = tmp_path / "input.txt"
    text.write_text("Ọ̀jọ̀ Ajé ni\n", encoding="utf-8")
    out = tmp_path / "tagged.tsv"
    predict = ["predict", str(extended), str(text), "--task", "ner", "--lang", "yo"]
    assert pfpyro([*predict, "--out", str(out), "--quiet"]) == 0
    assert len([line for line in out.read_text().splitlines() if line and line[0] != "#"]) == 3
    again = pfpyro([*args, "--out", str(extended), "--data", str(data_root), "--quiet"])
    assert again == 2 and "not empty" in capsys.readouterr().err  # nothing overwritten


def test_encode_caches_every_split_a_config_uses(config, capsys):
    assert pfpyro(["encode", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {tuple(line.split("\t")[:4]) for line in lines if line.count("\t") >= 4}
    # paper-0 over (tr, vi, wo): seen pairs' train and dev, held-out pairs' test
    assert ("pos", "tr", "train", "seen") in listed and ("ner", "wo", "test", "heldout") in listed
    assert not any(split == "test" and role == "seen" for _, _, split, role in listed)
    assert lines[-1].startswith("cached the features of")


def renamed_languages_config(tmp_path: Path, languages: dict) -> Path:
    """A config of TINY's over a catalog of the user's own, ``mine.yaml``: the shipped tr, vi
    and wo pairs under the new codes xtr, xvi and xwo (plus English for LS), with
    ``languages`` as its ``languages:`` section."""
    from pfpyro.data.catalog import default_catalog_path

    shipped = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    rename = {"tr": "xtr", "vi": "xvi", "wo": "xwo", "en": "en"}
    pairs = {
        task: {rename[lang]: spec for lang, spec in langs.items() if lang in rename}
        for task, langs in shipped["pairs"].items()
    }
    catalog = tmp_path / "mine.yaml"
    target = ["xtr", "xvi", "xwo"]
    catalog.write_text(
        yaml.safe_dump({"target_languages": target, "languages": languages, "pairs": pairs}),
        encoding="utf-8",
    )
    values = {**TINY, "data": {**TINY["data"], "languages": None, "catalog": str(catalog)}}
    config = tmp_path / "mine-config.yaml"
    config.write_text(yaml.safe_dump(values), encoding="utf-8")
    return config


def test_a_catalog_can_add_languages_the_package_never_heard_of(config, tmp_path, data_root):
    """tr, vi and wo renamed xtr, xvi and xwo in a catalog of the user's own, with their URIEL
    codes in its ``languages:`` section: every model, NS included, runs end to end."""
    languages = {
        "xtr": {"uriel": "tur", "name": "Turkish, renamed"},
        "xvi": {"uriel": "vie", "name": "Vietnamese, renamed"},
        "xwo": {"uriel": "wol", "name": "Wolof, renamed"},
    }
    mine = renamed_languages_config(tmp_path, languages)
    out = tmp_path / "run"
    assert (
        pfpyro(["experiment", str(mine), "--out", str(out), "--data", str(data_root), "--quiet"])
        == 0
    )
    scored = pd.read_csv(out / "results.csv")
    scored = scored[scored["task"] != "all"]
    assert set(scored["lang"]) <= {"xtr", "xvi", "xwo"} and len(set(scored["lang"])) >= 2
    assert {*ALL_MODELS, "pf-d-bma", "pf-lr-bma"} == set(scored["model"])


def test_a_catalog_language_without_a_uriel_code_stops_ns_before_any_work(
    tmp_path, data_root, capsys
):
    languages = {"xtr": {"uriel": "tur"}, "xvi": {"uriel": "vie"}, "xwo": {"uriel": "qqq"}}
    mine = renamed_languages_config(tmp_path, languages)
    catalog = tmp_path / "mine.yaml"
    code = pfpyro(
        ["experiment", str(mine), "--out", str(tmp_path / "run"), "--data", str(data_root)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"catalog {catalog}, languages.xwo: URIEL (lang2vec) has no language 'qqq'" in err
    assert not (tmp_path / "run").exists()


def test_three_tasks_run_every_model_end_to_end(tmp_path, data_root, capsys):
    """The deprel catalog (paper33-deprel.yaml) over tr, vi and wo: the authors' alternation
    over three tasks, all six models, and the reports of all three tasks."""
    from pfpyro.data.catalog import default_catalog_path

    catalog = default_catalog_path().parent / "paper33-deprel.yaml"
    values = {**TINY, "data": {**TINY["data"], "catalog": str(catalog)}}
    config = tmp_path / "three.yaml"
    config.write_text(yaml.safe_dump(values), encoding="utf-8")
    out = tmp_path / "run"
    args = ["experiment", str(config), "--out", str(out), "--data", str(data_root), "--quiet"]
    assert pfpyro(args) == 0
    assert "DEP acc" in capsys.readouterr().out  # Table 1 has the third task's column
    results = pd.read_csv(out / "results.csv")
    scored = results[results["task"] != "all"]
    heldout = {("deprel", "tr"), ("deprel", "wo"), ("ner", "vi"), ("pos", "tr"), ("pos", "wo")}
    assert set(zip(scored["task"], scored["lang"], strict=True)) == heldout
    assert set(scored["model"]) == {*ALL_MODELS, "pf-d-bma", "pf-lr-bma"}
    deprel = scored[(scored["task"] == "deprel") & (scored["metric"] == "score")]
    assert len(deprel) == 2 * 8 and deprel["value"].between(0, 1).all()
    assert not set(scored.loc[scored["task"] == "deprel", "metric"]) & {"span_f1", "token_f1"}
    for name in ("per_pair_deprel.md", "fig2_deprel.png"):
        assert (out / name).stat().st_size > 0, name
    model = json.loads((out / "train" / "paper-0_seed0_pf-lr" / "model.json").read_text())
    assert model["tasks"] == ["deprel", "ner", "pos"]
    assert len(model["task_specs"]["deprel"]["labels"]) == 37


def test_fewshot_curves_start_at_the_zero_shot_scores(config, tmp_path, capsys):
    """`pfpyro fewshot`: k = 0 is exactly `pfpyro experiment`'s zero-shot PF-lr and JM; each
    k > 0 gives each held-out pair min(k, its training sentences) shots; CSV, table, figure."""
    out = tmp_path / "fewshot"
    args = ["fewshot", str(config), "--out", str(out), "--k", "0,5,20", "--steps", "20"]
    assert pfpyro([*args, "--quiet"]) == 0
    assert "| ner | pf-lr |" in capsys.readouterr().out
    frame = pd.read_csv(out / "fewshot.csv")
    heldout = {("ner", "tr"), ("ner", "wo"), ("pos", "vi")}
    assert set(zip(frame["task"], frame["lang"], strict=True)) <= heldout
    assert set(frame["model"]) == {"pf-lr", "jm"} and set(frame["k"]) == {0, 5, 20}
    shots = frame.groupby("k")["shots"].agg(["min", "max"])
    assert shots.loc[0].tolist() == [0, 0] and shots.loc[5].tolist() == [5, 5]
    assert shots.loc[20].tolist() == [20, 20]  # the train cap is 30
    assert (out / "fewshot.png").stat().st_size > 0 and (out / "fewshot.md").is_file()
    experiment = tmp_path / "experiment"
    tiny = yaml.safe_load(config.read_text())
    tiny["models"] = ["pf-lr", "jm"]
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(tiny), encoding="utf-8")
    assert pfpyro(["experiment", str(path), "--out", str(experiment), "--quiet"]) == 0
    results = pd.read_csv(experiment / "results.csv")
    zero = results[(results["metric"] == "score") & (results["task"] != "all")]
    for row in frame[frame["k"] == 0].itertuples():
        same = (zero["model"] == row.model) & (zero["task"] == row.task)
        match = zero[same & (zero["lang"] == row.lang)]
        assert abs(100 * float(match["value"].iloc[0]) - row.score) < 1e-9


def test_a_language_with_no_data_through_the_typology_prior(config, tmp_path, capsys):
    """`partition: no-data` holds out both of wo's pairs; the typology prior, its URIEL
    vectors filled in from the catalog, still places wo and predicts both tasks."""
    tiny = yaml.safe_load(config.read_text())
    tiny["partition"] = {"scheme": "no-data", "languages": ["wo"]}
    tiny["model"]["prior"] = {"name": "typology", "components": 2}
    tiny["models"] = ["pf-lr", "ns", "jm"]
    path = tmp_path / "nodata.yaml"
    path.write_text(yaml.safe_dump(tiny), encoding="utf-8")
    out = tmp_path / "run"
    assert pfpyro(["experiment", str(path), "--out", str(out), "--quiet"]) == 0
    results = pd.read_csv(out / "results.csv")
    scored = results[(results["metric"] == "score") & (results["task"] != "all")]
    assert set(scored["partition"]) == {"no-data-wo"}
    assert set(zip(scored["task"], scored["lang"], strict=True)) == {("pos", "wo"), ("ner", "wo")}
    assert {"pf-lr", "ns", "jm"} <= set(scored["model"])
    model = json.loads((out / "train" / "no-data-wo_seed0_pf-lr" / "model.json").read_text())
    prior = model["prior"]
    assert prior["name"] == "typology" and set(prior["args"]["vectors"]) == {"tr", "vi", "wo"}
    run = pfpyro_api.load(out / "train" / "no-data-wo_seed0_pf-lr")
    assert run.factorization.prior.scores.shape == (3, 2)


def test_the_prediction_bench_prints_its_figures(config, data_root, capsys):
    """experiments/bench/predict.py at tiny sizes: a run trained, raw sentences tagged with
    the encoder (plug-in and BMA), the cached-feature ratio, and two whole processes timed."""
    from conftest import load_script

    bench = load_script("experiments/bench/predict.py")
    args = "--sentences 4 --samples 3 --repeats 1 --steps 2"
    results = bench.main([*args.split(), "--data", str(data_root)])
    assert set(results) == {
        "plugin_s",
        "bma_s",
        "bma_over_plugin",
        "plugin_cached_s",
        "bma_cached_s",
        "bma_over_plugin_cached",
        "predict_one_process_s",
        "predict_one_onnx_process_s",
        "help_process_s",
    }
    assert all(value > 0 for value in results.values())
    out = capsys.readouterr().out
    assert "end to end  BMA / plug-in" in out and "pfpyro --help" in out


def test_a_trained_encoder_top_runs_every_model_and_predicts_raw_text(tmp_path, data_root, capsys):
    """``encoder.train_top: 1``: every model trains the encoder's last layer on the cached
    states of the layer below; a trained PF run then tags raw CoNLL-U through its own top.
    (LS, whose English POS source is the whole treebank, takes the top in
    tests/test_encoder_top.py, on a small source.)"""
    install_offline_encoder(progress=False)
    models = [m for m in ALL_MODELS if m != "ls"]
    values = {**TINY, "encoder": {"train_top": 1}, "baselines": {"epochs": 2}, "models": models}
    config = tmp_path / "top.yaml"
    config.write_text(yaml.safe_dump(values), encoding="utf-8")
    out = tmp_path / "run"
    assert pfpyro(["experiment", str(config), "--out", str(out), "--quiet"]) == 0
    results = pd.read_csv(out / "results.csv")
    headline = results[(results["task"] != "all") & (results["metric"] == "score")]
    assert set(headline["model"]) == {*models, "pf-d-bma", "pf-lr-bma"}
    assert headline["value"].between(0, 1).all()
    model = json.loads((out / "train" / "paper-0_seed0_pf-lr" / "model.json").read_text())
    assert model["encoder_top"]["layers"] == 1 and model["encoder_top"]["below"] == 11

    run = tmp_path / "pf-lr"
    assert pfpyro(["train", str(config), "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    source = data_root / "ud" / "UD_Vietnamese-VTB" / "vi_vtb-ud-test.conllu"
    tagged = tmp_path / "vi.pos.tsv"
    args = ["predict", str(run), str(source), "--task", "pos", "--lang", "vi"]
    assert pfpyro([*args, "--format", "conllu", "--out", str(tagged), "--quiet"]) == 0
    assert "accuracy" in capsys.readouterr().err
    tags = [line.split("\t")[1] for line in tagged.read_text("utf-8").splitlines() if line and
            not line.startswith("#")]  # fmt: skip
    assert tags and set(tags) <= set(UPOS)


def test_train_on_two_cpu_processes_then_predict(config, tmp_path, data_root):
    """``pfpyro train --devices 2 --strategy ddp`` as a user runs it: Lightning starts the
    second process as a command; the run folder is an ordinary one that predict reads."""
    import subprocess
    import sys

    command = Path(sys.executable).parent / "pfpyro"
    values = yaml.safe_load(config.read_text(encoding="utf-8"))
    values["train"]["max_steps"] = 20
    ddp = tmp_path / "ddp.yaml"
    ddp.write_text(yaml.safe_dump(values), encoding="utf-8")
    run = tmp_path / "run"
    args = ["--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--quiet"]
    done = subprocess.run(
        [str(command), "train", str(ddp), "--out", str(run), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 processes" in done.stderr and "held-out test scores" in done.stdout
    meta = load_run_meta(run)
    assert meta["step"] == 20
    source = data_root / "ud" / "UD_Vietnamese-VTB" / "vi_vtb-ud-test.conllu"
    tagged = tmp_path / "vi.tsv"
    predict = ["predict", str(run), str(source), "--task", "pos", "--lang", "vi"]
    assert pfpyro([*predict, "--format", "conllu", "--out", str(tagged), "--quiet"]) == 0
    assert tagged.stat().st_size > 0


def load_run_meta(run: Path) -> dict:
    from pfpyro.infer import load_run

    return load_run(run)[2]


def test_a_run_on_the_onnx_encoder_trains_and_predicts_as_the_torch_one(
    config, tmp_path, data_root
):
    """``encoder.runtime: onnx``: a run is trained on ONNX Runtime features; `pfpyro predict`
    reads the runtime from the run, and ``--runtime torch`` tags the same words (the two
    encoders' features agree to fp16 rounding) with the same tags."""
    values = yaml.safe_load(config.read_text(encoding="utf-8"))
    values["encoder"] = {"runtime": "onnx"}
    values["train"]["max_steps"] = 10
    onnx_config = tmp_path / "onnx.yaml"
    onnx_config.write_text(yaml.safe_dump(values), encoding="utf-8")
    run = tmp_path / "run"
    assert pfpyro(["train", str(onnx_config), "--out", str(run), "--quiet"]) == 0
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert record["config"]["encoder"]["runtime"] == "onnx"
    assert pfpyro_api.load(run).encoder().runtime == "onnx"

    source = data_root / "ud" / "UD_Vietnamese-VTB" / "vi_vtb-ud-test.conllu"
    tags = {}
    for runtime in ("onnx", "torch"):
        tagged = tmp_path / f"vi.{runtime}.tsv"
        args = ["predict", str(run), str(source), "--task", "pos", "--lang", "vi"]
        args += ["--format", "conllu", "--runtime", runtime, "--out", str(tagged), "--quiet"]
        assert pfpyro(args) == 0
        lines = tagged.read_text("utf-8").splitlines()
        tags[runtime] = [line.split("\t")[1] for line in lines if line and line[0] != "#"]
    agree = sum(a == b for a, b in zip(tags["onnx"], tags["torch"], strict=True))
    assert len(tags["onnx"]) > 100 and agree >= 0.99 * len(tags["onnx"])

    # The console script ends a finished predict without the interpreter's teardown
    # (pfpyro.cli.main, fast_exit): every line is still flushed to standard output.
    import subprocess
    import sys

    command = Path(sys.executable).parent / "pfpyro"
    args = ["predict", str(run), str(source), "--task", "pos", "--lang", "vi"]
    args += ["--format", "conllu", "--runtime", "onnx", "--quiet"]
    done = subprocess.run([str(command), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == (tmp_path / "vi.onnx.tsv").read_text("utf-8")
    assert "accuracy" in done.stderr  # the gold scores, printed after the tags

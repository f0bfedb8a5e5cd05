"""The documentation: it builds, what it shows exists, its examples and notebooks run.

- ``mkdocs build --strict`` passes (broken links and API references fail it);
- the quickstart holds exactly the README's two set-up commands;
- every ``pfpyro ...`` line in docs/*.md parses with the real CLI parser, and the CLI reference
  names every option of every command;
- every Python or YAML block in docs/*.md is a snippet of a file under docs/examples that a
  test here runs or loads (so no example goes unexecuted);
- the extension examples (a full-rank guide, two heads, a family prior, a centroid baseline) run;
- the notebooks are committed with the outputs of the demo's PF-lr run (``make notebooks``) and
  run top to bottom under nbmake on a small synthetic run.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_settings

import pfpyro
from pfpyro.cli import build_argparse
from pfpyro.cli import main as pfpyro_main
from pfpyro.config import load_config
from pfpyro.data.catalog import Catalog, default_catalog_path
from pfpyro.errors import CheckpointError
from pfpyro.infer import PFPredictor, train
from pfpyro.infer.acquisition import ranking
from pfpyro.infer.pair_posterior import FewShotSettings
from pfpyro.model import registry
from pfpyro.model.heads import SoftmaxHead
from pfpyro.pipeline.setup import build_partitions
from pfpyro.report import format_cell
from pfpyro.testing.synthetic import make_world

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
NOTEBOOKS = sorted((DOCS / "notebooks").glob("*.ipynb"))
PAGES = sorted(DOCS.glob("*.md"))

#: Files under docs/examples that docs/*.md may include as snippets: each is run or loaded by
#: a test below (the test that covers it is named beside it).
TESTED_SNIPPETS = {
    "api_tour.py": "test_api_tour_on_a_synthetic_run",
    "annotation_loop.py": "test_annotation_loop_on_a_synthetic_run",
    "full_rank_guide.py": "test_full_rank_guide_trains_registers_and_reloads",
    "heads.py": "test_heads_train_with_svi_and_predict",
    "family_prior.py": "test_family_prior_trains_and_completes_its_arguments",
    "centroid_baseline.py": "test_centroid_baseline_fits_through_fit_baseline",
    "table2_subsets.py": "test_table2_subset_configs / test_table2_table",
    "experiments/configs/paper.yaml": "test_paper_config_loads_and_partitions",
    "experiments/configs/zero_shot/pf-residual-small.yaml": (
        "test_zero_shot_study_configs_load_and_match_their_generator"
    ),
    "experiments/configs/typology/nodata_typology.yaml": (
        "test_the_study_configs_are_paper_yaml_but_for_what_they_name"
    ),
    "experiments/configs/encoder_top/top1.yaml": (
        "test_the_encoder_top_study_configs_differ_only_in_train_top"
    ),
    "configs/my_corpora.yaml": "test_own_corpora_catalog_and_config",
    "corpora/catalog.yaml": "test_own_corpora_catalog_and_config",
    "corpora/chunks.yaml": "test_a_task_of_ones_own_in_the_docs_example",
}

HELDOUT = (("task0", "lang1"), ("task1", "lang3"), ("task2", "lang0"))
REAL_CODES = {"lang0": "fi", "lang1": "et", "lang2": "hu", "lang3": "tr", "lang4": "wo"}


# -- helpers ----------------------------------------------------------------------------------
def load_example(name: str) -> ModuleType:
    """Import docs/examples/<name>.py as a module (the folder is not a package)."""
    module_name = f"pfpyro_docs_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)


def code_blocks(path: Path) -> Iterator[tuple[str, str]]:
    """(language, body) of every fenced code block of a Markdown file."""
    for match in FENCE.finditer(path.read_text(encoding="utf-8")):
        body = "\n".join(line[len(match["indent"]) :] for line in match["body"].splitlines())
        yield match["lang"].lower(), body


def command_lines(body: str) -> Iterator[list[str]]:
    """The words of each shell command of a block (continuations joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", body)
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words = words[1:]  # VAR=value prefixes
        if words:
            yield words


def pfpyro_commands() -> list[tuple[str, list[str]]]:
    """(page, arguments) of every ``pfpyro ...`` command shown in a shell block of docs/*.md."""
    found = []
    for page in PAGES:
        for lang, body in code_blocks(page):
            if lang not in ("bash", "sh", "shell", "console"):
                continue
            for words in command_lines(body):
                if Path(words[0]).name != "pfpyro":
                    continue
                args = []
                for word in words[1:]:
                    if word in ("|", "&&", ";", ">", ">>"):
                        break
                    args.append(word)
                found.append((page.name, args))
    return found


def first_block_after(text: str, heading: re.Pattern[str]) -> str:
    match = heading.search(text)
    assert match, f"no heading matching {heading.pattern}"
    block = FENCE.search(text, match.end())
    assert block, f"no code block after {heading.pattern}"
    return block["body"]


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("pfpyro",)):
    """(command path, parser) of every command and sub-command under ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from subcommands(sub, (*path, name))


def sections(text: str) -> dict[str, str]:
    """Markdown text by heading (any level), each section up to the next heading."""
    parts = re.split(r"^#{1,6} +(.+)$", text, flags=re.M)
    return {parts[k].strip(): parts[k + 1] for k in range(1, len(parts), 2)}


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world():
    return make_world(
        3, 5, num_classes=4, feature_dim=8, latent_dim=3, sentences=(30, 10, 10), length=8, seed=0
    )


def _train_run(world, out_dir: Path, rename: dict[str, str] | None = None) -> Path:
    rename = rename or {}
    name = lambda pair: (pair[0], rename.get(pair[1], pair[1]))  # noqa: E731
    seen = [pair for pair in world.pairs() if pair not in HELDOUT]
    config = run_settings(
        latent_dim=3,
        hidden_dims=(16,),
        rank=2,
        batch_size=8,
        lr=0.03,
        max_steps=150,
        eval_every=50,
        log_every=25,
        progress=False,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(
            {name(p): world.train[p] for p in seen},
            {name(p): world.dev[p] for p in seen},
            **config,
            tasks=world.tasks,
            langs=[rename.get(lang, lang) for lang in world.langs],
            num_classes=world.num_classes,
            out_dir=out_dir,
        )
    finally:
        torch.set_num_threads(threads)
    return out_dir


@pytest.fixture(scope="module")
def run_dir(world, tmp_path_factory) -> Path:
    """A small PF-lr run on the synthetic world (languages lang0..lang4), 3 pairs held out."""
    return _train_run(world, tmp_path_factory.mktemp("docs") / "run")


@pytest.fixture(scope="module")
def real_code_run_dir(world, tmp_path_factory) -> Path:
    """The same run with the languages renamed to real codes that URIEL knows."""
    return _train_run(world, tmp_path_factory.mktemp("docs") / "run-real", REAL_CODES)


# -- the site ---------------------------------------------------------------------------------
def test_mkdocs_build_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "FittedPosterior" in api and "FactorizationGuide" in api  # mkdocstrings rendered


def test_every_page_is_in_the_nav():
    import yaml

    def files(items) -> set[str]:
        """Every file of a nav list, its sections' included."""
        found = set()
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            found |= files(value) if isinstance(value, list) else {value}
        return found

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = files(config["nav"])
    assert {f for f in listed if f.endswith(".md")} == {page.name for page in PAGES}
    assert {f for f in listed if f.endswith(".ipynb")} == {
        f"notebooks/{nb.name}" for nb in NOTEBOOKS
    }


# -- commands shown in the docs -----------------------------------------------------------------
def test_quickstart_has_exactly_the_readme_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    wanted = list(command_lines(first_block_after(readme, re.compile(r"^#+ .*two commands", re.M))))
    shown = list(command_lines(first_block_after(index, re.compile(r"^#+ Quickstart", re.M))))
    assert wanted == [["make", "demo"], ["make", "test"]]
    assert shown == wanted


def test_the_docs_show_pfpyro_commands():
    pages = {page for page, _ in pfpyro_commands()}
    assert {"index.md", "cli.md", "reproducing.md", "data.md", "offline.md"} <= pages


@pytest.mark.parametrize(
    "page, args", pfpyro_commands(), ids=lambda x: x if isinstance(x, str) else " ".join(x)
)
def test_pfpyro_command_in_the_docs_parses(page, args):
    parser = build_argparse()
    try:
        ns = parser.parse_args(args)
    except SystemExit as stop:
        pytest.fail(f"{page}: `pfpyro {' '.join(args)}` does not parse (exit {stop.code})")
    assert callable(getattr(ns, "func", None)), f"{page}: `pfpyro {' '.join(args)}` runs nothing"


def example_script_commands() -> list[tuple[str, str, list[str]]]:
    """(page, script name, arguments) of every ``python docs/examples/X.py ...`` shown."""
    found = []
    for page in PAGES:
        for lang, body in code_blocks(page):
            if lang in ("bash", "sh", "shell", "console"):
                for words in command_lines(body):
                    if Path(words[0]).name.startswith("python") and len(words) > 1:
                        script = Path(words[1])
                        if script.parent == Path("docs/examples"):
                            found.append((page.name, script.stem, words[2:]))
    return found


def test_example_script_commands_in_the_docs_parse():
    found = example_script_commands()
    assert {script for _, script, _ in found} == {"table2_subsets"}
    for page, script, args in found:
        parser = load_example(script).build_argparse()
        try:
            parser.parse_args(args)
        except SystemExit as stop:
            pytest.fail(f"{page}: `{script}.py {' '.join(args)}` does not parse ({stop.code})")


def test_cli_reference_names_every_command_and_option():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    by_heading = sections(text)
    missing = []
    for path, parser in subcommands(build_argparse()):
        command = " ".join(path)
        heading = next((h for h in by_heading if h.strip("`") == command), None)
        if heading is None:
            missing.append(f"a section `{command}`")
            continue
        body = by_heading[heading]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            names = action.option_strings or [action.metavar or action.dest.upper()]
            if not any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", body) for n in names):
                missing.append(f"{command}: {names[0]}")
    assert not missing, "cli.md lacks " + "; ".join(missing)
    for code in ("0", "1", "2"):
        assert re.search(rf"^\|\s*`?{code}`?\s*\|", text, re.M), f"exit code {code} not listed"


# -- code blocks: only snippets of tested example files ----------------------------------------
SNIPPET = re.compile(r'^-{1,2}8<-{1,2} +"(?P<file>[^":]+)(?::(?P<section>[\w-]+))?"$')


def snippet_references() -> list[tuple[str, str, str | None]]:
    refs = []
    for page in PAGES:
        for lang, body in code_blocks(page):
            if lang not in ("python", "py", "yaml", "yml"):
                continue
            for line in body.strip().splitlines():
                match = SNIPPET.match(line.strip())
                assert match, f"{page.name}: a {lang} block holds code that no test runs: {line!r}"
                refs.append((page.name, match["file"], match["section"]))
    return refs


def test_code_blocks_are_snippets_of_tested_examples():
    refs = snippet_references()
    assert refs, "the docs include no example code"
    for page, file, section in refs:
        assert file in TESTED_SNIPPETS, f"{page}: snippet {file} is not covered by a test"
        base = ROOT if file.startswith("experiments/") else EXAMPLES
        text = (base / file).read_text(encoding="utf-8")
        if section:
            for edge in ("start", "end"):
                assert f"--8<-- [{edge}:{section}]" in text, f"{page}: {file} lacks {section}"
    assert {file for _, file, _ in refs} == set(TESTED_SNIPPETS)


# -- the extension examples ---------------------------------------------------------------------
def test_full_rank_guide_trains_registers_and_reloads(tmp_path, monkeypatch, one_thread):
    example = load_example("full_rank_guide")  # registers the guide as "full"
    result = example.train_synthetic(tmp_path / "run", max_steps=150)
    curve = example.elbo_curve(result)
    assert all(math.isfinite(x) for x in curve)
    assert np.mean(curve[-2:]) > np.mean(curve[:2])  # the ELBO rose
    run = pfpyro.load(tmp_path / "run")
    assert isinstance(run.guide, example.FullRankGuide)
    trained = result.guide.language_posterior()
    with torch.no_grad():
        loaded = run.guide.language_posterior()
        assert torch.allclose(loaded.mean, trained.mean)
        correlation = example.correlation_of(loaded.covariance_matrix)
    # Initialised diagonal; a full-rank guide learns correlations within a posterior.
    assert float(correlation.tril(-1).abs().max()) > 0.01
    registry.unregister("guide", "full")
    try:
        with pytest.raises(CheckpointError, match="unknown guide 'full'"):
            pfpyro.load(tmp_path / "run")
    finally:
        registry.register("guide", "full")(example.FullRankGuide)


def test_family_prior_trains_and_completes_its_arguments(catalog, capsys, one_thread):
    """docs/examples/family_prior.py: a data-dependent prior in one file. It trains, the
    pipeline completes its arguments from the catalog (it declares needs_language_table), and
    its main prints the families of the shipped table."""
    from pfpyro.config import ModelConfig
    from pfpyro.model.capabilities import declares
    from pfpyro.pipeline.fit import with_language_data

    example = load_example("family_prior")
    result = example.train_synthetic(max_steps=100)
    assert result.best_score is not None and result.best_score > 0.4
    assert tuple(result.factorization.prior.centres.shape) == (2, 3)
    assert declares(example.FamilyPrior, "needs_language_table")
    filled = with_language_data(ModelConfig(prior="family"), ["fi", "et", "tr"], catalog)
    name, args = filled.component("prior")
    assert name == "family"
    assert args["families"]["fi"] == args["families"]["et"] != args["families"]["tr"]
    assert example.main(["--steps", "30"]) == 0
    assert "Uralic" in capsys.readouterr().out


def test_centroid_baseline_fits_through_fit_baseline(capsys):
    """docs/examples/centroid_baseline.py: a baseline in one file, fitted by fit_baseline with
    the run's baseline settings, beats chance on the held-out pairs."""
    from pfpyro.baselines import BASELINES, baseline_class
    from pfpyro.predictor import TokenPredictor

    example = load_example("centroid_baseline")
    assert baseline_class("centroid") is example.NearestCentroid
    scores = example.demo()
    assert set(scores) == {("task0", "lang1"), ("task1", "lang3")}
    assert all(score > 0.4 for score in scores.values())  # chance: 0.25
    world = example.make_world(num_tasks=1, num_langs=1)
    assert isinstance(example.NearestCentroid.fit(dict(world.train)), TokenPredictor)
    assert "centroid" in BASELINES
    assert example.main([]) == 0
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["tempered", "smoothed"])
def test_heads_train_with_svi_and_predict(name, one_thread):
    example = load_example("heads")
    elbo, probs = example.demo(name, steps=120)
    assert len(elbo) == 12 and all(math.isfinite(x) for x in elbo)
    assert np.mean(elbo[-3:]) > np.mean(elbo[:3])  # trained by pfpyro's own trainer
    assert probs.shape == (4, 12, 4)
    assert torch.allclose(probs.sum(-1), torch.ones(4, 12), atol=1e-5)
    if name == "smoothed":
        assert float(probs.min()) >= 0.1 / 4 - 1e-6  # p̃ = 0.9 p + 0.1 / c never falls below


def test_heads_change_only_what_they_say():
    example = load_example("heads")
    theta = torch.randn(2, 1, 1, SoftmaxHead(5, 3).num_params)
    features = torch.randn(4, 6, 5)
    plain = SoftmaxHead(5, 3).logits(theta, features, 3)
    tempered = example.TemperedSoftmaxHead(5, 3, temperature=4.0).logits(theta, features, 3)
    assert torch.allclose(tempered, plain / 4.0)
    smoothed = example.LabelSmoothedSoftmaxHead(5, 3, smoothing=0.3).logits(theta, features, 2)
    plain2 = SoftmaxHead(5, 3).logits(theta, features, 2).softmax(-1)
    assert torch.allclose(smoothed.exp(), 0.7 * plain2 + 0.15, atol=1e-6)
    with pytest.raises(ValueError):
        example.LabelSmoothedSoftmaxHead(5, 3, smoothing=1.0)


def test_api_tour_on_a_synthetic_run(run_dir, world, one_thread):
    example = load_example("api_tour")
    task, lang = HELDOUT[0]
    test = world.test[task, lang]
    features = test.features[:2].float()
    words = [[f"w{k}" for k in range(8)], [f"w{k}" for k in range(5)]]
    got = example.tour(run_dir, task, lang, sentences=words, features=features)
    run = got["run"]
    h, e, c = run.factorization.latent_dim, world.feature_dim, world.num_classes[task]
    assert set(got["l_samples"]) == set(world.langs)
    assert got["l_samples"][lang].shape == (500, h)
    W, b = got["classifier"]
    assert W.shape == (e, c) and b.shape == (c,)
    # The plug-in prediction is the softmax of the plug-in classifier, which reads the
    # standardised features x (model.md, Algorithm 1 lines 10-11).
    x = run.factorization.standardize(features)
    expected = torch.softmax(x @ torch.from_numpy(W) + torch.from_numpy(b), -1)
    assert torch.allclose(got["plugin"].probs, expected, atol=1e-5)
    for prediction in (got["plugin"], got["bma"]):
        assert [len(x) for x in prediction.labels] == [8, 5]
        assert all(x >= 0 for row in prediction.entropy for x in row)
    assert np.allclose(np.diag(got["similarity"].to_numpy()), 1.0, atol=1e-5)
    assert len(got["neighbours"]) == 3 and lang not in got["neighbours"].index
    assert got["idata"].posterior["l"].shape == (1, 1000, len(world.langs), h)


def test_annotation_loop_on_a_synthetic_run(run_dir, world, one_thread):
    example = load_example("annotation_loop")
    task, lang = HELDOUT[0]
    test = world.test[task, lang]
    pool = [tuple(f"s{k}w{i}" for i in range(int(row.sum()))) for k, row in enumerate(test.mask)]
    names = pfpyro.load(run_dir).label_names(task)
    gold = {k: [names[int(y)] for y in test.labels[k, : len(s)]] for k, s in enumerate(pool)}
    asked = []

    def annotate(chosen):
        asked.append(list(chosen))
        return [gold[pool.index(s)] for s in chosen]

    features = test.features.float()
    run, chosen, tagged = example.annotation_loop(
        run_dir, task, lang, pool, annotate, rounds=2, budget=4, features=features
    )
    assert asked == [[pool[k] for k in round_] for round_ in chosen]
    assert run.few_shot(task, lang).k == 8 and not set(chosen[0]) & set(chosen[1])
    # round 1 ranks under the run's posterior, round 2 the rest under round 1's update
    again = pfpyro.load(run_dir)
    _, bald = again.pool_information(task, lang, pool, features=features)
    assert chosen[0] == ranking(bald)[:4].tolist()
    again.update(task, lang, [pool[k] for k in chosen[0]], [gold[k] for k in chosen[0]],
                 FewShotSettings(steps=300), features=features[chosen[0]])  # fmt: skip
    left = [k for k in range(len(pool)) if k not in chosen[0]]
    _, bald = again.pool_information(task, lang, [pool[k] for k in left], features=features[left])
    assert chosen[1] == [left[k] for k in ranking(bald)[:4].tolist()]
    zero_shot = PFPredictor(run.factorization, run.guide).predict_proba(
        task, lang, features, test.mask
    )
    assert tagged.probs.shape == zero_shot.shape and not torch.allclose(tagged.probs, zero_shot)
    assert torch.equal(run.predict(task, lang, pool, features=features, zero_shot=True).probs,
                       zero_shot)  # fmt: skip


# -- reproducing: configs and Table 2 -----------------------------------------------------------
def test_paper_config_loads_and_partitions(catalog):
    config = load_config(DOCS.parent / "experiments" / "configs" / "paper.yaml")
    languages = catalog.target_languages()
    assert config.data.languages is None and len(languages) == 33
    partitions = build_partitions(config, catalog.pairs(), languages)
    assert [name for name, _ in partitions] == ["paper-0", "paper-1"]
    heldout = [set(p.heldout) for _, p in partitions]
    assert not heldout[0] & heldout[1]  # every pair is held out at most once
    assert config.model.latent_dim == 10 and config.seeds == [0, 1, 2]
    assert set(config.models) == {"ns", "ls", "bea", "jm", "pf-d", "pf-lr"}


def test_table2_subset_configs(tmp_path, data_root):
    from pfpyro.data.uriel import language_family

    example = load_example("table2_subsets")
    base = ROOT / "experiments" / "configs" / "demo-v1.yaml"
    assert example.main(["configs", "--out", str(tmp_path), "--base", str(base)]) == 0
    catalog = Catalog.load(default_catalog_path(), data_root)
    candidates = set(example.candidate_languages(catalog))
    for key, (size, kind, _) in example.SUBSETS.items():
        config = load_config(tmp_path / f"{key}.yaml")
        langs = config.data.languages
        assert len(langs) == size and set(langs) <= candidates
        assert config.models == ["pf-lr"] and config.partition.scheme == "random"
        families = [language_family(lang) for lang in langs]
        if kind == "sim":
            assert all(families.count(f) >= 2 for f in families)  # everyone has a relative
        else:
            distinct = len({language_family(lang) for lang in candidates})
            assert len(set(families)) == min(size, distinct)
        pairs = [pair for pair in catalog.pairs() if pair[1] in langs]
        ((_, partition),) = build_partitions(config, pairs, langs)
        assert partition.heldout and {lang for _, lang in partition.pairs} == set(langs)


def test_table2_table(tmp_path, capsys):
    example = load_example("table2_subsets")
    assert example.main(["table", str(tmp_path)]) == 2  # no results yet
    assert "no results yet" in capsys.readouterr().err
    rng = np.random.default_rng(0)
    frames = {}
    for key in example.SUBSETS:
        rows = [
            (model, "random-0", seed, task, lang, metric, float(rng.uniform()))
            for model in ("pf-lr", "jm")
            for seed in (0, 1)
            for task, metric in (("pos", "accuracy"), ("ner", "span_f1"), ("ner", "token_f1"))
            for lang in ("aa", "bb", "cc")
        ]
        frames[key] = pd.DataFrame(
            rows, columns=["model", "partition", "seed", "task", "lang", "metric", "value"]
        )
        (tmp_path / key).mkdir()
        frames[key].to_csv(tmp_path / key / "results.csv", index=False)
    assert example.main(["table", str(tmp_path)]) == 0
    text = (tmp_path / "table2.md").read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("|"))
    labels = [label.replace("|", "\\|") for _, _, label in example.SUBSETS.values()]
    assert [header.index(label) for label in labels] == sorted(header.index(x) for x in labels)
    chosen = frames["sim11"].query("model == 'pf-lr' and task == 'pos'")
    per_seed = chosen.groupby("seed")["value"].mean()
    pos_row = next(line for line in text.splitlines() if line.startswith("| POS acc"))
    assert format_cell(per_seed.mean(), per_seed.std(ddof=0)) in pos_row.split("|")[2]


# -- data: a catalog of one's own corpora -------------------------------------------------------
def test_own_corpora_catalog_and_config(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    corpora = "docs/examples/corpora"
    args = ["--data", corpora, "--catalog", f"{corpora}/catalog.yaml"]
    assert pfpyro_main(["data", "summary", *args]) == 0
    summary = capsys.readouterr().out
    assert "4 present pairs, 0 absent" in summary
    explicit = ["data", "partition", "--scheme", "explicit", "--heldout", "ner/de"]
    assert pfpyro_main([*explicit, *args]) == 0
    assert "held out (1):" in capsys.readouterr().out
    config = load_config(EXAMPLES / "configs" / "my_corpora.yaml")
    catalog = Catalog.load(config.data.catalog, config.data.root)
    sentences = catalog.sentences("pos", "de", "train", "seen")
    assert sentences and all(len(s.words) == len(s.labels) for s in sentences)
    ((_, partition),) = build_partitions(config, catalog.pairs(), config.data.languages)
    assert partition.heldout == (("ner", "de"),)
    # German is unknown to the shipped catalog: its URIEL code comes from this catalog's table
    from pfpyro.data.uriel import lang2vec_code, language_family

    assert lang2vec_code("de", catalog.language_table) == "deu"
    assert language_family("de", catalog.language_table) == language_family("en")


def test_a_task_of_ones_own_in_the_docs_example(monkeypatch, capsys):
    """docs/examples/corpora/chunks.yaml: extends the toy catalog and adds a task (chunk)."""
    from pfpyro.data.tasks import forget_task, task_spec

    monkeypatch.chdir(ROOT)
    corpora = "docs/examples/corpora"
    args = ["--data", corpora, "--catalog", f"{corpora}/chunks.yaml"]
    try:
        assert pfpyro_main(["data", "summary", *args]) == 0
        summary = capsys.readouterr().out
        assert "6 present pairs, 0 absent" in summary and "chunk   2 pairs" in summary
        explicit = ["data", "partition", "--scheme", "explicit", "--heldout", "chunk/de"]
        assert pfpyro_main([*explicit, *args]) == 0
        assert "chunk: 1 seen, 1 held out" in capsys.readouterr().out
        catalog = Catalog.load(f"{corpora}/chunks.yaml", corpora)
        assert task_spec("chunk").labels == ("O", "B-NP", "I-NP") and task_spec("chunk").spans
        sentences = catalog.sentences("chunk", "de", "train", "seen")
        assert sentences[0].labels == ("B-NP", "I-NP", "O", "O", "B-NP", "O")
    finally:
        forget_task("chunk")


# -- notebooks ----------------------------------------------------------------------------------
def notebook_text(nb: nbformat.NotebookNode) -> str:
    """The text of every stream and plain-text result of an executed notebook."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "text/plain" in output.get("data", {}):
                parts.append(output.data["text/plain"])
    return "\n".join(parts)


# The notebooks that read a trained run (PFPYRO_NOTEBOOK_RUN); beyond.ipynb reads the
# committed results of the issue-9 studies and a synthetic world instead.
RUN_NOTEBOOKS = [nb for nb in NOTEBOOKS if nb.name != "beyond.ipynb"]


def test_there_are_the_three_notebooks():
    assert [nb.name for nb in NOTEBOOKS] == ["beyond.ipynb", "posteriors.ipynb", "zero_shot.ipynb"]


def test_the_beyond_notebook_shows_the_committed_studies():
    """Executed top to bottom, with figures, and its numbers are those of the committed
    result files (re-run it with `make notebooks` when they change)."""
    import pandas as pd

    notebook = DOCS / "notebooks" / "beyond.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert sum("image/png" in output.get("data", {}) for output in outputs) >= 4
    text = notebook_text(nb)
    results = ROOT / "experiments" / "results"
    extend = pd.read_csv(results / "extend" / "extend_study_paper.csv")
    means = extend.groupby("method")["span_f1"].mean()
    assert f"extend {means['extend']:.2f}, retrain {means['retrain']:.2f}" in text
    fewshot = pd.read_csv(results / "fewshot" / "paper" / "fewshot.csv")
    best = fewshot[(fewshot.k == 100) & (fewshot.model == "pf-lr") & (fewshot.task == "pos")]
    assert f"{best['score'].mean():.2f}" in text
    assert "k = 40:" in text
    extension = pd.read_csv(results / "third_task" / "extend_task_study.csv")
    pos = extension.groupby("method")["accuracy"].mean()
    assert f"accuracy {pos['extend']:.2f}; retrained with POS: {pos['retrain']:.2f}" in text
    third = pd.read_csv(results / "third_task" / "third_task.csv")
    ner = third[(third.run == "three_tasks_steps1000") & (third.task == "ner")]
    ner = ner.groupby(["model", "seed"])["value"].mean().groupby("model").mean()
    assert f"{ner['pf-lr']:.2f}" in text


@pytest.mark.parametrize("notebook", RUN_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_with_the_outputs_of_the_demo_run(notebook):
    """``make notebooks`` ran it top to bottom on runs/demo/train/paper-0_seed0_pf-lr."""
    assert notebook.stat().st_size < 1_500_000
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs)
    text = notebook_text(nb)
    assert "run paper-0_seed0_pf-lr" in text and "lang0" not in text
    for cell in nb.cells:
        assert "lang0" not in cell.source or cell.cell_type == "markdown"
    source = "\n".join(cell.source for cell in nb.cells)
    assert "PFPYRO_NOTEBOOK_RUN" in source
    assert not re.search(r"""["'](wo|yo|ta|te|fi)["']""", source)  # no assumed language


def run_notebook(notebook: Path, run: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PFPYRO_NOTEBOOK_RUN": str(run), "MPLCONFIGDIR": str(tmp_path)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbmake",
            "--nbmake-timeout=120",
            "-p",
            "no:cacheprovider",
            "-q",
            str(notebook),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_a_synthetic_run(notebook, run_dir, tmp_path):
    done = run_notebook(notebook, run_dir, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


@pytest.mark.slow
def test_posteriors_notebook_compares_with_uriel_on_real_codes(real_code_run_dir, monkeypatch):
    from nbclient import NotebookClient

    notebook = DOCS / "notebooks" / "posteriors.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    monkeypatch.setenv("PFPYRO_NOTEBOOK_RUN", str(real_code_run_dir))
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    client.execute()
    text = notebook_text(nb)
    assert "Spearman correlation of posterior and URIEL similarities over 10 language pairs" in text
    assert "URIEL" in text.split("Spearman correlation")[1]  # the side-by-side table
    assert "lang0" not in text and "no typological comparison" not in text

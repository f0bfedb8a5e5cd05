"""Tasks as data: task descriptions in catalogs, a task the package never heard of, the third
task (deprel) from CoNLL-U, catalogs that extend catalogs, and partitions of three tasks."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pfpyro.data.catalog import Catalog, default_catalog_path
from pfpyro.data.partition import (
    constraint_violations,
    no_data_partition,
    paper_partition,
)
from pfpyro.data.readers import read_sentences
from pfpyro.data.tasks import (
    forget_task,
    known_tasks,
    label_set,
    parse_task,
    shipped_tasks,
    task_order,
    task_spec,
)
from pfpyro.errors import ConfigError, DataFormatError
from pfpyro.evaluate import headline_metric, score_pair
from pfpyro.model.description import ModelDescription
from pfpyro.report import table1, task_headlines

DEPREL_CATALOG = default_catalog_path().parent / "paper33-deprel.yaml"

CHUNK = {
    "name": "Noun-phrase chunking",
    "short": "NP",
    "labels": ["O", "B-NP", "I-NP"],
    "outside": "O",
    "metric": "span_f1",
    "colour": "tab:purple",
}
CHUNK_FILE = "the\tB-NP\ncat\tI-NP\nsat\tO\n\nDogs\tB-NP\nbark\tO\n"


@pytest.fixture
def chunk_catalog(tmp_path):
    """A catalog of the user's own with a task pfpyro does not ship (``chunk``), forgotten
    again after the test."""
    (tmp_path / "c").mkdir()
    for split in ("train", "dev", "test"):
        (tmp_path / "c" / f"{split}.tsv").write_text(CHUNK_FILE, encoding="utf-8")
    files = {"format": "tsv", **{s: f"c/{s}.tsv" for s in ("train", "dev", "test")}}
    path = tmp_path / "chunks.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "tasks": {"chunk": CHUNK},
                "languages": {"xx": {"uriel": "eng"}},
                "pairs": {"chunk": {"xx": files}},
            }
        ),
        encoding="utf-8",
    )
    yield path
    forget_task("chunk")


# ---------------------------------------------------------------------------------------------
# The shipped descriptions


def test_the_shipped_catalog_describes_pos_ner_and_deprel():
    shipped = shipped_tasks()
    assert list(shipped) == ["pos", "ner", "deprel"]
    assert [len(label_set(t)) for t in shipped] == [17, 7, 37]
    assert task_spec("pos").metric == "accuracy" and task_spec("pos").conllu == "upos"
    ner = task_spec("ner")
    assert ner.spans and ner.outside == "O" and ner.metric == "span_f1" and ner.source_cap
    assert label_set("ner")[0] == "O"  # id 0 is "outside"
    deprel = task_spec("deprel")
    assert deprel.conllu == "deprel" and not deprel.spans and not deprel.source_cap
    assert "nmod" in deprel.labels and not any(":" in label for label in deprel.labels)
    assert task_order(["deprel", "zz", "ner", "pos", "aa"]) == ["pos", "ner", "deprel", "aa", "zz"]
    with pytest.raises(KeyError, match=r"unknown task 'chunk'; known tasks: pos, ner, deprel"):
        task_spec("chunk")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": ["A"]}, "'labels' must be a list of at least two"),
        ({"labels": ["A", "B", "A"]}, "'labels' lists A more than once"),
        ({"metric": "f1"}, "'metric' must be one of accuracy, span_f1, found 'f1'"),
        ({"outside": "Z"}, "outside tag 'Z' is not among the labels"),
        (
            {"labels": ["O", "B-NP", "NP"]},
            "with an outside tag the other labels must be IOB2 .* found NP",
        ),
        ({"outside": None}, "metric span_f1 needs IOB2 labels and an 'outside' tag"),
        ({"conllu": "xpos"}, "'conllu' must be one of upos, deprel"),
        ({"lables": ["O"]}, r"unknown key\(s\) lables \(did you mean labels\?\)"),
        ({"source_cap": "yes"}, "'source_cap' must be true or false"),
    ],
)
def test_a_task_description_is_checked(change, message):
    raw = {k: v for k, v in {**CHUNK, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=rf"catalog x\.yaml, tasks\.chunk: {message}"):
        parse_task("catalog x.yaml", "chunk", raw)


# ---------------------------------------------------------------------------------------------
# A task the package never heard of


def test_a_catalog_adds_a_task_that_every_layer_then_knows(chunk_catalog, tmp_path):
    catalog = Catalog.load(chunk_catalog, tmp_path)
    assert catalog.tasks() == ["chunk"] and "chunk" in known_tasks()
    sentences = catalog.sentences("chunk", "xx", "train", "seen")
    assert [s.labels for s in sentences] == [("B-NP", "I-NP", "O"), ("B-NP", "O")]

    # Scoring: a span task gets the span metrics and its headline is span F1.
    gold = torch.tensor([[1, 2, 0], [1, 0, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    probs = torch.nn.functional.one_hot(gold, 3).float()
    scores = score_pair("chunk", probs, gold, mask)
    assert headline_metric("chunk") == "span_f1"
    assert scores["score"] == scores["span_f1"] == 1.0 and scores["n_entities"] == 2

    # Reports: Table 1 has the task's columns under its short name.
    assert [label for *_, label in task_headlines("chunk")] == [
        "NP F1",
        "NP F1 (valid BIO)",
        "NP token F1",
    ]
    rows = [("pf-lr", "p0", 0, "chunk", "xx", "span_f1", 0.5)]
    frame = pd.DataFrame(
        rows, columns=["model", "partition", "seed", "task", "lang", "metric", "value"]
    )
    assert table1(frame).loc["pf-lr", ("NP F1", "mean")] == 0.5


def test_a_runs_model_json_carries_its_task_descriptions(chunk_catalog, tmp_path):
    Catalog.load(chunk_catalog, tmp_path)
    description = ModelDescription.for_sizes(["chunk", "pos"], ["xx"], {"chunk": 3, "pos": 17}, 4)
    saved = json.loads(json.dumps(description.to_json()))
    assert saved["task_specs"]["chunk"]["labels"] == CHUNK["labels"]
    assert saved["task_specs"]["pos"]["labels"] == list(label_set("pos"))

    forget_task("chunk")  # a fresh process: only the run knows the task
    with pytest.raises(KeyError):
        task_spec("chunk")
    assert ModelDescription.from_json(saved) == description
    assert task_spec("chunk").title == "Noun-phrase chunking"

    saved["task_specs"]["chunk"]["labels"] = ["O", "B-X", "I-X"]
    forget_task("chunk")
    with pytest.raises(ConfigError, match=r"task 'chunk' has labels .* but its description lists"):
        ModelDescription.from_json(saved, "run/model.json")


def test_a_known_task_cannot_be_redefined(tmp_path):
    (tmp_path / "a.tsv").write_text("x\tNOUN\n", encoding="utf-8")
    path = tmp_path / "cat.yaml"
    pos = {**task_spec("pos").to_json(), "labels": ["NOUN", "VERB"]}
    pairs = {"pos": {"xx": {"format": "tsv", "test": "a.tsv"}}}
    path.write_text(yaml.safe_dump({"tasks": {"pos": pos}, "pairs": pairs}), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"catalog {path}: task 'pos' differs from its def"):
        Catalog.load(path, tmp_path)
    # The same description again is no conflict.
    path.write_text(
        yaml.safe_dump({"tasks": {"pos": task_spec("pos").to_json()}, "pairs": pairs}),
        encoding="utf-8",
    )
    assert Catalog.load(path, tmp_path).pairs() == [("pos", "xx")]


def test_an_undescribed_task_and_a_format_that_cannot_hold_it(tmp_path):
    (tmp_path / "a.tsv").write_text("x\tNOUN\n", encoding="utf-8")
    path = tmp_path / "cat.yaml"
    path.write_text(
        yaml.safe_dump({"pairs": {"srl": {"xx": {"format": "tsv", "test": "a.tsv"}}}}),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"unknown task 'srl'.*describe a new task under"):
        Catalog.load(path, tmp_path)
    path.write_text(
        yaml.safe_dump({"pairs": {"pos": {"xx": {"format": "wikiann", "test": "a.tsv"}}}}),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"format 'wikiann' holds IOB2 span tasks .*not 'pos'"):
        Catalog.load(path, tmp_path)


# ---------------------------------------------------------------------------------------------
# deprel from CoNLL-U


CONLLU = """\
# text = Le chat dort
1\tLe\tle\tDET\t_\t_\t2\tdet\t_\t_
2\tchat\tchat\tNOUN\t_\t_\t3\tnsubj:pass\t_\t_
3\tdort\tdormir\tVERB\t_\t_\t0\troot\t_\t_

"""


def test_deprel_reads_the_universal_relation_without_its_subtype(tmp_path):
    file = tmp_path / "x.conllu"
    file.write_text(CONLLU, encoding="utf-8")
    (sentence,) = read_sentences(file, "conllu", "deprel", "fr", "test")
    assert sentence.labels == ("det", "nsubj", "root")
    (pos,) = read_sentences(file, "conllu", "pos", "fr", "test")
    assert pos.words == sentence.words and pos.labels == ("DET", "NOUN", "VERB")
    file.write_text(CONLLU.replace("\troot\t", "\tsubj\t"), encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        read_sentences(file, "conllu", "deprel", "fr", "test")
    assert caught.value.line == 4 and caught.value.found == "subj"
    assert "a universal DEPREL (acl advcl" in str(caught.value)


def test_the_deprel_catalog_extends_the_paper_catalog(catalog, data_root):
    three = Catalog.load(DEPREL_CATALOG, data_root)
    assert three.tasks() == ["deprel", "ner", "pos"]
    assert three.name == "paper33-deprel"
    assert three.target_languages() == catalog.target_languages()
    assert {p: e for p, e in three.entries.items() if p[0] != "deprel"} == dict(catalog.entries)
    deprel = [lang for task, lang in three.pairs() if task == "deprel"]
    # every partitioned language and English; the bridge languages are POS and NER only
    assert deprel == sorted([*catalog.target_languages(), "en"])
    sentences = three.sentences("deprel", "wo", "dev", "seen")
    pos = catalog.sentences("pos", "wo", "dev", "seen")
    assert [s.words for s in sentences] == [s.words for s in pos]  # the same CoNLL-U words
    assert {label for s in sentences for label in s.labels} <= set(label_set("deprel"))


def test_extends_merges_and_rejects_a_cycle(tmp_path):
    (tmp_path / "a.conllu").write_text(CONLLU, encoding="utf-8")
    entry = {"format": "conllu", "test": "a.conllu", "test_as_train": True}
    base = {"name": "base", "languages": {"xx": {"uriel": "fra"}}, "pairs": {"pos": {"xx": entry}}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base), encoding="utf-8")
    child = {"extends": "base.yaml", "pairs": {"deprel": {"xx": entry, "yy": entry}}}
    (tmp_path / "child.yaml").write_text(yaml.safe_dump(child), encoding="utf-8")
    merged = Catalog.load(tmp_path / "child.yaml", tmp_path)
    assert merged.pairs() == [("deprel", "xx"), ("deprel", "yy"), ("pos", "xx")]
    assert merged.name == "base" and merged.uriel_code("xx") == "fra"

    (tmp_path / "base.yaml").write_text(
        yaml.safe_dump({**base, "extends": "child.yaml"}), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"base\.yaml: 'extends: child\.yaml' makes a cycle"):
        Catalog.load(tmp_path / "child.yaml", tmp_path)


# ---------------------------------------------------------------------------------------------
# Partitions of three tasks

THREE_TASKS = ("deprel", "ner", "pos")


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n_langs=st.sampled_from([1, 3, 5, 7, 9]))
def test_paper_partitions_of_three_tasks_satisfy_the_constraint(data, n_langs):
    """Over an odd number of languages, each with any non-empty set of the three tasks, the
    authors' alternation gives two valid partitions that never hold out the same pair, and
    holds out every pair that its parity picks unless that would break the constraint."""
    langs = [f"l{i}" for i in range(n_langs)]
    pairs = set()
    for lang in langs:
        tasks = data.draw(st.sets(st.sampled_from(THREE_TASKS), min_size=1), label=lang)
        pairs |= {(task, lang) for task in tasks}
    parts = [paper_partition(pairs, langs, i) for i in (0, 1)]
    for part in parts:
        assert not constraint_violations(part.heldout, part.seen)
        assert set(part.pairs) == pairs
    assert not set(parts[0].heldout) & set(parts[1].heldout)
    # A pair seen in both partitions could not have been held out in the one that picked it.
    for pair in pairs - set(parts[0].heldout) - set(parts[1].heldout):
        tasks = sorted({task for task, _ in pairs})
        index = sorted(itertools.product(tasks, langs)).index(pair) % 2
        part = parts[index]
        others = set(part.seen) - {pair}
        assert constraint_violations([*part.heldout, pair], others)


def test_paper_partitions_of_the_full_three_task_grid():
    langs = [f"l{i:02d}" for i in range(33)]
    pairs = set(itertools.product(["deprel", "ner", "pos"], langs))
    parts = [paper_partition(pairs, langs, i) for i in (0, 1)]
    for part in parts:
        held = {lang: {t for t, lang2 in part.heldout if lang2 == lang} for lang in langs}
        assert all(1 <= len(tasks) <= 2 for tasks in held.values())  # never a whole language
    assert set(parts[0].heldout) == set(parts[1].seen)


def test_a_no_data_language_of_three_tasks(data_root):
    three = Catalog.load(DEPREL_CATALOG, data_root)
    part = no_data_partition(three.pairs(), "wo")
    assert set(part.heldout) == {("deprel", "wo"), ("ner", "wo"), ("pos", "wo")}
    assert not constraint_violations(part.heldout, part.seen, unseen_languages=True)


def test_the_third_task_study_configs_are_demo_yaml_but_for_what_they_name():
    """experiments/configs/third_task: each config is demo.yaml with only the sections its
    header names CHANGED, all with one held-out set: the demo's partition 0."""
    from pfpyro.config import load_config

    folder = default_catalog_path().parents[1] / "configs"
    demo = load_config(folder / "demo-v1.yaml").to_dict()
    changed = {
        "two_tasks": {"partition", "models", "seeds"},
        "three_tasks": {"data", "partition", "models", "seeds"},
        "three_tasks_steps750": {"data", "partition", "train", "models", "seeds"},
        "three_tasks_steps1000": {"data", "partition", "train", "models", "seeds"},
    }
    for name, sections in changed.items():
        path = folder / "third_task" / f"{name}.yaml"
        config = load_config(path).to_dict()
        differ = {key for key in demo if key not in ("name", "source") and demo[key] != config[key]}
        assert differ == sections, name
        header = path.read_text(encoding="utf-8").split("CHANGED: ", 1)[1].split(".\n", 1)[0]
        assert {name.split(".")[0] for name in header.split(", ")} == sections, name
        if "data" in sections:
            assert {k: v for k, v in config["data"].items() if k != "catalog"} == {
                k: v for k, v in demo["data"].items() if k != "catalog"
            }
            assert config["data"]["catalog"] == "experiments/data/paper33-deprel.yaml"
        if "train" in sections:
            assert {k: v for k, v in config["train"].items() if k != "max_steps"} == {
                k: v for k, v in demo["train"].items() if k != "max_steps"
            }
        held = sorted(map(tuple, config["partition"]["heldout"]))
        assert held == [("ner", "eu"), ("ner", "ta"), ("ner", "vi"), ("ner", "yo"),
                        ("pos", "fi"), ("pos", "tr"), ("pos", "wo")]  # fmt: skip

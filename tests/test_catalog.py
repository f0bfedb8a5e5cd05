"""The paper's catalog over the real data, catalog validation, the data root and sentence caps."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from pfpyro.data import paths
from pfpyro.data.catalog import Catalog, default_catalog_path
from pfpyro.data.readers import read_sentences
from pfpyro.data.sampling import cap_sentences
from pfpyro.errors import ConfigError

# fmt: off
PAPER_LANGUAGES = [
    "aii", "am", "ar", "bm", "cy", "et", "eu", "fi", "fo", "gl", "gun", "he", "hsb", "hu", "hy",
    "id", "kk", "kmr", "ko", "kpv", "mt", "myv", "sme", "ta", "te", "th", "tl", "tr", "ug", "vi",
    "wo", "yo", "yue",
]
# fmt: on

SMALL_FILE = 400_000  # bytes; files up to this size are read by the fast test


def manifest_counts(data_root: Path) -> dict[Path, int]:
    """Sentence count of every file listed in MANIFEST.tsv (``files_and_sentences``)."""
    counts = {}
    with open(data_root / "MANIFEST.tsv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            for item in row["files_and_sentences"].split(";"):
                name, _, count = item.strip().rpartition("=")
                counts[(data_root / row["folder"] / name).resolve()] = int(count)
    return counts


def catalog_files(catalog: Catalog) -> dict[Path, tuple[str, str]]:
    """Every file the catalog names, with the (format, task) it is read as."""
    files = {}
    for (task, _), entry in catalog.entries.items():
        for paths_of_split in entry.files.values():
            for file in paths_of_split:
                files[file.resolve()] = (entry.format, task)
    return files


def count_file(file: Path, fmt: str, task: str) -> int:
    if fmt == "bio":  # one unsplit file: its three parts together are the whole file
        return sum(len(read_sentences(file, fmt, task, "xx", s)) for s in ("train", "dev", "test"))
    return len(read_sentences(file, fmt, task, "xx", "train"))


def check_files_against_manifest(catalog: Catalog, data_root: Path, small_only: bool) -> int:
    expected = manifest_counts(data_root)
    checked = 0
    for file, (fmt, task) in sorted(catalog_files(catalog).items()):
        if small_only and file.stat().st_size > SMALL_FILE:
            continue
        assert file in expected, f"{file} is not in MANIFEST.tsv"
        assert count_file(file, fmt, task) == expected[file], file
        checked += 1
    return checked


# ---------------------------------------------------------------------------------------------
# The paper's catalog


#: Languages with both tasks outside the paper's 33, for selection only (never partitioned).
BRIDGE_LANGUAGES = ["bg", "de", "el", "fa", "ja", "ro"]


def test_paper_catalog_covers_both_tasks_for_33_languages_english_and_the_bridges(catalog):
    assert catalog.path == default_catalog_path() and catalog.path.is_file()
    assert catalog.tasks() == ["ner", "pos"]
    assert catalog.target_languages() == PAPER_LANGUAGES
    assert catalog.languages() == sorted([*PAPER_LANGUAGES, "en", *BRIDGE_LANGUAGES])
    assert set(catalog.entries) == {
        (t, lang) for t in ("ner", "pos") for lang in catalog.languages()
    }
    assert catalog.absent_pairs() == [("ner", "myv"), ("ner", "sme"), ("ner", "th")]
    assert all(catalog.entry(*pair).reason for pair in catalog.absent_pairs())
    assert len(catalog.pairs()) == 2 * 40 - 3
    for lang in BRIDGE_LANGUAGES:  # both tasks, with dev data for validation
        for task in ("pos", "ner"):
            assert catalog.files(task, lang, "dev", "seen"), (task, lang)


def test_small_catalog_files_parse_and_match_the_manifest(catalog, data_root):
    assert check_files_against_manifest(catalog, data_root, small_only=True) >= 40


@pytest.mark.slow
def test_every_catalog_file_parses_and_matches_the_manifest(catalog, data_root):
    assert check_files_against_manifest(catalog, data_root, small_only=False) == len(
        catalog_files(catalog)
    )


def test_test_as_train_pair_trains_on_its_test_split_when_seen(catalog):
    entry = catalog.entry("pos", "aii")
    assert entry.test_as_train and "train" not in entry.files
    train = catalog.sentences("pos", "aii", "train", "seen")
    test = catalog.sentences("pos", "aii", "test", "heldout")
    assert [s.words for s in train] == [s.words for s in test] and len(test) == 57
    assert {s.split for s in train} == {"train"} and {s.split for s in test} == {"test"}
    assert catalog.sentences("pos", "aii", "test", "seen") == []
    assert catalog.sentences("pos", "aii", "dev", "seen") == []


def test_held_out_pairs_give_only_their_test_split(catalog):
    assert catalog.sentences("pos", "tr", "train", "heldout") == []
    assert catalog.sentences("pos", "tr", "dev", "heldout") == []
    assert len(catalog.sentences("pos", "tr", "test", "heldout")) == 983
    assert catalog.sentences("pos", "tr", "test", "seen") == []


def test_pairs_without_test_labels_use_their_dev_file_as_held_out_test(catalog):
    for lang in ("fi", "hu", "ko"):
        entry = catalog.entry("ner", lang)
        assert entry.files["test"] == entry.files["dev"]
        assert entry.files_for("dev", "seen") == entry.files_for("test", "heldout")
        assert entry.files_for("test", "seen") == ()


def test_several_treebanks_of_one_language_are_concatenated(catalog):
    entry = catalog.entry("pos", "kpv")
    assert len(entry.files["test"]) == 2
    sentences = catalog.sentences("pos", "kpv", "test", "heldout")
    sources = [Path(s.source).parent.name for s in sentences]
    assert sources == ["UD_Komi_Zyrian-IKDP"] * 117 + ["UD_Komi_Zyrian-Lattice"] * 190


def test_unsplit_bio_pair_gives_disjoint_seeded_splits(catalog):
    parts = {s: catalog.sentences("ner", "kpv", s, "seen") for s in ("train", "dev")}
    parts["test"] = catalog.sentences("ner", "kpv", "test", "heldout")
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [1971, 246, 247]
    lines = [s.line for part in parts.values() for s in part]
    assert len(set(lines)) == 2464


def test_xtreme_pos_pairs_take_every_split_from_xtreme(catalog):
    for lang in ("ar", "eu", "fi", "he", "id"):
        entry = catalog.entry("pos", lang)
        assert entry.format == "tsv"
        assert all(
            f.parent.parent.name == "ud_xtreme_udpos" for fs in entry.files.values() for f in fs
        )


def test_absent_pair_cannot_give_sentences(catalog):
    with pytest.raises(ConfigError, match="ner/th is absent"):
        catalog.sentences("ner", "th", "test", "heldout")
    with pytest.raises(ConfigError, match="not in the catalog"):
        catalog.entry("ner", "xx")
    with pytest.raises(ConfigError, match="unknown role"):
        catalog.sentences("pos", "tr", "test", "unseen")


# ---------------------------------------------------------------------------------------------
# Catalog validation on small catalogs in tmp_path

POS_FILE = "1\tdog\tdog\tNOUN\t_\t_\t0\troot\t_\t_\n\n"


def tiny_catalog(tmp_path: Path, pairs: dict, **top) -> Path:
    (tmp_path / "d").mkdir(exist_ok=True)
    (tmp_path / "d" / "a.conllu").write_text(POS_FILE, encoding="utf-8")
    (tmp_path / "d" / "b.conllu").write_text(POS_FILE * 2, encoding="utf-8")
    path = tmp_path / "cat.yaml"
    path.write_text(yaml.safe_dump({"pairs": pairs, **top}), encoding="utf-8")
    return path


GOOD = {"format": "conllu", "train": "d/a.conllu", "test": ["d/a.conllu", "d/b.conllu"]}


def test_tiny_catalog_loads_and_concatenates(tmp_path):
    path = tiny_catalog(tmp_path, {"pos": {"xx": GOOD, "yy": {"absent": True, "reason": "r"}}})
    catalog = Catalog.load(path, tmp_path)
    assert catalog.pairs() == [("pos", "xx")] and catalog.absent_pairs() == [("pos", "yy")]
    assert catalog.target_languages() == ["xx", "yy"]
    assert len(catalog.sentences("pos", "xx", "test", "heldout")) == 3
    (tmp_path / "d" / "b.conllu").unlink()
    with pytest.raises(ConfigError, match=r"pair pos/xx: file .*b\.conllu does not exist"):
        catalog.sentences("pos", "xx", "test", "heldout")


@pytest.mark.parametrize(
    ("pairs", "top", "message"),
    [
        ({"pos": {"xx": {**GOOD, "trian": "d/a.conllu"}}}, {}, "unknown key.*trian"),
        ({"pos": {"xx": {**GOOD, "format": "conll"}}}, {}, "unknown format 'conll'"),
        (
            {"ner": {"xx": GOOD}},
            {},
            "pair ner/xx: format 'conllu' holds tasks whose description names a CoNLL-U field",
        ),
        ({"pos": {"xx": {**GOOD, "dev": "d/missing.conllu"}}}, {}, r"pos/xx.*missing\.conllu"),
        ({"pos": {"xx": {"absent": True}}}, {}, "needs a 'reason'"),
        ({"pos": {"xx": {**GOOD, "test_as_train": True}}}, {}, "test_as_train is for pairs"),
        ({"pos": {"xx": {"format": "conllu", "train": "d/a.conllu"}}}, {}, "needs a 'test'"),
        ({"sentiment": {"xx": GOOD}}, {}, "unknown task 'sentiment'"),
        ({"pos": {False: GOOD}}, {}, "not a string"),  # YAML reads an unquoted `no:` as false
        ({"pos": {"xx": GOOD}}, {"target_languages": ["zz"]}, "no pairs for zz"),
        ({"pos": {"xx": GOOD}}, {"version": 2}, "unknown key.*version"),
        ({"pos": {"xx": GOOD}}, {"languages": ["xx"]}, "'languages' must map codes"),
        ({"pos": {"xx": GOOD}}, {"languages": {"xx": {"uriel": "x1"}}}, "languages.xx: 'uriel'"),
        (
            {"pos": {"xx": GOOD}},
            {"languages": {"xx": {"uriel": "wol", "nmae": "W"}}},
            r"languages.xx: unknown key\(s\) nmae \(did you mean name\?\)",
        ),
    ],
)
def test_catalog_validation_errors(tmp_path, pairs, top, message):
    path = tiny_catalog(tmp_path, pairs, **top)
    with pytest.raises(ConfigError, match=message):
        Catalog.load(path, tmp_path)


def test_the_language_table_reads_the_catalog_then_the_shipped_one(tmp_path):
    path = tiny_catalog(tmp_path, {"pos": {"xx": GOOD}}, languages={"xx": {"uriel": "WOL"}})
    catalog = Catalog.load(path, tmp_path)
    assert catalog.uriel_code("xx") == "wol"  # lower-cased
    assert catalog.uriel_code("fi") == "fin"  # from the shipped catalog
    with pytest.raises(ConfigError, match=r"language 'yy' has no entry under 'languages:'"):
        catalog.uriel_code("yy")


def test_missing_or_broken_catalog_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Catalog.load(tmp_path / "none.yaml", tmp_path)
    (tmp_path / "bad.yaml").write_text("pairs: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Catalog.load(tmp_path / "bad.yaml", tmp_path)


# ---------------------------------------------------------------------------------------------
# The data root


def test_data_root_prefers_explicit_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path))
    assert paths.data_root() == tmp_path.resolve()
    other = tmp_path / "other"
    other.mkdir()
    assert paths.data_root(other) == other.resolve()
    with pytest.raises(ConfigError, match="does not exist"):
        paths.data_root(tmp_path / "missing")
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=f"\\${paths.DATA_ENV}"):
        paths.data_root()


def test_data_root_falls_back_to_the_current_directory_then_the_repo(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    work = tmp_path / "work"
    (tmp_path / "shared" / "data").mkdir(parents=True)
    work.mkdir()
    monkeypatch.chdir(work)
    assert paths.data_root() == (tmp_path / "shared" / "data").resolve()
    monkeypatch.chdir(tmp_path)  # ../shared/data does not exist from here
    monkeypatch.setattr(paths, "repo_root", lambda: work)
    assert paths.data_root() == (tmp_path / "shared" / "data").resolve()
    monkeypatch.setattr(paths, "repo_root", lambda: tmp_path)
    with pytest.raises(ConfigError) as info:
        paths.data_root()
    message = str(info.value)
    assert "tried" in message and paths.DATA_ENV in message and "--data" in message


# ---------------------------------------------------------------------------------------------
# Sentence caps


def test_cap_keeps_a_seeded_subset_in_original_order(catalog):
    sentences = catalog.sentences("pos", "mt", "train", "seen")
    capped = cap_sentences(sentences, 100, seed=7)
    assert len(capped) == 100
    positions = [sentences.index(s) for s in capped]
    assert positions == sorted(positions)
    assert cap_sentences(sentences, 100, seed=7) == capped
    assert cap_sentences(list(sentences), 100, seed=8) != capped
    assert cap_sentences(sentences, None, seed=7) == sentences
    assert cap_sentences(sentences, 10**6, seed=7) == sentences
    assert cap_sentences(sentences, 0, seed=7) == []


def test_cap_by_sizes_keeps_a_seeded_subset_that_fits():
    sizes = [3, 1, 4, 1, 5, 9, 2, 6]
    kept = cap_sentences(range(8), 10, seed=3, sizes=sizes)
    assert kept and kept == sorted(kept) and sum(sizes[i] for i in kept) <= 10
    assert cap_sentences(range(8), 10, seed=3, sizes=sizes) == kept
    assert cap_sentences(range(8), sum(sizes), seed=3, sizes=sizes) == list(range(8))
    assert cap_sentences(range(8), 0, seed=3, sizes=sizes) == []
    with pytest.raises(ValueError, match="sizes"):
        cap_sentences(range(8), 10, seed=3, sizes=[1])


@pytest.mark.parametrize("cap", [-1, 2.5, True])
def test_bad_caps(cap):
    with pytest.raises(ConfigError, match="cap"):
        cap_sentences([1, 2, 3], cap, seed=0)

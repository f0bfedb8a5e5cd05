"""``pfpyro data summary`` and ``pfpyro data partition``, through ``pfpyro.cli.main``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pfpyro.cli import main
from pfpyro.commands import data as data_command

WORD = "{i}\tw{i}\tw\tNOUN\t_\t_\t0\troot\t_\t_\n"


def conllu(n_sentences: int) -> str:
    return "".join(WORD.format(i=1) + "\n" for _ in range(n_sentences))


def small_world(tmp_path: Path) -> tuple[Path, Path]:
    """A data root and catalog: pos and ner for a, b, c; ner/c absent."""
    root = tmp_path / "data"
    root.mkdir()
    for lang, n in (("a", 5), ("b", 3), ("c", 2)):
        (root / f"{lang}.conllu").write_text(conllu(n), encoding="utf-8")
        (root / f"{lang}.tsv").write_text("x\tB-PER\ny\tO\n\n" * n, encoding="utf-8")
    pos = {
        "a": {"format": "conllu", "train": "a.conllu", "dev": "b.conllu", "test": "c.conllu"},
        "b": {"format": "conllu", "test": "b.conllu", "test_as_train": True, "source": "B-TB"},
        "c": {"format": "conllu", "train": "c.conllu", "test": "a.conllu"},
    }
    ner = {
        "a": {"format": "tsv", "train": "a.tsv", "test": "b.tsv"},
        "b": {"format": "tsv", "train": "b.tsv", "test": "c.tsv"},
        "c": {"absent": True, "reason": "no NER corpus for c"},
    }
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        yaml.safe_dump({"target_languages": ["a", "b", "c"], "pairs": {"pos": pos, "ner": ner}}),
        encoding="utf-8",
    )
    return root, catalog


def run_cli(capsys, *args: str) -> tuple[int, list[str], list[str]]:
    code = main(["data", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def row(lines: list[str], task: str, lang: str) -> list[str]:
    (found,) = [line for line in lines if line.split()[:2] == [task, lang]]
    return found.split()


# ---------------------------------------------------------------------------------------------
# summary


def test_summary_prints_counts_by_role_and_absent_pairs(tmp_path, capsys):
    root, catalog = small_world(tmp_path)
    code, out, err = run_cli(capsys, "summary", "--data", str(root), "--catalog", str(catalog))
    assert code == 0 and err == []
    assert row(out, "pos", "a")[:6] == ["pos", "a", "conllu", "5", "3", "2"]
    assert row(out, "pos", "b")[:7] == ["pos", "b", "conllu", "3*", "-", "3", "B-TB"]
    assert row(out, "ner", "b")[:6] == ["ner", "b", "tsv", "3", "-", "2"]
    assert row(out, "ner", "c") == ["ner", "c", "absent", "no", "NER", "corpus", "for", "c"]
    assert out[-1].startswith("5 present pairs, 1 absent (ner/c)")
    assert out[-2] == (
        "words with FORM '_' inside a multiword token, read as the token's surface form: 0 (none)"
    )


def test_summary_counts_words_read_as_their_multiword_tokens_form(tmp_path, capsys):
    root, catalog = small_world(tmp_path)
    token = "1-2\tab\t_\t_\t_\t_\t_\t_\t_\t_\n"
    words = "".join(f"{i}\t_\tw\tNOUN\t_\t_\t0\troot\t_\t_\n" for i in (1, 2))
    (root / "b.conllu").write_text((token + words + "\n") * 3, encoding="utf-8")
    code, out, _ = run_cli(capsys, "summary", "--data", str(root), "--catalog", str(catalog))
    assert code == 0
    # b.conllu is pos/a's dev file and pos/b's test (which trains pos/b when seen): one file
    assert out[-2] == (
        "words with FORM '_' inside a multiword token, read as the token's surface form: 6 "
        "(pos/a dev 6, pos/b test 6, pos/b train 6)"
    )


def test_summary_of_a_corrupt_file_is_one_line_and_exit_2(tmp_path, capsys):
    root, catalog = small_world(tmp_path)
    (root / "b.tsv").write_text("x\tB-PER\ny\tB-MISC\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "summary", "--data", str(root), "--catalog", str(catalog))
    assert code == 2
    assert len(err) == 1 and f"{root / 'b.tsv'}:2: expected a ner tag" in err[0]
    assert "B-MISC" in err[0]


def test_summary_with_a_missing_catalog_file_is_one_line_and_exit_2(tmp_path, capsys):
    root, catalog = small_world(tmp_path)
    (root / "c.tsv").unlink()
    code, _, err = run_cli(capsys, "summary", "--data", str(root), "--catalog", str(catalog))
    assert code == 2
    assert len(err) == 1 and "pair ner/b" in err[0] and "c.tsv does not exist" in err[0]


def test_missing_data_root_is_one_line_and_exit_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, "summary", "--data", str(tmp_path / "nowhere"))
    assert code == 2 and len(err) == 1 and "nowhere" in err[0]


@pytest.mark.slow
def test_summary_of_the_real_data(capsys):
    code, out, err = run_cli(capsys, "summary")
    assert code == 0 and err == []
    assert row(out, "ner", "kpv")[:6] == ["ner", "kpv", "bio", "1971", "246", "247"]
    assert row(out, "pos", "en")[:6] == ["pos", "en", "conllu", "12543", "2002", "2077"]
    assert row(out, "pos", "yue")[:6] == ["pos", "yue", "conllu", "1004*", "-", "1004"]
    assert row(out, "ner", "th")[2] == "absent"
    assert out[-1].startswith("77 present pairs, 3 absent (ner/myv ner/sme ner/th)")
    assert row(out, "pos", "de")[:6] == ["pos", "de", "conllu", "977*", "799", "977"]
    assert out[-2].endswith(
        "surface form: 123 (pos/kk test 1, pos/kmr test 62, pos/myv test 60, pos/myv train 60)"
    )


# ---------------------------------------------------------------------------------------------
# partition


def test_partition_paper_schemes_on_the_real_catalog(capsys):
    code, out, err = run_cli(capsys, "partition", "--scheme", "paper-0")
    assert code == 0 and err == []
    assert out[0].startswith("partition paper-0 over 33 languages: 33 seen, 30 held out")
    assert "held out (30):" in out
    assert out[-1] == (
        "not partitioned (language not in the list): ner/bg ner/de ner/el ner/en ner/fa ner/ja "
        "ner/ro pos/bg pos/de pos/el pos/en pos/fa pos/ja pos/ro"
    )
    code, out1, _ = run_cli(capsys, "partition", "--scheme", "paper-1")
    held0 = next(line for line in out[out.index("held out (30):") :] if "pos (" in line)
    seen1 = next(line for line in out1 if line.startswith("  pos ("))
    assert set(held0.split(":")[1].split()) <= set(seen1.split(":")[1].split())


def test_partition_random_and_explicit(tmp_path, capsys):
    root, catalog = small_world(tmp_path)
    common = ["--data", str(root), "--catalog", str(catalog)]
    code, out, _ = run_cli(capsys, "partition", "--scheme", "random", "--seed", "5", *common)
    assert code == 0 and out[0].startswith("partition random (seed 5) over 3 languages")
    code, again, _ = run_cli(capsys, "partition", "--scheme", "random", "--seed", "5", *common)
    assert again == out
    code, out, _ = run_cli(
        capsys, "partition", "--scheme", "explicit", "--heldout", "ner/a", *common
    )
    assert code == 0
    assert out[out.index("held out (1):") + 1 :] == ["  ner (1): a", "  pos (0): "]
    code, out, _ = run_cli(capsys, "partition", "--scheme", "no-data", "--lang", "b", *common)
    assert code == 0 and out[0].startswith("partition no-data over 3 languages")
    assert out[out.index("held out (2):") + 1 :] == ["  ner (1): b", "  pos (1): b"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheme", "explicit", "--heldout", "pos/c"], "pos/c cannot be held out: language c"),
        (["--scheme", "explicit", "--heldout", "pos-c"], "TASK/LANG"),
        (["--scheme", "explicit"], "needs --heldout"),
        (["--scheme", "random", "--heldout", "pos/a"], "only for --scheme explicit"),
        (["--scheme", "paper-0", "--languages", "a,zz"], "unknown language(s) zz"),
        (["--scheme", "no-data"], "needs --lang"),
        (["--scheme", "paper-0", "--lang", "a"], "needs --lang LANG, and --lang is only"),
        (["--scheme", "no-data", "--lang", "zz"], "cannot leave out 'zz'"),
    ],
)
def test_partition_requests_that_cannot_be_met(tmp_path, capsys, args, message):
    root, catalog = small_world(tmp_path)
    code, out, err = run_cli(
        capsys, "partition", *args, "--data", str(root), "--catalog", str(catalog)
    )
    assert code == 2 and out == []
    assert len(err) == 1 and message in err[0]


# ---------------------------------------------------------------------------------------------
# help


@pytest.mark.parametrize("args", [["--help"], ["summary", "--help"], ["partition", "--help"]])
def test_every_help_has_an_example(capsys, args):
    with pytest.raises(SystemExit) as info:
        main(["data", *args])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and "pfpyro data " in out.split("example", 1)[1]


def test_data_without_an_action_prints_help_and_exits_2(capsys):
    assert main(["data"]) == 2
    assert "summary" in capsys.readouterr().out


def test_stand_alone_main(tmp_path, capsys):
    root, catalog = small_world(tmp_path)
    args = ["partition", "--scheme", "paper-1", "--data", str(root), "--catalog", str(catalog)]
    assert data_command.main(args) == 0
    assert capsys.readouterr().out.startswith("partition paper-1 over 3 languages")
    assert data_command.main(["partition", "--scheme", "explicit", "--data", str(root)]) == 2

"""The corpus readers: what they read, and that every kind of bad input names file and line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pfpyro.data import readers
from pfpyro.data.readers import read_sentences, split_80_10_10
from pfpyro.data.sentence import Sentence
from pfpyro.data.tasks import label_set
from pfpyro.errors import ConfigError, DataFormatError

UPOS = label_set("pos")
NER_TAGS = label_set("ner")

CONLLU = """\
# sent_id = s1
# text = Im Haus.
1-2\tIm\t_\t_\t_\t_\t_\t_\t_\t_
1\tIn\tin\tADP\t_\t_\t3\tcase\t_\t_
2\tdem\tder\tDET\t_\t_\t3\tdet\t_\t_
3\tHaus\tHaus\tNOUN\t_\t_\t0\troot\t_\t_
3.1\tist\tsein\tAUX\t_\t_\t_\t_\t3:cop\t_
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

# sent_id = s2
1\tquê hương\tquê hương\tNOUN\t_\t_\t0\troot\t_\t_

"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read(path: Path, fmt: str, task: str, split: str = "train") -> list[Sentence]:
    return read_sentences(path, fmt, task, "xx", split)


def raises_at(path: Path, line: int | None, fmt: str, task: str) -> DataFormatError:
    """Read ``path``, expect a DataFormatError at ``line`` and return it."""
    with pytest.raises(DataFormatError) as info:
        read(path, fmt, task)
    error = info.value
    assert error.path == str(path)
    assert error.line == line
    where = f"{path}:{line}" if line is not None else str(path)
    assert str(error).startswith(f"{where}: expected ")
    return error


#: Erzya-JR and Kurmanji-MG style: the words inside a multiword token have FORM "_"; an
#: underscore outside any token (Uyghur-UDT style) is real punctuation.
CONLLU_MWT = """\
# sent_id = m1
1-2\tdarîyê\t_\t_\t_\t_\t_\t_\t_\t_
1\t_\tder\tADP\t_\t_\t3\tcase\t_\t_
2\t_\tî\tDET\t_\t_\t3\tdet\t_\t_
3\tmal\tmal\tNOUN\t_\t_\t0\troot\t_\t_
4\t_\t_\tPUNCT\t_\t_\t3\tpunct\t_\t_
5-6\t_\t_\t_\t_\t_\t_\t_\t_\t_
5\t_\tx\tPUNCT\t_\t_\t3\tpunct\t_\t_
6\tnav\tnav\tNOUN\t_\t_\t3\tobl\t_\t_
7-8\tImHaus\t_\t_\t_\t_\t_\t_\t_\t_
7\tIm\tin\tADP\t_\t_\t8\tcase\t_\t_
8\t_\tHaus\tNOUN\t_\t_\t3\tobl\t_\t_
9\t_\t_\tPUNCT\t_\t_\t3\tpunct\t_\t_

"""


def test_conllu_words_without_a_form_inside_a_multiword_token_read_its_surface(tmp_path):
    (sentence,) = read(write(tmp_path, "mwt.conllu", CONLLU_MWT), "conllu", "pos")
    assert sentence.words == (
        "darîyê", "darîyê",  # both words of the token 1-2 read as its surface form
        "mal",
        "_",  # outside any token: a real underscore
        "_",  # inside a token whose own form is "_": nothing better to read
        "nav",
        "Im", "ImHaus",  # a word with its own form keeps it; the one without takes the token's
        "_",  # after the token 7-8 has ended
    )  # fmt: skip
    assert sentence.labels[:4] == ("ADP", "DET", "NOUN", "PUNCT")
    assert sentence.surface_words == 3


def test_conllu_without_multiword_gaps_counts_none(tmp_path):
    sentences = read(write(tmp_path, "plain.conllu", CONLLU), "conllu", "pos")
    assert [s.surface_words for s in sentences] == [0, 0]
    assert sentences[0].words[:2] == ("In", "dem")


# ---------------------------------------------------------------------------------------------
# What each format reads


def test_conllu_reads_form_and_upos_skipping_comments_ranges_and_empty_nodes(tmp_path):
    path = write(tmp_path, "a.conllu", CONLLU)
    first, second = read(path, "conllu", "pos", "dev")
    assert first.words == ("In", "dem", "Haus", ".")
    assert first.labels == ("ADP", "DET", "NOUN", "PUNCT")
    assert (first.task, first.lang, first.split, first.source) == ("pos", "xx", "dev", str(path))
    assert first.line == 4  # the first word, after two comments and the range line
    assert second.words == ("quê hương",)  # a FORM may hold spaces (Vietnamese VTB)
    assert second.line == 11


def test_tsv_reads_token_and_tag_for_either_task(tmp_path):
    path = write(tmp_path, "train-xx.tsv", "Se\tPRON\non\tAUX\n\nKyllä\tINTJ\n")
    sentences = read(path, "tsv", "pos")
    assert [s.words for s in sentences] == [("Se", "on"), ("Kyllä",)]
    assert [s.labels for s in sentences] == [("PRON", "AUX"), ("INTJ",)]
    assert [s.line for s in sentences] == [1, 4]
    ner = write(tmp_path, "dev-xx.tsv", "Borneon\tB-LOC\nsaarella\tO\n")
    assert read(ner, "tsv", "ner")[0].labels == ("B-LOC", "O")


def test_wikiann_strips_the_language_code_up_to_the_first_colon(tmp_path):
    path = write(tmp_path, "train", "en:R.H.\tB-ORG\nen:a:b\tO\nen::\tO\n\n")
    (sentence,) = read(path, "wikiann", "ner")
    assert sentence.words == ("R.H.", "a:b", ":")
    assert sentence.labels == ("B-ORG", "O", "O")


def test_masakhaner_maps_date_to_outside(tmp_path):
    path = write(tmp_path, "train.txt", "Nin O\n2019 B-DATE\nsan I-DATE\nBamako B-LOC\n\n")
    (sentence,) = read(path, "masakhaner", "ner")
    assert sentence.words == ("Nin", "2019", "san", "Bamako")
    assert sentence.labels == ("O", "O", "O", "B-LOC")


def bio_file(tmp_path: Path, n: int) -> Path:
    lines = []
    for i in range(n):
        lines.append(f"w{i} None O")
        lines.append(f"City{i} City{i} City{i} GPE 0.99 City_{i} B-LOC")
        lines.append("")
    return write(tmp_path, "x.bio", "\n".join(lines) + "\n")


def test_bio_reads_token_and_last_column_and_splits_80_10_10(tmp_path):
    path = bio_file(tmp_path, 25)
    parts = {split: read(path, "bio", "ner", split) for split in ("train", "dev", "test")}
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [20, 2, 3]  # 20, 22, 25
    everything = parts["train"] + parts["dev"] + parts["test"]
    assert sorted(s.words[0] for s in everything) == sorted(f"w{i}" for i in range(25))
    assert all(s.labels == ("O", "B-LOC") for s in everything)
    assert all(s.split == "test" for s in parts["test"])
    first = next(s for s in everything if s.words[0] == "w0")
    assert first.words == ("w0", "City0") and first.line == 1
    assert read(path, "bio", "ner", "train") == parts["train"]  # the same split every time


def test_bio_split_is_the_authors_seeded_shuffle():
    items = list(range(2464))
    state = random.getstate()
    try:
        random.seed(313)  # tools/split_wikiann.py: random.seed(313), then random.shuffle
        theirs = list(items)
        random.shuffle(theirs)
    finally:
        random.setstate(state)
    parts = split_80_10_10(items)
    assert parts["train"] == theirs[:1971]  # floor(0.8 * 2464)
    assert parts["dev"] == theirs[1971:2217]  # floor(0.9 * 2464)
    assert parts["test"] == theirs[2217:]
    assert split_80_10_10(items, seed=1)["train"] != parts["train"]


def test_bio_rejects_a_split_name_it_cannot_give(tmp_path):
    with pytest.raises(ConfigError, match="validation"):
        read(bio_file(tmp_path, 10), "bio", "ner", "validation")


def test_windows_line_ends_and_a_byte_order_mark_are_accepted(tmp_path):
    path = write(tmp_path, "w.tsv", "\ufeffSe\tPRON\r\non\tAUX\r\n")
    (sentence,) = read(path, "tsv", "pos")
    assert sentence.words == ("Se", "on") and sentence.labels == ("PRON", "AUX")


# ---------------------------------------------------------------------------------------------
# The fast path for clean two-column files must agree with the line loop.

TWO_COLUMN_CASES = [
    ("tsv", "pos", "a\tNOUN\nb\tVERB\n\nc\tX\n"),
    ("tsv", "pos", "a\tNOUN\n\nb\tVERB\n\n"),
    ("tsv", "ner", "a b\tB-PER\n \tO\n"),  # spaces inside tokens; a token that is a space
    ("wikiann", "ner", "en:a\tO\nen:b:c\tB-LOC\n\nen:d\tI-LOC\n\n"),
    ("masakhaner", "ner", "a O\nb B-DATE\nc I-DATE\n\nd B-PER\n"),
    ("tsv", "pos", "\na\tNOUN\n\n\nb\tVERB\n"),  # leading and repeated blank lines
    ("tsv", "pos", "a\tNOUN\n \nb\tVERB\n"),  # a whitespace-only line separates too
]


@pytest.mark.parametrize(("fmt", "task", "text"), TWO_COLUMN_CASES)
def test_fast_two_column_path_agrees_with_the_line_loop(tmp_path, monkeypatch, fmt, task, text):
    path = write(tmp_path, "f", text)
    fast = read(path, fmt, task)
    monkeypatch.setattr(readers, "_fast_two_columns", lambda *args: None)
    assert fast == read(path, fmt, task)


def test_fast_two_column_path_is_taken_for_clean_files():
    assert readers._fast_two_columns("a\tO\n\nb\tB-PER\n", "ner", readers._TSV) is not None
    assert readers._fast_two_columns("a\tO\n\n\nb\tO\n", "ner", readers._TSV) is None
    assert readers._fast_two_columns("a\tO\nb\tB-MISC\n", "ner", readers._TSV) is None


def test_real_two_column_files_read_the_same_on_both_paths(catalog, monkeypatch):
    """WikiANN (Rahimi), XTREME udpos and MasakhaNER, one small file each."""
    picks = [("ner", "mt", "train"), ("pos", "he", "dev"), ("ner", "bm", "dev")]
    fast = {p: catalog.sentences(*p, "seen") for p in picks}
    monkeypatch.setattr(readers, "_fast_two_columns", lambda *args: None)
    for pick in picks:
        assert fast[pick] and fast[pick] == catalog.sentences(*pick, "seen")


# ---------------------------------------------------------------------------------------------
# Bad input: each names the file and the line.

GOOD_WORD = "1\tdog\tdog\tNOUN\t_\t_\t0\troot\t_\t_\n"


def test_truncated_conllu_last_line(tmp_path):
    path = write(tmp_path, "t.conllu", GOOD_WORD + "2\tbarks\tbark\tVE")
    error = raises_at(path, 2, "conllu", "pos")
    assert "truncated" in error.expected and error.found == "2\tbarks\tbark\tVE"


def test_truncated_conllu_line_in_the_middle(tmp_path):
    path = write(tmp_path, "t.conllu", "# c\n" + GOOD_WORD + "2\tbarks\tbark\n\n")
    error = raises_at(path, 3, "conllu", "pos")
    assert "10 tab-separated" in error.expected


def test_conllu_wrong_column_count(tmp_path):
    path = write(tmp_path, "w.conllu", GOOD_WORD + "2\tbarks\tbark\tVERB\t_\t_\t1\tx\t_\t_\t_\n")
    raises_at(path, 2, "conllu", "pos")


def test_conllu_unknown_upos(tmp_path):
    path = write(tmp_path, "u.conllu", "\n" + GOOD_WORD + "2\tbarks\tbark\tVRB\t_\t_\t1\tx\t_\t_\n")
    error = raises_at(path, 3, "conllu", "pos")
    assert error.found == "VRB" and all(tag in error.expected for tag in UPOS)


@pytest.mark.parametrize("bad_id", ["3", "0", "x", "2-1", "1.0"])
def test_conllu_bad_word_ids(tmp_path, bad_id):
    path = write(tmp_path, "i.conllu", GOOD_WORD + GOOD_WORD.replace("1", bad_id, 1))
    raises_at(path, 2, "conllu", "pos")


def test_conllu_sentence_of_comments_only(tmp_path):
    path = write(tmp_path, "c.conllu", GOOD_WORD + "\n# only a comment\n")
    raises_at(path, 3, "conllu", "pos")


@pytest.mark.parametrize(
    ("fmt", "task", "text", "line"),
    [
        ("tsv", "pos", "a\tNOUN\nb\tVERB\tX\n", 2),
        ("tsv", "pos", "a\tNOUN\n\nb NOUN\n", 3),
        ("wikiann", "ner", "en:a\tO\nb\tO\n", 2),  # no language code
        ("masakhaner", "ner", "a O\nb  O\n", 2),
        ("bio", "ner", "a None O\nb c d O\n", 2),
    ],
)
def test_wrong_column_count_in_token_per_line_formats(tmp_path, fmt, task, text, line):
    raises_at(write(tmp_path, "f", text), line, fmt, task)


@pytest.mark.parametrize(
    ("fmt", "task", "text", "found"),
    [
        ("tsv", "pos", "a\tNOUN\nb\tNOUNS\n", "NOUNS"),
        ("tsv", "ner", "a\tO\nb\tB-MISC\n", "B-MISC"),
        ("wikiann", "ner", "en:a\tO\nen:b\tB-MISC\n", "B-MISC"),
        ("masakhaner", "ner", "a O\nb B-MISC\n", "B-MISC"),
        ("bio", "ner", "a None O\nb None B-GPE\n", "B-GPE"),
    ],
)
def test_unknown_tag(tmp_path, fmt, task, text, found):
    error = raises_at(write(tmp_path, "f", text), 2, fmt, task)
    assert error.found == found
    assert all(tag in error.expected for tag in (UPOS if task == "pos" else NER_TAGS))


def test_empty_token(tmp_path):
    raises_at(write(tmp_path, "f", "a\tO\n\tO\n"), 2, "tsv", "ner")


@pytest.mark.parametrize("text", [b"", b"\n\n", b"  \n"])
def test_empty_file(tmp_path, text):
    error = raises_at(write(tmp_path, "e.conllu", text), None, "conllu", "pos")
    assert "at least one sentence" in error.expected


def test_invalid_utf8(tmp_path):
    path = write(tmp_path, "b.tsv", b"a\tNOUN\n\nb\tVERB\nc\xff\tNOUN\n")
    error = raises_at(path, 4, "tsv", "pos")
    assert error.expected == "UTF-8 text" and "ff" in error.found


def test_truncated_last_line_in_token_per_line_formats(tmp_path):
    error = raises_at(write(tmp_path, "t.tsv", "a\tNOUN\nb\tVE"), 2, "tsv", "pos")
    assert "truncated" in error.expected


def test_missing_file_unknown_format_and_wrong_task(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read(tmp_path / "nope.conllu", "conllu", "pos")
    path = write(tmp_path, "a.conllu", CONLLU)
    with pytest.raises(ConfigError, match="unknown format 'conll'"):
        read(path, "conll", "pos")
    with pytest.raises(ConfigError, match="not 'ner'"):
        read(path, "conllu", "ner")

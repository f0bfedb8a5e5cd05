"""Readers of the corpus formats in ``shared/data``, each yielding :class:`Sentence` objects.

One dispatch, :func:`read_sentences`, reads a file in one of the :data:`FORMATS`:

``conllu``
    Universal Dependencies CoNLL-U; FORM of each word and the field the task's description
    names (:attr:`~pfpyro.data.tasks.TaskSpec.conllu`): UPOS, or DEPREL without its subtype.
    Some treebanks (Erzya-JR, Kurmanji-MG) give the syntactic words inside a multiword token
    no form of their own (FORM ``_``); such a word is read as the token's surface form,
    shared by its words, as UD's tools align them. A FORM ``_`` outside any multiword token
    is a real underscore (Uyghur-UDT's punctuation) and is kept.
``tsv``
    ``token<TAB>tag``, blank line between sentences: XTREME's udpos files (POS) and its PAN-X
    files ``{train,dev}-<lang>.tsv`` (NER); any task.
``wikiann``
    The Rahimi et al. (2019) WikiANN splits, ``<code>:<token><TAB><tag>`` (NER; IOB2 span
    tasks).
``bio``
    The unsplit Pan et al. (2017) WikiANN release, space-separated, tag in the last column,
    split 80/10/10 at random as the paper's authors did (see :func:`split_80_10_10`) (NER).
``masakhaner``
    MasakhaNER 1.0/2.0, ``token<SPACE>tag``; ``B-DATE``/``I-DATE`` are mapped to ``O`` so the
    tags are WikiANN's (NER).

Every reader is strict, because a silently misread corpus corrupts every number downstream:
invalid UTF-8, an empty file, a last line without its newline (a truncated file), a wrong
column count, an unknown tag or a broken CoNLL-U word ID each raise
:class:`~pfpyro.errors.DataFormatError` naming the file, the 1-based line and what was expected.

The CoNLL-U lines are split here rather than by :func:`conllu.parse_incr`, which is about ten
times slower (UD English-EWT train, 12,543 sentences: 6.5 s against 0.66 s, best of 3 on the
2 shared CPU cores of the development machine), drops line numbers and accepts a wrong column
count; the ``conllu`` package still decides what a valid word ID is
(:func:`conllu.parser.parse_id_value`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conllu.exceptions import ParseException
from conllu.parser import parse_id_value

from pfpyro.data.sentence import Sentence
from pfpyro.data.tasks import TaskSpec, label_set, task_spec
from pfpyro.errors import ConfigError, DataFormatError

SPLITS: tuple[str, ...] = ("train", "dev", "test")

#: The seed of the authors' WikiANN re-split (``tools/split_wikiann.py``: ``random.seed(313)``).
BIO_SPLIT_SEED = 313

#: MasakhaNER's DATE entities are not in WikiANN's tag set; they become "outside".
MASAKHANER_TAG_MAP: Mapping[str, str] = {"B-DATE": "O", "I-DATE": "O"}

CONLLU_COLUMNS = 10

_Lines = list[str]
_Parser = Callable[[str, str, str, str, str], list[Sentence]]  # path, text, task, lang, split


#: Which tasks a format can hold: any, those whose description names a CoNLL-U field, or
#: IOB2 span tasks (with an outside tag).
HOLDS: Mapping[str, str] = {
    "any": "any task",
    "conllu": "tasks whose description names a CoNLL-U field ('conllu: upos|deprel')",
    "spans": "IOB2 span tasks (a description with an 'outside' tag)",
}


@dataclass(frozen=True)
class Format:
    """A corpus file format: its name in catalogs, the tasks it can hold (a key of
    :data:`HOLDS`), and its parser."""

    name: str
    holds: str
    description: str
    parse: _Parser

    def can_hold(self, spec: TaskSpec) -> bool:
        if self.holds == "conllu":
            return spec.conllu is not None
        if self.holds == "spans":
            return spec.spans
        return True


# ---------------------------------------------------------------------------------------------
# Reading a file, with the checks every format shares.


def read_text(path: str | Path) -> str:
    """The text of a UTF-8 file, ending in a newline, with Windows line ends made Unix ones.

    Raises DataFormatError for an empty (or all-blank) file, invalid UTF-8 (naming the line of
    the bad byte) and a last line without a newline, which is how a truncated copy looks.
    A byte-order mark and Windows line ends are accepted.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a corpus file") from None
    if not raw.strip():
        raise DataFormatError(path, None, "at least one sentence", "an empty file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        bad = raw[error.start : error.end].hex(" ")
        raise DataFormatError(path, line, "UTF-8 text", f"the byte(s) {bad}") from None
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        last = text.rsplit("\n", 1)[-1]
        raise DataFormatError(
            path,
            text.count("\n") + 1,
            "a newline at the end of the last line (the file looks truncated)",
            last,
        )
    return text


def read_lines(path: str | Path) -> _Lines:
    """The lines of :func:`read_text`, without their newlines (same checks)."""
    return read_text(path).split("\n")[:-1]


def blocks(lines: _Lines) -> Iterator[tuple[int, _Lines]]:
    """Blank-line separated blocks as (1-based line of the block's first line, its lines)."""
    block: _Lines = []
    start = 0
    for number, line in enumerate(lines, 1):
        if not line or line.isspace():
            if block:
                yield start, block
                block = []
        else:
            if not block:
                start = number
            block.append(line)
    if block:
        yield start, block


# ---------------------------------------------------------------------------------------------
# CoNLL-U


#: The CoNLL-U column (0-based) of each field a task can take its tags from.
CONLLU_FIELD_COLUMN: Mapping[str, int] = {"upos": 3, "deprel": 7}


def _parse_conllu(path: str, text: str, task: str, lang: str, split: str) -> list[Sentence]:
    """FORM and the task's field of each word (UPOS, or DEPREL without its ``:subtype``);
    ``#`` comments, ``n-m`` ranges and ``n.m`` nodes skipped."""
    spec = task_spec(task)
    field_name = spec.conllu or "upos"
    column = CONLLU_FIELD_COLUMN[field_name]
    labels = spec.labels
    known = frozenset(labels)
    what = "a UPOS tag" if field_name == "upos" else "a universal DEPREL"
    sentences = []
    for start, block in blocks(text.split("\n")[:-1]):
        words: list[str] = []
        tags: list[str] = []
        first = 0
        token_end, token_form, surface = 0, "", 0  # the multiword token being read
        for offset, line in enumerate(block):
            if line[0] == "#":
                continue
            number = start + offset
            cols = line.split("\t")
            if len(cols) != CONLLU_COLUMNS:
                raise DataFormatError(
                    path, number, f"{CONLLU_COLUMNS} tab-separated CoNLL-U columns", line
                )
            word_id = cols[0]
            if not (word_id.isascii() and word_id.isdigit()):
                parsed = _check_skipped_id(path, number, word_id)
                if parsed[1] == "-":  # a multiword token n-m: its words follow
                    token_end, token_form = int(parsed[2]), cols[1]
                continue
            if int(word_id) != len(words) + 1:
                raise DataFormatError(path, number, f"word ID {len(words) + 1}", word_id)
            form, tag = cols[1], cols[column]
            if form == "_" and int(word_id) <= token_end and token_form not in ("", "_"):
                form = token_form
                surface += 1
            if field_name == "deprel":
                tag = tag.split(":", 1)[0]
            if not form:
                raise DataFormatError(path, number, "a non-empty FORM", line)
            if tag not in known:
                raise DataFormatError(path, number, f"{what} ({' '.join(labels)})", cols[column])
            if not words:
                first = number
            words.append(form)
            tags.append(tag)
        if not words:
            raise DataFormatError(path, start, "word lines after the comments", block[-1])
        sentences.append(
            Sentence(tuple(words), tuple(tags), task, lang, split, path, first, surface)
        )
    return sentences


def _check_skipped_id(path: str, number: int, word_id: str) -> tuple:
    """A non-integer ID must be a multiword-token range ``n-m`` or an empty node ``n.m``;
    returns it parsed, ``(n, "-", m)`` or ``(n, ".", m)``."""
    try:
        parsed = parse_id_value(word_id)
    except ParseException:
        parsed = None
    if not isinstance(parsed, tuple):
        raise DataFormatError(path, number, "a CoNLL-U word ID (n, n-m or n.m)", word_id)
    return parsed


# ---------------------------------------------------------------------------------------------
# Token-per-line formats: token first, tag last.


@dataclass(frozen=True)
class _Columns:
    """The layout of a token-per-line format (``sep`` None: any run of spaces or tabs)."""

    sep: str | None
    widths: tuple[int, ...]
    layout: str
    code_prefix: bool = False  # "<code>:<token>": strip up to the first colon
    tag_map: Mapping[str, str] = field(default_factory=dict)


_TSV = _Columns("\t", (2,), "token<TAB>tag")
_WIKIANN = _Columns("\t", (2,), "<code>:<token><TAB><tag>", code_prefix=True)
_MASAKHANER = _Columns(" ", (2,), "token<SPACE>tag", tag_map=MASAKHANER_TAG_MAP)
_BIO = _Columns(" ", (3, 7), "TOKEN INFO TAG with 3 or 7 space-separated columns")
#: A labelled IOB file of one's own (``pfpyro update``): token first, tag last, 2 to 10
#: columns separated by spaces or tabs (``Dakar B-LOC``; CoNLL-2003's four columns).
_IOB = _Columns(None, tuple(range(2, 11)), "token ... tag, 2 to 10 columns, tag last")


def _parse_columns(
    path: str, text: str, task: str, lang: str, split: str, cols: _Columns
) -> list[Sentence]:
    """Sentences of a ``token ... tag`` file; see :func:`_fast_two_columns` for the fast path,
    this loop is the reference and the one that reports errors."""
    fast = _fast_two_columns(text, task, cols)
    if fast is not None:
        return [Sentence(w, t, task, lang, split, path, n) for n, w, t in fast]
    labels = label_set(task)
    known = frozenset(labels)
    sentences = []
    for start, block in blocks(text.split("\n")[:-1]):
        words: list[str] = []
        tags: list[str] = []
        for offset, line in enumerate(block):
            fields = line.split(cols.sep)
            if len(fields) not in cols.widths:
                raise DataFormatError(path, start + offset, cols.layout, line)
            token, tag = fields[0], fields[-1]
            if cols.code_prefix:
                colon = token.find(":")
                if colon < 0:
                    raise DataFormatError(path, start + offset, cols.layout, line)
                token = token[colon + 1 :]
            if not token:
                raise DataFormatError(path, start + offset, "a non-empty token", line)
            tag = cols.tag_map.get(tag, tag)
            if tag not in known:
                raise DataFormatError(
                    path, start + offset, f"a {task} tag ({' '.join(labels)})", fields[-1]
                )
            words.append(token)
            tags.append(tag)
        sentences.append(Sentence(tuple(words), tuple(tags), task, lang, split, path, start))
    return sentences


def _fast_two_columns(
    text: str, task: str, cols: _Columns
) -> list[tuple[int, tuple[str, ...], tuple[str, ...]]] | None:
    """(line, words, tags) per sentence of a clean two-column file, or None when not clean.

    Clean: every line is blank or one valid ``token<sep>tag`` line (one regular-expression
    scan, in C), no whitespace-only lines, no leading or repeated blank lines. Such a file is
    then cut with ``str.split`` per sentence instead of per line, about twice as fast as the
    line loop on WikiANN; anything else goes through the loop, which says what is wrong.
    """
    if cols.sep is None or cols.widths != (2,) or text.startswith("\n") or "\n\n\n" in text:
        return None
    sep = re.escape(cols.sep)
    not_sep = f"[^{sep}\\n]"
    prefix = f"[^:{sep}\\n]*:" if cols.code_prefix else ""
    tags = "|".join(re.escape(t) for t in (*label_set(task), *cols.tag_map))
    valid_line = f"{prefix}{not_sep}+{sep}(?:{tags})"
    if re.search(f"^(?!{valid_line}$).+$", text, flags=re.MULTILINE):
        return None
    if cols.code_prefix:
        text = re.sub(f"^{prefix}", "", text, flags=re.MULTILINE)
    for old, new in cols.tag_map.items():
        text = re.sub(f"{sep}{re.escape(old)}$", cols.sep + new, text, flags=re.MULTILINE)
    out = []
    line = 1
    for block in text.rstrip("\n").split("\n\n"):
        fields = block.replace("\n", cols.sep).split(cols.sep)
        out.append((line, tuple(fields[0::2]), tuple(fields[1::2])))
        line += block.count("\n") + 2
    return out


def _parse_tsv(path: str, text: str, task: str, lang: str, split: str) -> list[Sentence]:
    return _parse_columns(path, text, task, lang, split, _TSV)


def _parse_wikiann(path: str, text: str, task: str, lang: str, split: str) -> list[Sentence]:
    return _parse_columns(path, text, task, lang, split, _WIKIANN)


def _parse_masakhaner(path: str, text: str, task: str, lang: str, split: str) -> list[Sentence]:
    """MasakhaNER ``token tag`` lines; ``B-DATE``/``I-DATE`` become ``O``, other tags must be
    WikiANN's (PER, ORG, LOC in IOB2)."""
    return _parse_columns(path, text, task, lang, split, _MASAKHANER)


def _parse_bio(path: str, text: str, task: str, lang: str, split: str) -> list[Sentence]:
    """One split of an unsplit Pan et al. (2017) ``.bio`` file (see :func:`split_80_10_10`).

    Each line is ``TOKEN INFO... TAG`` separated by single spaces, INFO being either ``None``
    or five fields (Wikipedia title, mention, type, confidence, English title): 3 or 7 columns.
    """
    if split not in SPLITS:
        raise ConfigError(f"{path}: a .bio file is split into {SPLITS}, not {split!r}")
    return split_80_10_10(_parse_columns(path, text, task, lang, split, _BIO))[split]


def split_80_10_10(
    sentences: list[Sentence], seed: int = BIO_SPLIT_SEED
) -> dict[str, list[Sentence]]:
    """The authors' random 80/10/10 train/dev/test split of an unsplit WikiANN file.

    Exactly: ``rng = random.Random(seed)``; ``rng.shuffle`` the list of sentences in file order;
    with ``n`` sentences, ``train = [:floor(0.8 n)]``, ``dev = [floor(0.8 n):floor(0.9 n)]``,
    ``test`` the rest (``tools/split_wikiann.py`` of cambridgeltl/parameter-factorization).
    ``Random(313).shuffle`` gives the same permutation as their ``random.seed(313)`` followed
    by ``random.shuffle``; their script seeds once and then splits every file of a folder in
    ``os.listdir`` order, so our split equals theirs for the first file they split. We reseed
    per file, which makes the split independent of what else is in the folder.
    """
    order = list(sentences)
    random.Random(seed).shuffle(order)
    train_end = int(len(order) * 0.8)
    dev_end = int(len(order) * 0.9)
    return {
        "train": order[:train_end],
        "dev": order[train_end:dev_end],
        "test": order[dev_end:],
    }


# ---------------------------------------------------------------------------------------------
# The dispatch.

FORMATS: Mapping[str, Format] = {
    f.name: f
    for f in (
        Format("conllu", "conllu", "UD CoNLL-U (FORM, UPOS or DEPREL)", _parse_conllu),
        Format("tsv", "any", "token<TAB>tag (XTREME udpos, PAN-X)", _parse_tsv),
        Format("wikiann", "spans", "<code>:<token><TAB><tag> (Rahimi splits)", _parse_wikiann),
        Format("bio", "spans", "unsplit Pan et al. .bio, seeded 80/10/10 split", _parse_bio),
        Format("masakhaner", "spans", "token<SPACE>tag, DATE mapped to O", _parse_masakhaner),
    )
}


def check_format(fmt: str, task: str) -> Format:
    """The :class:`Format` called ``fmt``; a ConfigError if it is unknown or cannot hold
    ``task``."""
    try:
        spec = FORMATS[fmt]
    except KeyError:
        raise ConfigError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}") from None
    try:
        task_description = task_spec(task)
    except KeyError as error:
        raise ConfigError(error.args[0]) from None
    if not spec.can_hold(task_description):
        raise ConfigError(f"format {fmt!r} holds {HOLDS[spec.holds]}, not {task!r}")
    return spec


def read_sentences(path: str | Path, fmt: str, task: str, lang: str, split: str) -> list[Sentence]:
    """All sentences of ``path`` read as ``fmt``, labelled with ``task``, ``lang``, ``split``.

    For ``bio`` files, ``split`` also selects which part of the seeded 80/10/10 split to return.
    A file without a single sentence is a DataFormatError.
    """
    spec = check_format(fmt, task)
    text = read_text(path)
    sentences = spec.parse(str(path), text, task, lang, split)
    if not sentences and fmt != "bio":
        raise DataFormatError(path, None, "at least one sentence", "none")
    return sentences


# ---------------------------------------------------------------------------------------------
# Unlabelled pools: the words of each sentence and its line, whatever labels the file has.

#: Formats of an unlabelled pool (``pfpyro suggest``): one sentence a line, split on spaces;
#: CoNLL-U (FORM); IOB or any token-first column file (first column; labels ignored).
POOL_FORMATS = ("text", "conllu", "iob")


def pool_format(path: str | Path) -> str:
    """The pool format of a file by its extension: .conllu, .iob/.bio/.tsv/.conll, else text."""
    suffix = Path(path).suffix.lower()
    if suffix == ".conllu":
        return "conllu"
    return "iob" if suffix in (".iob", ".bio", ".tsv", ".conll") else "text"


def read_pool(path: str | Path, fmt: str | None = None) -> list[tuple[int, tuple[str, ...]]]:
    """(1-based line, words) of each sentence of an unlabelled pool (labels, if any, are not
    read); ``fmt`` one of :data:`POOL_FORMATS`, by default from the extension. Blank lines of a
    text pool are skipped; a pool without a sentence is a DataFormatError."""
    fmt = fmt or pool_format(path)
    if fmt not in POOL_FORMATS:
        raise ConfigError(f"unknown pool format {fmt!r}; known: {', '.join(POOL_FORMATS)}")
    lines = read_lines(path)
    if fmt == "text":
        pool = [(n, tuple(line.split())) for n, line in enumerate(lines, 1) if line.strip()]
    else:
        pool = []
        for start, block in blocks(lines):
            words = _pool_words(str(path), start, block, fmt)
            if words:
                pool.append((start, words))
    if not pool:
        raise DataFormatError(path, None, "at least one sentence", "none")
    return pool


#: Formats of a file of one's own labels (``pfpyro update``): CoNLL-U (FORM and the task's
#: field), or IOB (token first, tag last, by spaces or tabs).
LABEL_FORMATS = ("conllu", "iob")


def read_labelled(path: str | Path, task: str, lang: str, fmt: str | None = None) -> list[Sentence]:
    """The labelled sentences of ``path`` for ``task``: ``fmt`` one of
    :data:`LABEL_FORMATS`, by default from the extension as for a pool (:func:`pool_format`).
    The checks of :func:`read_sentences`: a tag outside the task's labels, a wrong column
    count or an empty file is a DataFormatError naming the file and line."""
    fmt = fmt or pool_format(path)
    if fmt not in LABEL_FORMATS:
        raise ConfigError(
            f"{path}: labels are read from {' or '.join(LABEL_FORMATS)} files (.conllu; .iob, "
            f".bio, .tsv, .conll), not {fmt!r}: give --format"
        )
    if fmt == "conllu":
        return read_sentences(path, "conllu", task, lang, "train")
    try:
        task_spec(task)
    except KeyError as error:
        raise ConfigError(error.args[0]) from None
    sentences = _parse_columns(str(path), read_text(path), task, lang, "train", _IOB)
    if not sentences:
        raise DataFormatError(path, None, "at least one sentence", "none")
    return sentences


def _pool_words(path: str, start: int, block: _Lines, fmt: str) -> tuple[str, ...]:
    words = []
    for offset, line in enumerate(block):
        if fmt == "conllu":
            if line[0] == "#":
                continue
            cols = line.split("\t")
            if len(cols) != CONLLU_COLUMNS:
                raise DataFormatError(
                    path, start + offset, f"{CONLLU_COLUMNS} tab-separated CoNLL-U columns", line
                )
            if not (cols[0].isascii() and cols[0].isdigit()):
                _check_skipped_id(path, start + offset, cols[0])
                continue
            words.append(cols[1])
        else:
            fields = line.split()
            if line[0].isspace() or not fields:
                raise DataFormatError(path, start + offset, "a token in the first column", line)
            words.append(fields[0])
    return tuple(words)


__all__ = [
    "BIO_SPLIT_SEED",
    "CONLLU_FIELD_COLUMN",
    "FORMATS",
    "HOLDS",
    "LABEL_FORMATS",
    "MASAKHANER_TAG_MAP",
    "POOL_FORMATS",
    "SPLITS",
    "Format",
    "blocks",
    "check_format",
    "pool_format",
    "read_labelled",
    "read_lines",
    "read_pool",
    "read_sentences",
    "read_text",
    "split_80_10_10",
]

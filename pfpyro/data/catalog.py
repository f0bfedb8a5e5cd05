"""The catalog of task–language pairs: which files hold each split, and in which format.

A catalog is a YAML file (the paper's is ``experiments/data/paper33.yaml``; its header
documents the keys). :class:`Catalog` validates it, resolves its paths against a data root,
and hands out sentences by the role a pair plays in a partition:

* ``seen``: ``train`` (the test file when the pair is ``test_as_train``) and ``dev``; no test.
* ``heldout``: ``test`` only; a held-out pair's training data must never reach a model.

A split the pair lacks gives an empty list, so callers need no special cases.

A catalog may ``extends: <file>`` another (a path relative to itself): it then holds the other
catalog's languages, tasks and pairs, and adds or replaces entries with its own (a pair the
child lists replaces the parent's; name, description and target_languages are the child's when
it gives them). Its ``tasks:`` section describes the tasks it adds (:mod:`pfpyro.data.tasks`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pfpyro.config import unknown_keys_message
from pfpyro.data.pairs import Pair
from pfpyro.data.paths import data_root as find_data_root
from pfpyro.data.paths import default_catalog_path
from pfpyro.data.readers import SPLITS, check_format, read_sentences
from pfpyro.data.sentence import Sentence
from pfpyro.data.tasks import add_tasks, known_tasks, parse_tasks
from pfpyro.errors import ConfigError

ROLES: tuple[str, ...] = ("seen", "heldout")

_TOP_KEYS = frozenset(
    {"name", "description", "extends", "target_languages", "languages", "tasks", "pairs"}
)
_LANGUAGE_KEYS = frozenset({"uriel", "name"})
_PRESENT_KEYS = frozenset({"format", "source", "test_as_train", *SPLITS})
_ABSENT_KEYS = frozenset({"absent", "reason", "source"})


@dataclass(frozen=True)
class CatalogEntry:
    """One (task, lang) pair of a catalog: its files per split, or why it is absent."""

    task: str
    lang: str
    format: str = ""
    files: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)
    test_as_train: bool = False
    absent: bool = False
    reason: str = ""
    source: str = ""

    @property
    def pair(self) -> Pair:
        return (self.task, self.lang)

    def files_for(self, split: str, role: str) -> tuple[Path, ...]:
        """The files that give ``split`` when the pair plays ``role`` (see the module doc)."""
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; known roles: {', '.join(ROLES)}")
        if self.absent:
            raise ConfigError(f"pair {self.task}/{self.lang} is absent: {self.reason}")
        if role == "heldout":
            return self.files.get("test", ()) if split == "test" else ()
        if split == "test":
            return ()
        if split == "train" and self.test_as_train:
            return self.files.get("test", ())
        return self.files.get(split, ())


@dataclass(frozen=True)
class LanguageInfo:
    """What a catalog says of one language: its ISO 639-3 code as URIEL (lang2vec) knows it
    (NS, language families, the typology of Table 2) and a display name."""

    code: str
    uriel: str
    name: str = ""


@dataclass(frozen=True)
class LanguageTable:
    """A catalog's ``languages:`` section: who each language is (:class:`LanguageInfo`)."""

    path: Path
    entries: Mapping[str, LanguageInfo]

    @classmethod
    def read(cls, path: str | Path) -> LanguageTable:
        """The section of a catalog file, checked, without reading its data files (so the
        shipped catalog's table serves even where no data root exists)."""
        path = Path(path)
        raw = read_catalog_yaml(path)
        section = raw.get("languages")
        return cls(path, _parse_languages(f"catalog {path}", section))

    def language(self, lang: str) -> LanguageInfo:
        """``lang``'s entry; one the table lacks comes from the shipped catalog's table, and
        ConfigError names this file and the entry to add when neither has it."""
        if lang in self.entries:
            return self.entries[lang]
        shipped = shipped_languages()
        if shipped is not self and lang in shipped.entries:
            return shipped.entries[lang]
        raise ConfigError(
            f"catalog {self.path}: language {lang!r} has no entry under 'languages:'; add "
            f"'{lang}: {{uriel: <ISO 639-3 code>, name: <name>}}' (URIEL needs the code)"
        )

    def uriel_code(self, lang: str) -> str:
        """The ISO 639-3 code URIEL (lang2vec) knows ``lang`` by."""
        return self.language(lang).uriel

    def where(self, lang: str) -> str:
        """The file and entry that gave ``lang``'s code, for error messages."""
        source = self.path if lang in self.entries else shipped_languages().path
        return f"catalog {source}, languages.{lang}"


@functools.cache
def shipped_languages() -> LanguageTable:
    """The shipped catalog's language table: the default for every catalog."""
    return LanguageTable.read(default_catalog_path())


def read_catalog_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A catalog file's top-level mapping, with what it ``extends`` merged in (module doc)."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"catalog {path}: expected a mapping at the top level")
    base = raw.get("extends")
    if base is None:
        return raw
    if not isinstance(base, str) or not base:
        raise ConfigError(f"catalog {path}: 'extends' must be the path of another catalog")
    base_path = (path.parent / base).resolve()
    if base_path in (*chain, path.resolve()):
        raise ConfigError(f"catalog {path}: 'extends: {base}' makes a cycle")
    parent = read_catalog_yaml(base_path, (*chain, path.resolve()))
    merged = {k: v for k, v in parent.items() if k != "extends"}
    for key in ("languages", "tasks"):
        own = raw.get(key)
        if own is None:
            merged[key] = parent.get(key)
        elif isinstance(own, dict):
            merged[key] = {**(parent.get(key) or {}), **own}
        else:
            merged[key] = own  # not a mapping: the section's parser says so
    pairs = {task: dict(langs) for task, langs in (parent.get("pairs") or {}).items()}
    own_pairs = raw.get("pairs")
    if isinstance(own_pairs, dict):
        for task, langs in own_pairs.items():
            if not isinstance(langs, dict):
                raise ConfigError(
                    f"catalog {path}: expected a mapping of languages under task {task!r}"
                )
            pairs.setdefault(task, {}).update(langs)
    elif own_pairs is not None:
        raise ConfigError(f"catalog {path}: 'pairs' must be a mapping {{task: {{lang: ...}}}}")
    merged["pairs"] = pairs
    for key in ("name", "description", "target_languages"):
        if key in raw:
            merged[key] = raw[key]
    return merged


def _read_yaml(path: Path) -> Any:
    """A catalog file's YAML; ConfigError if it is missing or not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"catalog {path} does not exist") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"catalog {path} is not valid YAML: {error}") from None


def _parse_languages(where: str, raw: Any) -> dict[str, LanguageInfo]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'languages' must map codes to {{uriel: ..., name: ...}}")
    table = {}
    for code, spec in raw.items():
        entry = f"{where}, languages.{code}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{entry}: expected {{uriel: <ISO 639-3 code>, name: ...}}")
        _no_unknown_keys(entry, spec, _LANGUAGE_KEYS)
        uriel = spec.get("uriel")
        if not isinstance(uriel, str) or len(uriel) != 3 or not uriel.isalpha():
            raise ConfigError(
                f"{entry}: 'uriel' must be a 3-letter ISO 639-3 code, found {uriel!r}"
            )
        table[str(code)] = LanguageInfo(str(code), uriel.lower(), str(spec.get("name", "")))
    return table


@dataclass(frozen=True)
class Catalog:
    """All pairs of one catalog file, with paths resolved against ``data_root``."""

    path: Path
    data_root: Path
    entries: Mapping[Pair, CatalogEntry]
    target: tuple[str, ...]
    name: str = ""
    description: str = ""
    language_table: LanguageTable | None = None  # its ``languages:`` section (None: shipped)

    @classmethod
    def load(cls, path: str | Path | None = None, data_root: str | Path | None = None) -> Catalog:
        """Read and validate a catalog; every file it names must exist under the data root.

        ``path`` defaults to :func:`default_catalog_path`, ``data_root`` to
        :func:`pfpyro.data.paths.data_root`.
        """
        path = Path(path) if path is not None else default_catalog_path()
        root = find_data_root(data_root)
        return _parse_catalog(path, root, read_catalog_yaml(path))

    def pairs(self) -> list[Pair]:
        """The present (task, lang) pairs, sorted."""
        return sorted(p for p, e in self.entries.items() if not e.absent)

    def absent_pairs(self) -> list[Pair]:
        """The pairs listed as absent, sorted."""
        return sorted(p for p, e in self.entries.items() if e.absent)

    def tasks(self) -> list[str]:
        """The catalog's tasks, sorted (the order of a model's task vectors)."""
        return sorted({task for task, _ in self.entries})

    def languages(self) -> list[str]:
        """Every language of the catalog (present or absent pairs), sorted."""
        return sorted({lang for _, lang in self.entries})

    def target_languages(self) -> list[str]:
        """The languages that partitions are drawn over (the catalog's ``target_languages``,
        or all languages when it names none)."""
        return list(self.target) if self.target else self.languages()

    def uriel_code(self, lang: str) -> str:
        """The ISO 639-3 code URIEL knows ``lang`` by: the catalog's ``languages:`` entry, or
        the shipped catalog's; ConfigError naming this catalog when neither has one."""
        return (self.language_table or LanguageTable(self.path, {})).uriel_code(lang)

    def entry(self, task: str, lang: str) -> CatalogEntry:
        try:
            return self.entries[(task, lang)]
        except KeyError:
            raise ConfigError(f"pair {task}/{lang} is not in the catalog {self.path}") from None

    def files(self, task: str, lang: str, split: str, role: str) -> tuple[Path, ...]:
        """The files read by :meth:`sentences` for the same arguments."""
        return self.entry(task, lang).files_for(split, role)

    def sentences(self, task: str, lang: str, split: str, role: str) -> list[Sentence]:
        """The sentences of ``split`` of a pair playing ``role`` (``seen`` or ``heldout``),
        from each of its files in catalog order; empty when the pair has no such split."""
        entry = self.entry(task, lang)
        out: list[Sentence] = []
        for file in entry.files_for(split, role):
            if not file.is_file():
                raise ConfigError(f"pair {task}/{lang}: file {file} does not exist")
            out.extend(read_sentences(file, entry.format, task, lang, split))
        return out


def _parse_catalog(path: Path, root: Path, raw: Any) -> Catalog:
    where = f"catalog {path}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    _no_unknown_keys(where, raw, _TOP_KEYS)
    pairs = raw.get("pairs")
    if not isinstance(pairs, dict) or not pairs:
        raise ConfigError(f"{where}: expected a non-empty mapping 'pairs: {{task: {{lang: ...}}}}'")
    add_tasks(parse_tasks(where, raw.get("tasks")).values(), where)
    entries: dict[Pair, CatalogEntry] = {}
    for task, langs in pairs.items():
        if task not in known_tasks():
            raise ConfigError(
                f"{where}: unknown task {task!r}; known tasks: {', '.join(known_tasks())}; "
                "describe a new task under 'tasks:'"
            )
        if not isinstance(langs, dict) or not langs:
            raise ConfigError(f"{where}: expected a mapping of languages under task {task!r}")
        for lang, spec in langs.items():
            if not isinstance(lang, str):
                raise ConfigError(
                    f"{where}: language {lang!r} under {task!r} is not a string (quote it)"
                )
            entries[(task, lang)] = _parse_entry(path, root, task, lang, spec)
    target = raw.get("target_languages", [])
    if not isinstance(target, list) or not all(isinstance(x, str) for x in target):
        raise ConfigError(f"{where}: target_languages must be a list of language codes")
    known = {lang for _, lang in entries}
    unknown = [lang for lang in target if lang not in known]
    if unknown:
        raise ConfigError(f"{where}: target_languages has no pairs for {', '.join(unknown)}")
    return Catalog(
        path=path,
        data_root=root,
        entries=entries,
        target=tuple(target),
        name=str(raw.get("name", "")),
        description=str(raw.get("description", "")),
        language_table=LanguageTable(path, _parse_languages(where, raw.get("languages"))),
    )


def _parse_entry(path: Path, root: Path, task: str, lang: str, spec: Any) -> CatalogEntry:
    where = f"catalog {path}, pair {task}/{lang}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, found {spec!r}")
    absent = spec.get("absent", False)
    if not isinstance(absent, bool):
        raise ConfigError(f"{where}: absent must be true or false")
    if absent:
        _no_unknown_keys(where, spec, _ABSENT_KEYS)
        reason = spec.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{where}: an absent pair needs a 'reason'")
        return CatalogEntry(task, lang, absent=True, reason=reason, source=spec.get("source", ""))
    _no_unknown_keys(where, spec, _PRESENT_KEYS | {"absent"})
    fmt = spec.get("format")
    if not isinstance(fmt, str):
        raise ConfigError(f"{where}: missing 'format'")
    try:
        check_format(fmt, task)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    test_as_train = spec.get("test_as_train", False)
    if not isinstance(test_as_train, bool):
        raise ConfigError(f"{where}: test_as_train must be true or false")
    if "test" not in spec:
        raise ConfigError(f"{where}: a present pair needs a 'test' file")
    if test_as_train and "train" in spec:
        raise ConfigError(f"{where}: test_as_train is for pairs without a train split")
    files: dict[str, tuple[Path, ...]] = {}
    for split in SPLITS:
        if split in spec:
            files[split] = _resolve(where, root, split, spec[split])
    return CatalogEntry(
        task,
        lang,
        format=fmt,
        files=files,
        test_as_train=test_as_train,
        source=str(spec.get("source", "")),
    )


def _resolve(where: str, root: Path, split: str, value: Any) -> tuple[Path, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: '{split}' must be a path or a non-empty list of paths")
    paths = []
    for name in names:
        file = root / name
        if not file.is_file():
            raise ConfigError(f"{where}: {split} file {file} does not exist")
        paths.append(file)
    return tuple(paths)


def _no_unknown_keys(where: str, mapping: dict, allowed: frozenset[str]) -> None:
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        raise ConfigError(unknown_keys_message(where, unknown, set(allowed)))

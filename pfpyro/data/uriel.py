"""URIEL typological vectors and language families of the project's languages, via lang2vec.

lang2vec (Littell et al., 2017) ships the URIEL database with the package, so this works
offline. It is keyed by ISO 639-3 codes; a catalog's ``languages:`` section
(:class:`pfpyro.data.catalog.LanguageTable`) gives each language's code, and the shipped
catalog's table (``experiments/data/paper33.yaml``, checked against lang2vec's own list by a
test) is the default. Every function takes ``languages=`` (a table; None: the shipped one). A
language with no code, or a code lang2vec lacks, raises :class:`ConfigError` naming the
catalog file and entry: a missing language never becomes a silent zero vector.

- :func:`uriel_vector`: the ``syntax_knn+phonology_knn+inventory_knn`` vector (289 binary
  features, with missing values imputed by URIEL's k-NN predictions), used by the NS baseline
  to pick the typologically nearest source language (docs/design.md §9; paper §4.3).
- :func:`language_family`: the top-level family from URIEL's ``fam`` features, for the
  similar/different-language subsets of Table 2.

Importing lang2vec takes a few seconds (it scans its databases), so it is imported lazily and
every result is cached.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pfpyro.data.catalog import LanguageTable, shipped_languages
from pfpyro.errors import ConfigError

FEATURE_SET = "syntax_knn+phonology_knn+inventory_knn"
"""The lang2vec feature set of the NS baseline (docs/design.md §9)."""


@functools.cache
def _lang2vec():
    """The lang2vec module, imported once (slow: it loads its databases at import).

    lang2vec also installs a *script* named ``lang2vec.py`` into the environment's ``bin/``.
    A program started from there (``.venv/bin/pytest``, the ``pfpyro`` command) has that
    folder first on ``sys.path``, so a plain ``import lang2vec`` finds the script, which then
    fails. When that happens, the package is loaded from where its distribution installed it.
    """
    spec = importlib.util.find_spec("lang2vec")
    if spec is None or spec.submodule_search_locations is None:
        try:
            where = importlib.metadata.distribution("lang2vec").locate_file("lang2vec")
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError("lang2vec is not installed (pip install lang2vec)") from None
        package = Path(str(where))
        spec = importlib.util.spec_from_file_location(
            "lang2vec", package / "__init__.py", submodule_search_locations=[str(package)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["lang2vec"] = module
        spec.loader.exec_module(module)
    with warnings.catch_warnings():
        # lang2vec imports pkg_resources, whose deprecation notice is no news to our users.
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        return importlib.import_module("lang2vec.lang2vec")


def lang2vec_code(lang: str, languages: LanguageTable | None = None) -> str:
    """The ISO 639-3 code lang2vec knows ``lang`` by (``languages``: a catalog's table, None:
    the shipped one); ConfigError naming the catalog entry if it has none or URIEL lacks it."""
    table = languages or shipped_languages()
    code = table.uriel_code(lang)
    if code not in _lang2vec().URIEL_LANGUAGES:
        raise ConfigError(
            f"{table.where(lang)}: URIEL (lang2vec) has no language {code!r}; give the ISO "
            "639-3 code lang2vec lists for it (lang2vec.lang2vec.URIEL_LANGUAGES)"
        )
    return code


@functools.cache
def _code_vector(code: str, feature_set: str) -> np.ndarray | None:
    """URIEL's ``feature_set`` vector of ISO code ``code`` (read-only), None if any value is
    missing (so that asking for it raises)."""
    try:
        table = _lang2vec().get_features([code], feature_set)
    except Exception as error:  # lang2vec raises bare Exceptions, e.g. for an unknown set
        raise ConfigError(f"lang2vec feature set {feature_set!r}: {error}") from None
    values = table[code]
    if any(v == "--" for v in values):
        return None
    vector = np.asarray(values, dtype=np.float64)
    vector.setflags(write=False)
    return vector


def uriel_vector(
    lang: str, feature_set: str = FEATURE_SET, languages: LanguageTable | None = None
) -> np.ndarray:
    """The URIEL vector of ``lang`` (a project code) for ``feature_set`` (read-only, cached)."""
    code = lang2vec_code(lang, languages)
    vector = _code_vector(code, feature_set)
    if vector is None:
        raise ConfigError(
            f"URIEL {feature_set!r} has missing values for {lang!r} ({code}); "
            "use a k-NN (imputed) feature set"
        )
    return vector


def cosine_similarity(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """``a·b / (|a| |b|)``; a zero vector has no direction and raises ValueError."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"vectors of shapes {a.shape} and {b.shape} cannot be compared")
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0 or not math.isfinite(norm):
        raise ValueError("cosine similarity needs two non-zero, finite vectors")
    return float(a @ b) / norm


def uriel_similarity(
    lang_a: str,
    lang_b: str,
    feature_set: str = FEATURE_SET,
    languages: LanguageTable | None = None,
) -> float:
    """Cosine similarity of two languages' URIEL vectors: NS's default similarity."""
    return cosine_similarity(
        uriel_vector(lang_a, feature_set, languages), uriel_vector(lang_b, feature_set, languages)
    )


@functools.cache
def _family_table() -> tuple[np.ndarray, np.ndarray, dict[str, int], np.ndarray]:
    """URIEL's family nodes: names, member counts, and each language's row of memberships."""
    # lang2vec's own data file, read directly: lang2vec offers no per-node member counts.
    path = Path(_lang2vec().__file__).parent / "data" / "family_features.npz"
    with np.load(path) as db:
        member = db["data"][:, :, 0] == 1.0  # [languages, family nodes]
        names = np.array([str(f).removeprefix("F_") for f in db["feats"]])
        index = {str(code): k for k, code in enumerate(db["langs"])}
    return names, member.sum(0), index, member


def family_path(lang: str, languages: LanguageTable | None = None) -> tuple[str, ...]:
    """The family tree nodes ``lang`` belongs to, from the top-level family down.

    URIEL's ``fam`` features are one binary feature per Glottolog node. A node's members
    include all its descendants' members, so ordering a language's nodes by their number of
    members (largest first) gives the path from the root. Empty for an isolate.
    """
    code = lang2vec_code(lang, languages)
    names, sizes, index, member = _family_table()
    if code not in index:
        raise ConfigError(f"lang2vec has no family features for {code!r} (language {lang!r})")
    nodes = np.flatnonzero(member[index[code]])
    order = sorted(nodes, key=lambda k: (-int(sizes[k]), str(names[k])))
    return tuple(str(names[k]) for k in order)


def language_family(lang: str, languages: LanguageTable | None = None) -> str:
    """The top-level family of ``lang`` (e.g. "Uralic", "Indo-European").

    A language URIEL places in no family (an isolate such as Basque) is its own family,
    ``"isolate:<lang>"``, so two isolates never count as related.
    """
    path = family_path(lang, languages)
    return path[0] if path else f"isolate:{lang}"

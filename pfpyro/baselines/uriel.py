"""URIEL typological vectors and language families of the project's languages, via lang2vec.

lang2vec (Littell et al., 2017) ships the URIEL database with the package, so this works
offline. It is keyed by ISO 639-3 codes; :data:`LANG2VEC_CODES` maps each project code to the
code we query, chosen by hand and checked against lang2vec's own list (a test does so for all
of them). An unmapped code, or one lang2vec lacks, raises :class:`ConfigError` naming it: a
missing language never becomes a silent zero vector.

- :func:`uriel_vector`: the ``syntax_knn+phonology_knn+inventory_knn`` vector (289 binary
  features, with missing values imputed by URIEL's k-NN predictions), used by the NS baseline
  to pick the typologically nearest source language (DESIGN §6; paper §4.3).
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

from pfpyro.errors import ConfigError

FEATURE_SET = "syntax_knn+phonology_knn+inventory_knn"
"""The lang2vec feature set of the NS baseline (DESIGN §6)."""

# Project code -> the ISO 639-3 code lang2vec is asked for. The project's codes are the
# folder names of ../shared/data (ISO 639-1 where one exists, else 639-3, with the authors'
# renamings of WikiANN codes). Non-obvious choices:
#   ar  -> arb: Modern Standard Arabic, the variety of UD Arabic and Arabic Wikipedia; "ara"
#          (the macrolanguage, lang2vec's own default for "ar") mixes in the dialects.
#   et  -> est: the macrolanguage code. "ekk" (Standard Estonian) is in lang2vec too, but
#          URIEL has no family features for it; "est" has them (Uralic, Finnic).
#   gun -> gun: Mbyá Guaraní, the language of UD Mbya_Guarani-Thomas. WikiANN's "gn" data in
#          wikiann/gun is Paraguayan Guaraní (gug), a proxy the authors chose; the project
#          names the pair by the treebank's language, so we do too.
#   hy  -> hye: Eastern Armenian (UD ArmTDP); lang2vec has no "hyw".
#   kmr -> kmr: Northern Kurdish (Kurmanji), not the macrolanguage "kur".
#   kpv -> kpv: Komi-Zyrian, not the macrolanguage "kom" (WikiANN's "kv").
#   aii -> aii: Assyrian Neo-Aramaic (UD Assyrian-AS). WikiANN's "arc" data is Official
#          Aramaic, another proxy of the authors.
#   tl  -> tgl: Tagalog (lang2vec has no "fil").
#   yue -> yue: Cantonese, not the macrolanguage "zho".
LANG2VEC_CODES: dict[str, str] = {
    "aii": "aii",
    "am": "amh",
    "ar": "arb",
    "bm": "bam",
    "cy": "cym",
    "en": "eng",
    "et": "est",
    "eu": "eus",
    "fi": "fin",
    "fo": "fao",
    "gl": "glg",
    "gun": "gun",
    "he": "heb",
    "hsb": "hsb",
    "hu": "hun",
    "hy": "hye",
    "id": "ind",
    "kk": "kaz",
    "kmr": "kmr",
    "ko": "kor",
    "kpv": "kpv",
    "mt": "mlt",
    "myv": "myv",
    "sme": "sme",
    "ta": "tam",
    "te": "tel",
    "th": "tha",
    "tl": "tgl",
    "tr": "tur",
    "ug": "uig",
    "vi": "vie",
    "wo": "wol",
    "yo": "yor",
    "yue": "yue",
}


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


def lang2vec_code(lang: str) -> str:
    """The ISO 639-3 code lang2vec knows ``lang`` by; ConfigError if unmapped or unknown."""
    try:
        code = LANG2VEC_CODES[lang]
    except KeyError:
        raise ConfigError(
            f"language {lang!r} has no lang2vec code in pfpyro.baselines.uriel.LANG2VEC_CODES "
            f"(known: {' '.join(sorted(LANG2VEC_CODES))})"
        ) from None
    if code not in _lang2vec().URIEL_LANGUAGES:
        raise ConfigError(f"lang2vec has no URIEL entry for {code!r} (language {lang!r})")
    return code


@functools.cache
def _vectors(feature_set: str) -> dict[str, np.ndarray]:
    """All mapped languages' vectors in one lang2vec call (each call re-reads its database)."""
    l2v = _lang2vec()
    langs = [lang for lang, code in LANG2VEC_CODES.items() if code in l2v.URIEL_LANGUAGES]
    codes = [LANG2VEC_CODES[lang] for lang in langs]
    try:
        table = l2v.get_features(codes, feature_set)
    except Exception as error:  # lang2vec raises bare Exceptions, e.g. for an unknown set
        raise ConfigError(f"lang2vec feature set {feature_set!r}: {error}") from None
    vectors = {}
    for lang, code in zip(langs, codes, strict=True):
        values = table[code]
        missing = sum(v == "--" for v in values)
        if missing:  # kept out, so that asking for it raises below
            continue
        vector = np.asarray(values, dtype=np.float64)
        vector.setflags(write=False)
        vectors[lang] = vector
    return vectors


def uriel_vector(lang: str, feature_set: str = FEATURE_SET) -> np.ndarray:
    """The URIEL vector of ``lang`` (a project code) for ``feature_set`` (read-only, cached)."""
    code = lang2vec_code(lang)
    vectors = _vectors(feature_set)
    if lang not in vectors:
        raise ConfigError(
            f"URIEL {feature_set!r} has missing values for {lang!r} ({code}); "
            "use a k-NN (imputed) feature set"
        )
    return vectors[lang]


def cosine_similarity(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """``a·b / (|a| |b|)``; a zero vector has no direction and raises ValueError."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"vectors of shapes {a.shape} and {b.shape} cannot be compared")
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0 or not math.isfinite(norm):
        raise ValueError("cosine similarity needs two non-zero, finite vectors")
    return float(a @ b) / norm


def uriel_similarity(lang_a: str, lang_b: str, feature_set: str = FEATURE_SET) -> float:
    """Cosine similarity of two languages' URIEL vectors: NS's default similarity."""
    return cosine_similarity(uriel_vector(lang_a, feature_set), uriel_vector(lang_b, feature_set))


@functools.cache
def _family_table() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """URIEL's family nodes: names, member counts, and the mapped languages' memberships."""
    # lang2vec's own data file, read directly: lang2vec offers no per-node member counts.
    path = Path(_lang2vec().__file__).parent / "data" / "family_features.npz"
    with np.load(path) as db:
        member = db["data"][:, :, 0] == 1.0  # [languages, family nodes]
        names = np.array([str(f).removeprefix("F_") for f in db["feats"]])
        index = {str(code): k for k, code in enumerate(db["langs"])}
    sizes = member.sum(0)
    ours = {c: member[index[c]] for c in LANG2VEC_CODES.values() if c in index}
    return names, sizes, ours


def family_path(lang: str) -> tuple[str, ...]:
    """The family tree nodes ``lang`` belongs to, from the top-level family down.

    URIEL's ``fam`` features are one binary feature per Glottolog node. A node's members
    include all its descendants' members, so ordering a language's nodes by their number of
    members (largest first) gives the path from the root. Empty for an isolate.
    """
    code = lang2vec_code(lang)
    names, sizes, ours = _family_table()
    if code not in ours:
        raise ConfigError(f"lang2vec has no family features for {code!r} (language {lang!r})")
    nodes = np.flatnonzero(ours[code])
    order = sorted(nodes, key=lambda k: (-int(sizes[k]), str(names[k])))
    return tuple(str(names[k]) for k in order)


@functools.cache
def language_family(lang: str) -> str:
    """The top-level family of ``lang`` (e.g. "Uralic", "Indo-European").

    A language URIEL places in no family (an isolate such as Basque) is its own family,
    ``"isolate:<lang>"``, so two isolates never count as related.
    """
    path = family_path(lang)
    return path[0] if path else f"isolate:{lang}"

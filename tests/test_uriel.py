"""URIEL vectors, similarities and families of the project's languages, from lang2vec offline."""

from __future__ import annotations

import numpy as np
import pytest

from pfpyro.data.catalog import LanguageInfo, LanguageTable, shipped_languages
from pfpyro.data.uriel import (
    FEATURE_SET,
    cosine_similarity,
    family_path,
    lang2vec_code,
    language_family,
    uriel_similarity,
    uriel_vector,
)
from pfpyro.errors import ConfigError

# The project's 40 codes: the paper's 33 targets, English and the six bridge languages.
PROJECT_LANGS = (
    "aii", "am", "ar", "bm", "cy", "et", "eu", "fi", "fo", "gl", "gun", "he", "hsb", "hu",
    "hy", "id", "kk", "kmr", "ko", "kpv", "mt", "myv", "sme", "ta", "te", "th", "tl", "tr",
    "ug", "vi", "wo", "yo", "yue", "en", "bg", "de", "el", "fa", "ja", "ro",
)  # fmt: skip


def nearest(lang: str, among: list[str]) -> str:
    return max(among, key=lambda other: uriel_similarity(lang, other))


def test_every_project_language_is_mapped_and_known_to_lang2vec():
    assert sorted(shipped_languages().entries) == sorted(PROJECT_LANGS)
    for lang in PROJECT_LANGS:
        vector = uriel_vector(lang)
        assert vector.shape == (289,)  # 103 syntax + 28 phonology + 158 inventory features
        assert set(np.unique(vector)) <= {0.0, 1.0} and vector.any()


def test_deliberate_code_choices():
    assert lang2vec_code("ar") == "arb"
    assert lang2vec_code("et") == "est"
    assert lang2vec_code("kpv") == "kpv"
    assert lang2vec_code("yue") == "yue"


def test_unknown_codes_raise_naming_the_code():
    with pytest.raises(ConfigError, match="'xx'"):
        uriel_vector("xx")
    with pytest.raises(ConfigError, match="'fin'"):
        uriel_vector("fin")  # the table takes project codes, not ISO 639-3 ones
    with pytest.raises(ConfigError, match="'qq'"):
        language_family("qq")


def test_a_language_the_package_never_heard_of_comes_from_the_catalogs_table(tmp_path):
    table = LanguageTable(tmp_path / "mine.yaml", {"xwo": LanguageInfo("xwo", "wol", "Wolof")})
    assert lang2vec_code("xwo", table) == "wol"
    assert np.array_equal(uriel_vector("xwo", languages=table), uriel_vector("wo"))
    assert language_family("xwo", table) == language_family("wo")
    assert lang2vec_code("fi", table) == "fin"  # the shipped table fills in
    with pytest.raises(
        ConfigError, match=r"mine.yaml: language 'xyz' has no entry under 'languages:'"
    ):
        uriel_vector("xyz", languages=table)


def test_a_code_uriel_lacks_names_the_catalog_file_and_entry(tmp_path):
    table = LanguageTable(tmp_path / "mine.yaml", {"zz": LanguageInfo("zz", "qqq")})
    with pytest.raises(
        ConfigError, match=r"catalog .*mine.yaml, languages.zz: URIEL .* no language 'qqq'"
    ):
        uriel_vector("zz", languages=table)


def test_a_feature_set_with_gaps_raises_instead_of_zero_filling():
    # WALS leaves most syntax features of Mbya Guarani unknown: no silent zeros.
    with pytest.raises(ConfigError, match="gun"):
        uriel_vector("gun", "syntax_wals")


def test_finnish_and_hungarian_find_their_uralic_relatives():
    assert nearest("fi", ["hu", "et", "tr", "ko", "en"]) == "et"
    assert nearest("hu", ["fi", "tr", "ko", "en", "vi"]) == "fi"
    assert nearest("et", ["fi", "tr", "ko", "en", "yo"]) == "fi"
    assert nearest("kk", ["tr", "en", "vi", "yo", "he"]) == "tr"
    assert nearest("ar", ["he", "mt", "en", "ko", "vi"]) in {"he", "mt"}


def test_similarity_is_a_cosine():
    assert uriel_similarity("fi", "fi") == pytest.approx(1.0)
    assert uriel_similarity("fi", "et") == pytest.approx(uriel_similarity("et", "fi"))
    a, b = uriel_vector("fi"), uriel_vector("ko")
    expected = float(a @ b) / float(np.sqrt(a @ a) * np.sqrt(b @ b))
    assert uriel_similarity("fi", "ko") == pytest.approx(expected)
    assert 0.0 < uriel_similarity("fi", "ko") < uriel_similarity("fi", "et") < 1.0


def test_cosine_similarity_by_hand_and_refusals():
    assert cosine_similarity([1, 0], [1, 1]) == pytest.approx(1 / np.sqrt(2))
    assert cosine_similarity([1, 2], [-2, 1]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="non-zero"):
        cosine_similarity([0, 0], [1, 1])
    with pytest.raises(ValueError, match="shapes"):
        cosine_similarity([1, 0], [1, 0, 0])


def test_vectors_are_cached_and_read_only():
    assert uriel_vector("tr") is uriel_vector("tr")
    with pytest.raises(ValueError):
        uriel_vector("tr")[0] = 5.0
    assert FEATURE_SET == "syntax_knn+phonology_knn+inventory_knn"


def test_language_families():
    for lang in ("fi", "et", "hu", "kpv", "myv", "sme"):
        assert language_family(lang) == "Uralic"
    for lang in ("en", "cy", "fo", "gl", "hsb", "hy", "kmr"):
        assert language_family(lang) == "Indo-European"
    for lang in ("ar", "he", "mt", "am", "aii"):
        assert language_family(lang) == "Afro-Asiatic"
    assert language_family("tr") == language_family("kk") == language_family("ug") == "Turkic"
    assert language_family("ta") == language_family("te") == "Dravidian"
    assert language_family("wo") == language_family("yo") == "Atlantic-Congo"
    assert language_family("ko") == "Koreanic"
    # Basque is an isolate: its own family, related to nothing else.
    assert language_family("eu") == "isolate:eu" and family_path("eu") == ()
    assert family_path("fi")[:2] == ("Uralic", "Finnic")
    assert family_path("en")[:2] == ("Indo-European", "Germanic")

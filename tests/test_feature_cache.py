"""FeatureCache: same words hit, changed words/model/length miss, corrupt entries recomputed."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from pfpyro.encode import FeatureCache
from pfpyro.encode.offline import cache_root
from pfpyro.errors import PfpyroError

WORDS = [["a", "small", "file"], [], ["of", "three", "sentences", "."]]


class CountingEncoder:
    """A stand-in for WordEncoder.encode: deterministic arrays, calls counted."""

    def __init__(self, dim: int = 6) -> None:
        self.dim = dim
        self.calls = 0

    def __call__(self, word_lists: list[list[str]]) -> list[np.ndarray]:
        self.calls += 1
        out = []
        for words in word_lists:
            codes = [[(hash(w) >> (8 * k)) % 97 for k in range(self.dim)] for w in words]
            out.append(np.asarray(codes, dtype=np.float16).reshape(len(words), self.dim))
        return out


@pytest.fixture
def cache(tmp_path: Path) -> FeatureCache:
    return FeatureCache(tmp_path)


def entries(cache: FeatureCache) -> list[Path]:
    return sorted(cache.dir.glob("*.safetensors"))


def test_same_words_hit_the_cache(cache: FeatureCache) -> None:
    compute = CountingEncoder()
    first = cache.get_or_compute("model-a", 250, WORDS, compute)
    second = cache.get_or_compute("model-a", 250, [tuple(w) for w in WORDS], compute)
    assert compute.calls == 1 and (cache.misses, cache.hits) == (1, 1)
    assert [a.shape for a in second] == [(3, 6), (0, 6), (4, 6)]
    assert all(a.dtype == np.float16 for a in second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(entries(cache)) == 1 and cache.dir == cache.dir.parent / "features"


def test_a_new_cache_object_reads_the_same_entry(tmp_path: Path) -> None:
    compute = CountingEncoder()
    FeatureCache(tmp_path).get_or_compute("model-a", 250, WORDS, compute)
    FeatureCache(tmp_path).get_or_compute("model-a", 250, WORDS, compute)
    assert compute.calls == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda w, m, n: ([*w[:2], ["of", "three", "sentences", "!"]], m, n),  # a word changed
        lambda w, m, n: (w[:2], m, n),  # a sentence dropped
        lambda w, m, n: ([w[0], w[2], w[1]], m, n),  # sentences reordered
        lambda w, m, n: ([["a small", "file"], *w[1:]], m, n),  # same characters, other split
        lambda w, m, n: (w, "model-b", n),  # another encoder
        lambda w, m, n: (w, m, 128),  # another length limit
    ],
)
def test_any_change_misses(cache: FeatureCache, change) -> None:
    compute = CountingEncoder()
    cache.get_or_compute("model-a", 250, WORDS, compute)
    words, model, limit = change(WORDS, "model-a", 250)
    cache.get_or_compute(model, limit, words, compute)
    assert compute.calls == 2 and cache.hits == 0
    assert len(entries(cache)) == 2


def test_kind_separates_entries(cache: FeatureCache) -> None:
    compute = CountingEncoder()
    cache.get_or_compute("model-a", 250, WORDS, compute, kind="first-subword")
    cache.get_or_compute("model-a", 250, WORDS, compute, kind="layer-10/all-subwords")
    assert compute.calls == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),  # truncated
        lambda p: p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}" + bytes(40)),
        lambda p: p.write_bytes(b""),
    ],
    ids=["truncated", "garbage", "empty"],
)
def test_corrupt_entry_is_recomputed(cache: FeatureCache, caplog, damage) -> None:
    compute = CountingEncoder()
    # Copies: the arrays are mapped from the file, which the damage rewrites in place.
    expected = [np.array(a) for a in cache.get_or_compute("model-a", 250, WORDS, compute)]
    (path,) = entries(cache)
    damage(path)
    with caplog.at_level(logging.WARNING, logger="pfpyro.encode.cache"):
        again = cache.get_or_compute("model-a", 250, WORDS, compute)
    assert compute.calls == 2
    assert "corrupt feature cache entry" in caplog.text and path.name in caplog.text
    for a, b in zip(expected, again, strict=True):
        np.testing.assert_array_equal(a, b)
    cache.get_or_compute("model-a", 250, WORDS, compute)  # rewritten: a hit again
    assert compute.calls == 2


def test_entry_with_wrong_shape_is_recomputed(cache: FeatureCache, caplog) -> None:
    compute = CountingEncoder()
    cache.get_or_compute("model-a", 250, WORDS, compute)
    key = cache.key("model-a", 250, WORDS)
    wrong = [np.zeros((3, 6)), np.zeros((0, 6)), np.zeros((3, 6))]  # last sentence too short
    cache.store(key, wrong, [3, 0, 3])
    with caplog.at_level(logging.WARNING, logger="pfpyro.encode.cache"):
        again = cache.get_or_compute("model-a", 250, WORDS, compute)
    assert compute.calls == 2 and "do not match" in caplog.text
    assert [a.shape for a in again] == [(3, 6), (0, 6), (4, 6)]


def test_writes_are_atomic_and_failures_leave_nothing(cache: FeatureCache) -> None:
    def broken(word_lists):
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("model-a", 250, WORDS, broken)
    assert not cache.dir.exists() or list(cache.dir.iterdir()) == []
    cache.get_or_compute("model-a", 250, WORDS, CountingEncoder())
    assert [p.suffix for p in cache.dir.iterdir()] == [".safetensors"]  # no temp files left


def test_arrays_that_do_not_fit_the_words_are_refused(cache: FeatureCache) -> None:
    def one_short(word_lists):
        return [np.zeros((len(w) - 1, 4), dtype=np.float16) for w in word_lists]

    with pytest.raises(PfpyroError, match="do not match"):
        cache.get_or_compute("model-a", 250, [["two", "words"]], one_short)
    assert entries(cache) == []


def test_misses_return_what_hits_return(cache: FeatureCache) -> None:
    def fp32(word_lists):
        return [np.full((len(w), 3), 0.1, dtype=np.float32) for w in word_lists]

    miss = cache.get_or_compute("model-a", 250, WORDS, fp32)
    hit = cache.get_or_compute("model-a", 250, WORDS, fp32)
    for a, b in zip(miss, hit, strict=True):
        assert a.dtype == b.dtype == np.float16
        np.testing.assert_array_equal(a, b)


def test_no_sentences_no_entry(cache: FeatureCache) -> None:
    compute = CountingEncoder()
    assert cache.get_or_compute("model-a", 250, [], compute) == []
    assert compute.calls == 0 and entries(cache) == []


def test_default_root_follows_pfpyro_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PFPYRO_CACHE", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert FeatureCache().dir == tmp_path / "elsewhere" / "features"


def test_default_root_follows_xdg_cache_home(tmp_path: Path, monkeypatch) -> None:
    """Without PFPYRO_CACHE the root is $XDG_CACHE_HOME/pfpyro; an empty or relative
    XDG_CACHE_HOME is ignored (the XDG base-directory rule), leaving ~/.cache/pfpyro."""
    monkeypatch.delenv("PFPYRO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "pfpyro"
    assert FeatureCache().dir == tmp_path / "xdg" / "pfpyro" / "features"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in ("", "relative/cache"):
        monkeypatch.setenv("XDG_CACHE_HOME", unset)
        assert cache_root() == tmp_path / "home" / ".cache" / "pfpyro"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == tmp_path / "home" / ".cache" / "pfpyro"


def test_entries_are_memory_mapped_not_loaded(cache: FeatureCache) -> None:
    """A corpus's features stay on disk until used: after a miss (once stored) and on a hit,
    the flat features are a copy-on-write mapping of the entry's file."""
    compute = CountingEncoder()
    first = cache.get_or_compute_flat("model-a", 250, WORDS, compute)
    again = cache.get_or_compute_flat("model-a", 250, WORDS, compute)
    (path,) = entries(cache)
    for flat in (first, again):
        assert isinstance(flat, np.memmap) and flat.mode == "c"
        assert Path(flat.filename) == path.resolve()
        assert flat.shape == (sum(len(w) for w in WORDS), 6)
    np.testing.assert_array_equal(first, again)
    views = cache.get_or_compute("model-a", 250, WORDS, compute)
    for view, words in zip(views, WORDS, strict=True):
        assert (isinstance(view, np.memmap) or view.size == 0) and len(view) == len(words)
    np.testing.assert_array_equal(np.concatenate(views), first)
    assert compute.calls == 1


def test_a_streamed_entry_is_a_valid_entry_and_a_failed_one_leaves_nothing(
    cache: FeatureCache,
) -> None:
    """Encoding straight into an entry (FeatureCache.streaming, fill=): the file is an ordinary
    safetensors entry (safetensors itself reads it), and an error mid-way stores nothing."""
    from safetensors.numpy import load_file

    computed = CountingEncoder()(WORDS)
    lengths = [len(w) for w in WORDS]

    def fill(word_lists, out) -> None:
        assert isinstance(out, np.memmap) and out.shape == (sum(lengths), 6)
        out[:] = np.concatenate(computed)

    compute = CountingEncoder()
    flat = cache.get_or_compute_flat("model-a", 250, WORDS, compute, fill=fill, dim=6)
    assert compute.calls == 0  # filled, not computed
    np.testing.assert_array_equal(flat, np.concatenate(computed))
    (path,) = entries(cache)
    stored = load_file(str(path))
    np.testing.assert_array_equal(stored["features"], np.concatenate(computed))
    assert stored["lengths"].tolist() == lengths
    again = cache.get_or_compute("model-a", 250, WORDS, compute)  # an ordinary hit
    assert compute.calls == 0 and cache.hits == 1
    np.testing.assert_array_equal(np.concatenate(again), flat)

    def broken(word_lists, out) -> None:
        out[:2] = 1.0
        raise RuntimeError("the encoder died")

    with pytest.raises(RuntimeError, match="died"):
        cache.get_or_compute_flat("model-b", 250, WORDS, compute, fill=broken, dim=6)
    assert entries(cache) == [path]  # nothing stored for model-b
    assert not list(cache.dir.glob(".*.tmp"))  # and no temporary file left

"""A pair's features stored by word (flat), not padded (issue 10, item 1): memory grows with the
words, not with N times the longest sentence, and every view equals the padded one's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pfpyro.data.batch import PairTensors

DIM = 8


def corpus(lengths: list[int], seed: int = 0) -> PairTensors:
    generator = np.random.default_rng(seed)
    features = [generator.standard_normal((n, DIM)).astype(np.float32) for n in lengths]
    labels = [list(generator.integers(0, 5, n)) for n in lengths]
    return PairTensors.from_arrays(features, labels)


def test_feature_memory_grows_with_the_words_not_the_longest_sentence() -> None:
    short = [5] * 1000
    base = corpus(short)
    with_outlier = corpus([*short, 400])
    doubled = corpus(short * 2)
    word_bytes = DIM * 2  # fp16
    assert base.is_flat and base.feature_bytes == 5000 * word_bytes
    assert with_outlier.feature_bytes - base.feature_bytes == 400 * word_bytes  # not 1001 × 395
    assert doubled.feature_bytes == 2 * base.feature_bytes
    padded = PairTensors(with_outlier.features, with_outlier.labels, with_outlier.mask)
    assert not padded.is_flat and padded.feature_bytes == 1001 * 400 * word_bytes


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 12), min_size=1, max_size=15),
    picks=st.lists(st.integers(0, 14), min_size=1, max_size=8),
)
def test_a_flat_pair_gives_what_the_padded_pair_gives(lengths, picks) -> None:
    flat = corpus(lengths, seed=len(lengths))
    padded = PairTensors(flat.features, flat.labels, flat.mask)
    index = [p % len(lengths) for p in picks]
    assert torch.equal(flat.words(), padded.words())
    assert torch.equal(flat.features, padded.features)
    if any(lengths[i] for i in index):
        a, b = flat.batch(index), padded.batch(index)
        assert a.features.dtype == torch.float32
        for name in ("features", "labels", "mask"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name
    a, b = flat.select(index), padded.select(index)
    assert a.is_flat and not b.is_flat
    assert torch.equal(a.features, b.features) and torch.equal(a.words(), b.words())
    assert torch.equal(a.labels, b.labels) and torch.equal(a.mask, b.mask)


def test_bad_shapes_are_refused() -> None:
    pair = corpus([3, 2])
    with pytest.raises(ValueError, match="disagree"):
        PairTensors(pair.words()[:4], pair.labels, pair.mask)  # 4 rows for 5 words
    with pytest.raises(ValueError, match="must all be"):
        PairTensors.from_arrays([np.zeros((2, DIM)), np.zeros((2, DIM + 1))])

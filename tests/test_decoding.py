"""Constrained (valid IOB2) Viterbi decoding: validity, optimality, argmax agreement, padding."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pfpyro.data.tasks import label_set
from pfpyro.evaluate import bio_transitions, is_valid_bio, viterbi_decode

UPOS = label_set("pos")
NER_TAGS = label_set("ner")

C = len(NER_TAGS)


def _tag(*tags: str) -> list[int]:
    return [NER_TAGS.index(t) for t in tags]


def _log_score(probs: torch.Tensor, path: torch.Tensor) -> float:
    """The log-probability of one sentence's path under the per-word distributions."""
    picked = probs.double().clamp_min(1e-30).gather(-1, path.unsqueeze(-1)).squeeze(-1)
    return float(picked.log().sum())


@functools.cache
def _valid_sequences(length: int) -> np.ndarray:
    """Every valid IOB2 sequence of ``length`` NER tags, as rows of ids, by enumeration."""
    allowed, start = (x.numpy() for x in bio_transitions(NER_TAGS))
    seqs = [
        seq
        for seq in itertools.product(range(C), repeat=length)
        if start[seq[0]] and all(allowed[a, b] for a, b in itertools.pairwise(seq))
    ]
    return np.array(seqs)


def _brute_force_best(probs: torch.Tensor) -> float:
    """The best log-score over every valid IOB2 sequence of one sentence [T, c]."""
    logp = probs.double().clamp_min(1e-30).log().numpy()
    seqs = _valid_sequences(len(logp))
    return float(logp[np.arange(len(logp)), seqs].sum(-1).max())


def test_transitions_follow_the_tag_strings():
    allowed, start = bio_transitions(NER_TAGS)
    assert start.tolist() == [t[:2] != "I-" for t in NER_TAGS]
    i_per = NER_TAGS.index("I-PER")
    into_i_per = {NER_TAGS[i] for i in range(C) if allowed[i, i_per]}
    assert into_i_per == {"B-PER", "I-PER"}
    for j, tag in enumerate(NER_TAGS):
        if not tag.startswith("I-"):
            assert allowed[:, j].all()  # O and B-X may follow anything
    # Another IOB2 set (with MISC) works too; a set without I- tags constrains nothing.
    misc = ("O", "B-MISC", "I-MISC", "B-PER", "I-PER")
    allowed, start = bio_transitions(misc)
    assert allowed[1, 2] and allowed[2, 2] and not allowed[3, 2] and not allowed[0, 2]
    assert not start[2] and not start[4]
    allowed, start = bio_transitions(UPOS)
    assert allowed.all() and start.all()


def test_is_valid_bio():
    ids = torch.tensor(
        [
            _tag("B-PER", "I-PER", "O", "B-LOC"),
            _tag("I-PER", "O", "O", "O"),  # opens with I-
            _tag("O", "I-LOC", "O", "O"),  # I- after O
            _tag("B-ORG", "I-PER", "O", "O"),  # I- of another type
        ]
    )
    mask = torch.ones_like(ids, dtype=torch.bool)
    assert is_valid_bio(ids, mask, NER_TAGS).tolist() == [True, False, False, False]
    # Padding is skipped: B-PER, (pad), I-PER is valid; an empty sentence is valid.
    ids = torch.tensor([_tag("B-PER", "I-LOC", "I-PER"), _tag("I-LOC", "I-LOC", "I-LOC")])
    mask = torch.tensor([[True, False, True], [False, False, False]])
    assert is_valid_bio(ids, mask, NER_TAGS).tolist() == [True, True]


def _probs(rows: list[dict[str, float]]) -> torch.Tensor:
    """One sentence's [T, c] probabilities from {tag: p} rows; unnamed tags share the rest."""
    out = torch.zeros(len(rows), C, dtype=torch.float64)
    for k, row in enumerate(rows):
        rest = (1 - sum(row.values())) / (C - len(row))
        out[k] = rest
        for tag, p in row.items():
            out[k, NER_TAGS.index(tag)] = p
    return out


def test_hand_worked_case_changes_the_output():
    # Word 0: argmax I-PER (0.5), which cannot open a sentence. Word 1: I-PER (0.9).
    # Valid candidates by hand: B-PER I-PER = 0.2 * 0.9 = 0.18; O O = 0.25 * 0.02 = 0.005;
    # B-PER O = 0.2 * 0.02; O B-PER = 0.25 * 0.02 ... so B-PER I-PER wins, though the first
    # word's B-PER was only its third choice.
    first = _probs([{"I-PER": 0.5, "O": 0.25, "B-PER": 0.2}, {"I-PER": 0.9, "O": 0.02}])
    # Word 1 of the second sentence: I-LOC (0.6) after B-PER; B-PER I-PER = 0.9 * 0.3 = 0.27
    # beats B-PER O = 0.9 * 0.05 and B-PER B-LOC.
    second = _probs([{"B-PER": 0.9}, {"I-LOC": 0.6, "I-PER": 0.3, "O": 0.05}])
    probs = torch.stack([first, second])
    mask = torch.ones(2, 2, dtype=torch.bool)
    assert probs.argmax(-1).tolist() == [_tag("I-PER", "I-PER"), _tag("B-PER", "I-LOC")]
    decoded = viterbi_decode(probs, mask, NER_TAGS)
    assert decoded.dtype == torch.long
    assert decoded.tolist() == [_tag("B-PER", "I-PER"), _tag("B-PER", "I-PER")]


def test_padding_is_skipped_and_keeps_the_argmax():
    # Sentence 0 is [B-LOC, pad, I-LOC-ish]: the transition runs across the pad.
    probs = _probs([{"B-LOC": 0.9}, {"I-PER": 0.99}, {"I-LOC": 0.5, "I-ORG": 0.45}])[None]
    mask = torch.tensor([[True, False, True]])
    decoded = viterbi_decode(probs, mask, NER_TAGS)
    assert decoded.tolist() == [_tag("B-LOC", "I-PER", "I-LOC")]  # pad: the argmax
    # Garbage on padding changes nothing on the real words; all-pad sentences are fine.
    noisy = torch.cat([probs, probs]).clone()
    noisy[0, 1] = torch.rand(C, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[True, False, True], [False, False, False]])
    again = viterbi_decode(noisy, mask, NER_TAGS)
    assert again[0, [0, 2]].tolist() == _tag("B-LOC", "I-LOC")
    assert again[1].tolist() == noisy[1].argmax(-1).tolist()
    # Leading padding: the first real word may not be I-.
    lead = _probs([{"O": 0.99}, {"I-ORG": 0.6, "B-ORG": 0.3}])[None]
    out = viterbi_decode(lead, torch.tensor([[False, True]]), NER_TAGS)
    assert out[0, 1] == NER_TAGS.index("B-ORG")


def test_equals_argmax_when_the_argmax_is_valid():
    rng = np.random.default_rng(0)
    probs = torch.from_numpy(rng.dirichlet(np.full(C, 0.3), size=(200, 9)))
    mask = torch.from_numpy(rng.random((200, 9)) < 0.8)
    argmax = probs.argmax(-1)
    valid = is_valid_bio(argmax, mask, NER_TAGS)
    assert 10 < int(valid.sum()) < 190  # both kinds are present
    decoded = viterbi_decode(probs, mask, NER_TAGS)
    assert torch.equal(decoded[valid], argmax[valid])
    assert bool(is_valid_bio(decoded, mask, NER_TAGS).all())
    assert not torch.equal(decoded[~valid], argmax[~valid])


def test_numpy_input_and_shape_errors():
    probs = np.full((1, 2, C), 1 / C, dtype=np.float32)
    assert viterbi_decode(probs, np.ones((1, 2), bool), NER_TAGS).shape == (1, 2)
    with pytest.raises(ValueError, match=r"\[N, T, 7\]"):
        viterbi_decode(probs[..., :5], np.ones((1, 2), bool), NER_TAGS)
    with pytest.raises(ValueError, match="mask"):
        viterbi_decode(probs, np.ones((1, 3), bool), NER_TAGS)


# Probability rows with ties and zeros, as hypothesis likes them.
_weights = st.lists(
    st.sampled_from([0.0, 0.0, 1e-9, 0.1, 0.3, 0.5, 1.0]) | st.floats(0.0, 1.0),
    min_size=C,
    max_size=C,
)


@st.composite
def _batches(draw, max_t: int = 4):
    n = draw(st.integers(1, 3))
    t = draw(st.integers(1, max_t))
    rows = draw(st.lists(_weights, min_size=n * t, max_size=n * t))
    weights = torch.tensor(rows, dtype=torch.float64).reshape(n, t, C) + 1e-12
    probs = weights / weights.sum(-1, keepdim=True)
    mask = torch.tensor(draw(st.lists(st.booleans(), min_size=n * t, max_size=n * t)))
    return probs, mask.reshape(n, t)


@settings(max_examples=150, deadline=None)
@given(batch=_batches())
def test_decoding_is_valid_and_optimal(batch):
    probs, mask = batch
    decoded = viterbi_decode(probs, mask, NER_TAGS)
    assert decoded.shape == mask.shape
    assert bool(is_valid_bio(decoded, mask, NER_TAGS).all())
    argmax = probs.argmax(-1)
    assert torch.equal(decoded[~mask], argmax[~mask])
    for n in range(len(probs)):
        real = mask[n]
        if not real.any():
            continue
        got = _log_score(probs[n][real], decoded[n][real])
        assert got == pytest.approx(_brute_force_best(probs[n][real]), abs=1e-9)
        if is_valid_bio(argmax[n : n + 1], mask[n : n + 1], NER_TAGS)[0]:
            # The argmax is optimal among all sequences, so also among the valid ones.
            assert got == pytest.approx(_log_score(probs[n][real], argmax[n][real]), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(batch=_batches(max_t=12))
def test_long_sentences_decode_to_valid_sequences(batch):
    probs, mask = batch
    assert bool(is_valid_bio(viterbi_decode(probs, mask, NER_TAGS), mask, NER_TAGS).all())

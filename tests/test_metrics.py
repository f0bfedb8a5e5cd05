"""Task scores (accuracy, span F1, token F1) and score_pair, against hand-counted cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from seqeval.metrics import f1_score as seqeval_f1

from pfpyro.data.tasks import label_set
from pfpyro.evaluate import (
    headline_metric,
    ids_to_tags,
    score_pair,
    span_f1,
    span_prf,
    token_accuracy,
    token_f1,
    token_prf,
)
from pfpyro.evaluate.scoring import COMMON_KEYS, SPAN_KEYS

UPOS = label_set("pos")
NER_TAGS = label_set("ner")


def _ids(tags: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded NER ids and mask of tag-string sentences."""
    longest = max(len(s) for s in tags)
    ids = torch.zeros(len(tags), longest, dtype=torch.long)
    mask = torch.zeros(len(tags), longest, dtype=torch.bool)
    for k, s in enumerate(tags):
        ids[k, : len(s)] = torch.tensor([NER_TAGS.index(t) for t in s])
        mask[k, : len(s)] = True
    return ids, mask


def _onehot(ids: torch.Tensor, c: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(ids, c).to(torch.float32)


def test_seqeval_documented_example():
    # The example in seqeval's README: the MISC span is off by one word, PER is exact.
    gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    # By hand: gold entities {MISC 3-5, PER 0-1}, predicted {MISC 2-5, PER 0-1}; one match.
    precision, recall = 1 / 2, 1 / 2
    expected = 2 * precision * recall / (precision + recall)
    prf = span_prf(gold, pred)
    assert (prf.n_gold, prf.n_pred, prf.n_correct) == (2, 2, 1)
    assert prf.precision == pytest.approx(precision)
    assert prf.recall == pytest.approx(recall)
    assert span_f1(gold, pred) == pytest.approx(expected)
    assert span_f1(gold, pred) == pytest.approx(seqeval_f1(gold, pred))


def test_span_and_token_f1_differ_on_a_partial_entity():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "O", "O", "B-LOC"]]
    # Spans: gold {PER 0-1, LOC 3-3}, pred {PER 0-0, LOC 3-3}: P = R = 1/2.
    assert span_f1(gold, pred) == pytest.approx(0.5)
    # Tokens: 3 gold non-O, 2 predicted non-O, 2 correct: P = 1, R = 2/3, F1 = 0.8.
    g, mask = _ids(gold)
    p, _ = _ids(pred)
    prf = token_prf(g, p, mask)
    assert (prf.n_gold, prf.n_pred, prf.n_correct) == (3, 2, 2)
    assert token_f1(g, p, mask) == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))


def test_token_f1_needs_the_exact_tag():
    # I-PER for B-PER is a token error even though the span would merge.
    g, mask = _ids([["B-PER", "I-PER"]])
    p, _ = _ids([["I-PER", "I-PER"]])
    assert token_f1(g, p, mask) == pytest.approx(0.5)
    # seqeval's default chunker opens an entity at I- after O: the span is still right.
    assert span_f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]]) == pytest.approx(1.0)


def test_all_outside_scores_zero_f1_but_full_accuracy():
    gold = [["O"] * 5, ["O"] * 3]
    g, mask = _ids(gold)
    assert token_accuracy(g, g, mask) == 1.0
    # Nothing to find and nothing predicted: F1 is undefined, 0.0 by seqeval's convention.
    assert span_f1(gold, gold) == 0.0
    assert token_f1(g, g, mask) == 0.0
    # One spurious entity: accuracy stays high (7/8) while both F1s are 0: O never counts.
    pred = [["O", "B-PER", "O", "O", "O"], ["O"] * 3]
    p, _ = _ids(pred)
    assert token_accuracy(g, p, mask) == pytest.approx(7 / 8)
    assert span_f1(gold, pred) == 0.0
    assert token_f1(g, p, mask) == 0.0


def test_span_f1_matches_seqeval_on_random_tags():
    rng = np.random.default_rng(0)
    gold = [list(rng.choice(NER_TAGS, size=rng.integers(1, 12))) for _ in range(40)]
    pred = [[t if rng.random() < 0.6 else str(rng.choice(NER_TAGS)) for t in s] for s in gold]
    assert span_f1(gold, pred) == pytest.approx(seqeval_f1(gold, pred))


def test_padding_is_never_scored():
    gold = torch.tensor([[1, 2, 0, 0], [3, 0, 0, 0]])
    mask = torch.tensor([[True, True, False, False], [True, False, False, False]])
    pred = gold.clone()
    pred[~mask] = 5  # wrong everywhere outside the mask
    assert token_accuracy(gold, pred, mask) == 1.0
    assert token_f1(gold, pred, mask) == 1.0
    pred[1, 0] = 4
    assert token_accuracy(gold, pred, mask) == pytest.approx(2 / 3)


def test_ids_to_tags_drops_padding_and_checks_range():
    ids = torch.tensor([[1, 2, 0], [0, 0, 0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert ids_to_tags(ids, mask, NER_TAGS) == [["B-PER", "I-PER"], ["O"]]
    with pytest.raises(ValueError, match="label ids"):
        ids_to_tags(torch.tensor([[9]]), torch.tensor([[True]]), NER_TAGS)


def test_empty_mask_and_shape_mismatch_raise():
    with pytest.raises(ValueError, match="no words"):
        token_accuracy(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="one shape"):
        token_accuracy(torch.zeros(1, 2), torch.zeros(1, 3), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="sentence 0"):
        span_prf([["O", "O"]], [["O"]])


def test_score_pair_ner_keys_and_values():
    gold_tags = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    pred_tags = [["B-PER", "O", "O", "B-LOC"], ["O", "B-ORG"]]
    gold, mask = _ids(gold_tags)
    pred, _ = _ids(pred_tags)
    # Probabilities 0.8 on the predicted tag, the rest spread evenly.
    c = len(NER_TAGS)
    probs = torch.full((*pred.shape, c), 0.2 / (c - 1))
    probs.scatter_(-1, pred.unsqueeze(-1), 0.8)
    out = score_pair("ner", probs, gold, mask)
    assert set(out) == set(COMMON_KEYS) | set(SPAN_KEYS)
    assert out["n_words"] == 6.0 and out["n_sentences"] == 2.0 and out["n_entities"] == 3.0
    assert out["accuracy"] == pytest.approx(5 / 6)
    assert out["span_f1"] == pytest.approx(span_f1(gold_tags, pred_tags))
    assert out["span_f1"] == pytest.approx(2 / 3)  # 2 of 3 entities on each side
    assert out["token_f1"] == pytest.approx(token_f1(gold, pred, mask))
    assert out["score"] == out[headline_metric("ner")] == out["span_f1"]
    # Every word has confidence 0.8; 5 of 6 are right: ECE = |5/6 - 0.8|.
    assert out["ece"] == pytest.approx(abs(5 / 6 - 0.8))
    # NLL by hand: five words at -ln 0.8, one gold tag at -ln(0.2 / 6).
    assert out["nll"] == pytest.approx((5 * -math.log(0.8) - math.log(0.2 / 6)) / 6)


def test_score_pair_pos_uses_accuracy_and_ignores_ner_keys():
    gold = torch.tensor([[0, 7, 15], [11, 12, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    probs = _onehot(gold, len(UPOS))
    out = score_pair("pos", probs, gold, mask)
    assert set(out) == set(COMMON_KEYS)
    assert out["score"] == out["accuracy"] == 1.0
    assert out["entropy"] == 0.0 and out["nll"] == pytest.approx(0.0, abs=1e-9)
    assert out["ece"] == pytest.approx(0.0) and out["brier"] == 0.0
    with pytest.raises(ValueError, match=r"\[N, T, 17\]"):
        score_pair("pos", probs[..., :7], gold, mask)


def test_score_pair_ner_scores_the_valid_decoding_too():
    gold, mask = _ids([["B-PER", "I-PER", "O", "B-LOC"]])
    # Argmax B-PER I-LOC O B-LOC: seqeval reads PER 0-0, LOC 1-1, LOC 3-3 (1 of 3 right).
    # Valid IOB2 decoding turns I-LOC into I-PER (0.4 < 0.5, but I-LOC cannot follow B-PER).
    rows = [{"B-PER": 0.9}, {"I-LOC": 0.5, "I-PER": 0.4}, {"O": 0.9}, {"B-LOC": 0.9}]
    probs = torch.zeros(1, 4, len(NER_TAGS))
    for k, row in enumerate(rows):
        probs[0, k] = (1 - sum(row.values())) / (len(NER_TAGS) - len(row))
        for tag, p in row.items():
            probs[0, k, NER_TAGS.index(tag)] = p
    out = score_pair("ner", probs, gold, mask)
    assert (out["span_precision"], out["span_recall"]) == pytest.approx((1 / 3, 1 / 2))
    assert out["span_f1"] == pytest.approx(0.4)
    assert out["span_precision_valid"] == out["span_recall_valid"] == out["span_f1_valid"] == 1.0
    assert out["score"] == out["span_f1"]  # the raw argmax stays the headline

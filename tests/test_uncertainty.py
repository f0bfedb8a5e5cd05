"""Entropy, calibration (ECE, reliability bins), NLL, Brier and the entropy–score correlation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pfpyro.evaluate import (
    brier_score,
    correlate,
    ece_from_bins,
    entropy_score_correlation,
    expected_calibration_error,
    mean_entropy,
    negative_log_likelihood,
    reliability_diagram,
    sentence_entropy,
    token_entropy,
)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return x / x.sum(-1, keepdim=True)


@pytest.mark.parametrize("c", [2, 7, 17])
def test_entropy_bounds_uniform_and_onehot(c):
    probs = _normalise(torch.rand(50, c, generator=torch.Generator().manual_seed(c)))
    h = token_entropy(probs)
    assert h.shape == (50,)
    assert bool((h >= 0).all()) and bool((h <= math.log(c) + 1e-12).all())
    assert float(token_entropy(torch.full((c,), 1 / c))) == pytest.approx(math.log(c))
    onehot = torch.zeros(c)
    onehot[0] = 1.0
    assert float(token_entropy(onehot)) == 0.0  # 0 ln 0 = 0, not nan


def test_sentence_and_pair_entropy_ignore_padding():
    c = 4
    uniform, onehot = torch.full((c,), 1 / c), torch.eye(c)[0]
    probs = torch.stack(
        [
            torch.stack([uniform, onehot, uniform]),  # padding position: uniform
            torch.stack([uniform, uniform, onehot]),
        ]
    )
    mask = torch.tensor([[True, True, False], [True, True, True]])
    per_sentence = sentence_entropy(probs, mask)
    assert per_sentence.tolist() == pytest.approx([math.log(c) / 2, 2 * math.log(c) / 3])
    # Per pair: mean over the 5 real words, three of them uniform.
    assert mean_entropy(probs, mask) == pytest.approx(3 * math.log(c) / 5)


def test_nll_and_brier_by_hand():
    probs = torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]])
    gold = torch.tensor([[1, 2]])
    mask = torch.tensor([[True, True]])
    assert negative_log_likelihood(probs, gold, mask) == pytest.approx(
        (math.log(4) - math.log(0.8)) / 2
    )
    first = 0.5**2 + 0.75**2 + 0.25**2
    second = 0.1**2 + 0.1**2 + 0.2**2
    assert brier_score(probs, gold, mask) == pytest.approx((first + second) / 2)
    # A zero probability on the gold label is floored, not infinite.
    hard = torch.tensor([[[1.0, 0.0, 0.0]]])
    assert math.isfinite(negative_log_likelihood(hard, torch.tensor([[1]]), mask[:, :1]))


def test_reliability_bins_by_hand():
    # Two words at confidence 0.9 (one right), two at 0.65 (both right), one padding word.
    probs = torch.tensor([[[0.9, 0.1], [0.9, 0.1], [0.35, 0.65], [0.35, 0.65], [1.0, 0.0]]])
    gold = torch.tensor([[0, 1, 1, 1, 1]])
    mask = torch.tensor([[True, True, True, True, False]])
    diagram = reliability_diagram(probs, gold, mask, n_bins=15)
    assert diagram.edges[0] == 0.0 and diagram.edges[-1] == 1.0 and len(diagram.edges) == 16
    assert diagram.count.sum() == 4
    b_hi, b_lo = math.ceil(0.9 * 15) - 1, math.ceil(0.65 * 15) - 1
    assert diagram.count[b_hi] == 2 and diagram.count[b_lo] == 2
    assert diagram.accuracy[b_hi] == pytest.approx(0.5)
    assert diagram.accuracy[b_lo] == pytest.approx(1.0)
    assert np.isnan(diagram.confidence[0])  # an empty bin
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.65)
    assert diagram.ece == pytest.approx(expected)
    assert expected_calibration_error(probs, gold, mask) == pytest.approx(expected)


def test_confidence_one_lands_in_the_last_bin():
    probs = torch.tensor([[[1.0, 0.0]]])
    diagram = reliability_diagram(probs, torch.tensor([[0]]), torch.tensor([[True]]), n_bins=10)
    assert diagram.count[-1] == 1 and diagram.ece == 0.0


def test_ece_from_bins_skips_empty_bins_and_is_nan_without_words():
    nan = float("nan")
    assert ece_from_bins([2, 0, 2], [0.5, nan, 0.9], [1.0, nan, 0.5]) == pytest.approx(0.45)
    assert math.isnan(ece_from_bins([0, 0], [nan, nan], [nan, nan]))


def _calibration_world(n: int = 60_000, c: int = 5, seed: int = 0):
    """True probabilities and labels sampled from them: a perfectly calibrated predictor."""
    g = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(1, n, c, generator=g)
    probs = logits.softmax(-1)
    gold = torch.multinomial(probs[0], 1, generator=g).T
    return logits, probs, gold, torch.ones(1, n, dtype=torch.bool)


def test_ece_of_a_calibrated_predictor_is_near_zero():
    _, probs, gold, mask = _calibration_world()
    assert expected_calibration_error(probs, gold, mask) < 0.015


def test_ece_of_an_overconfident_predictor_is_large():
    logits, probs, gold, mask = _calibration_world()
    overconfident = (4.0 * logits).softmax(-1)  # same argmax, sharper probabilities
    ece_true = expected_calibration_error(probs, gold, mask)
    ece_sharp = expected_calibration_error(overconfident, gold, mask)
    assert ece_sharp > 0.1 and ece_sharp > 5 * ece_true
    # The overconfident predictor is also worse in NLL and Brier, with the same accuracy.
    assert negative_log_likelihood(overconfident, gold, mask) > negative_log_likelihood(
        probs, gold, mask
    )
    assert brier_score(overconfident, gold, mask) > brier_score(probs, gold, mask)


def test_correlation_by_hand():
    x, y = [1.0, 2.0, 3.0], [1.0, 2.0, 4.0]
    # Pearson by hand: deviations (-1, 0, 1) and (-4/3, -1/3, 5/3).
    r = 3.0 / math.sqrt(2.0 * 42.0 / 9.0)
    result = correlate(x, y)
    assert result.pearson == pytest.approx(r)
    assert result.spearman == pytest.approx(1.0)  # monotone
    assert result.n == 3 and 0.0 < result.pearson_p < 1.0


def test_correlation_sign_and_significance():
    rng = np.random.default_rng(1)
    entropy = rng.uniform(0.1, 2.0, size=40)
    score = 0.9 - 0.3 * entropy + rng.normal(0, 0.05, size=40)
    result = correlate(entropy, score)
    assert result.pearson < -0.9 and result.spearman < -0.85
    assert result.pearson_p < 1e-10 and result.spearman_p < 1e-8
    noise = correlate(entropy, rng.normal(size=40))
    assert abs(noise.pearson) < 0.5 and noise.pearson_p > result.pearson_p


def test_correlation_edge_cases():
    assert math.isnan(correlate([1, 1, 1], [1, 2, 3]).pearson)
    with pytest.raises(ValueError, match="at least 3"):
        correlate([1, 2], [2, 1])
    with pytest.raises(ValueError, match="one length"):
        correlate([1, 2, 3], [2, 1])


def test_entropy_score_correlation_reads_score_pair_results():
    results = {
        ("pos", "fi"): {"entropy": 0.2, "score": 0.9},
        ("pos", "wo"): {"entropy": 1.1, "score": 0.5},
        ("ner", "fi"): {"entropy": 0.4, "score": 0.8},
        ("ner", "wo"): {"entropy": 0.9, "score": 0.3},
    }
    result = entropy_score_correlation(results)
    assert result.n == 4 and result.pearson < -0.8 and result.spearman == pytest.approx(-0.8)
    with pytest.raises(KeyError, match="entropy"):
        entropy_score_correlation({("pos", "fi"): {"score": 0.9}})

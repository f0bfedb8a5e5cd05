"""BEA's Pyro model recovers simulated annotators' reliabilities and beats majority vote."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

from pfpyro.baselines.bea import BEAPrior, bea_model, fit_bea, majority_vote_start, one_hot_votes


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensor ops: one thread avoids oversubscription on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _confusion(accuracy: float, c: int) -> torch.Tensor:
    """Right with probability ``accuracy``, otherwise any other label uniformly."""
    v = torch.full((c, c), (1 - accuracy) / (c - 1))
    v.fill_diagonal_(accuracy)
    return v


def _annotate(truth: torch.Tensor, confusions: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    columns = [torch.multinomial(v[truth], 1, generator=g).squeeze(-1) for v in confusions]
    return torch.stack(columns, dim=-1)


@pytest.fixture(scope="module")
def crowd():
    """2,000 words, 5 classes with skewed prevalence, 5 annotators from good to near random."""
    c, n = 5, 2000
    g = torch.Generator().manual_seed(0)
    pi = torch.tensor([0.45, 0.25, 0.15, 0.1, 0.05])
    truth = torch.multinomial(pi, n, replacement=True, generator=g)
    accuracies = [0.85, 0.75, 0.6, 0.3, 0.22]  # chance is 0.2
    confusions = torch.stack([_confusion(a, c) for a in accuracies])
    votes = _annotate(truth, confusions, seed=1)
    return truth, votes, c, fit_bea(votes, c)


def test_bea_recovers_each_annotators_accuracy(crowd):
    truth, votes, _, fit = crowd
    empirical = (votes == truth.unsqueeze(-1)).float().mean(0)
    assert fit.accuracy.shape == (5,)
    assert torch.allclose(fit.accuracy, empirical, atol=0.03), (fit.accuracy, empirical)
    # and ranks them in the true order of reliability
    assert fit.accuracy.argsort(descending=True).tolist() == [0, 1, 2, 3, 4]


def test_bea_recovers_prevalence_and_confusion_rows(crowd):
    truth, votes, c, fit = crowd
    assert torch.allclose(fit.pi, torch.bincount(truth, minlength=c) / len(truth), atol=0.03)
    # the best annotator's confusion matrix, row by row, against its empirical rates
    for k in range(c):
        rows = votes[truth == k, 0]
        empirical = torch.bincount(rows, minlength=c) / len(rows)
        assert torch.allclose(fit.confusion[0, k], empirical, atol=0.08)


def test_bea_labels_beat_majority_vote_and_every_annotator(crowd):
    truth, votes, c, fit = crowd
    majority = torch.nn.functional.one_hot(votes, c).sum(1).argmax(-1)
    bea_accuracy = (fit.labels == truth).float().mean()
    mv_accuracy = (majority == truth).float().mean()
    best_annotator = (votes == truth.unsqueeze(-1)).float().mean(0).max()
    assert bea_accuracy > mv_accuracy + 0.02
    assert bea_accuracy > best_annotator
    assert torch.allclose(fit.posterior.sum(-1), torch.ones(len(truth)))


def test_posterior_is_the_closed_form_given_the_fit(crowd):
    _, votes, _, fit = crowd
    log_v = fit.confusion.log()  # [S, c, c]
    sources = torch.arange(votes.shape[1])
    logits = fit.pi.log() + log_v[sources, :, votes].sum(-2)  # [W, S, c] -> [W, c]
    assert torch.allclose(fit.posterior, logits.softmax(-1), atol=1e-4)


def test_model_likelihood_is_the_product_over_sources():
    # With z fixed, the model's "votes" factor must equal sum_s log Cat(y_s | V[s, z]).
    c, n, s = 4, 6, 3
    g = torch.Generator().manual_seed(3)
    votes = torch.randint(c, (n, s), generator=g)
    z = torch.randint(c, (n,), generator=g)
    pi = torch.full((c,), 1 / c)
    confusion = torch.rand(s, c, c, generator=g).softmax(-1)
    conditioned = poutine.condition(bea_model, data={"pi": pi, "confusion": confusion, "z": z})
    trace = poutine.trace(conditioned).get_trace(one_hot_votes(votes, c), BEAPrior())
    factor = trace.nodes["votes"]["fn"].log_prob(torch.zeros(()))
    expected = torch.stack(
        [dist.Categorical(confusion[k][z]).log_prob(votes[:, k]) for k in range(s)]
    ).sum(0)
    assert torch.allclose(factor, expected, atol=1e-5)
    assert trace.nodes["z"]["infer"].get("enumerate") == "parallel"


def test_majority_vote_start_is_a_distribution():
    votes = torch.tensor([[0, 0, 1], [2, 2, 2], [1, 0, 1]])
    pi, confusion = majority_vote_start(one_hot_votes(votes, 3), BEAPrior())
    assert pi.shape == (3,) and confusion.shape == (3, 3, 3)
    assert torch.allclose(pi.sum(), torch.tensor(1.0))
    assert torch.allclose(confusion.sum(-1), torch.ones(3, 3))
    assert bool((confusion > 0).all())
    # By hand: the words' vote shares are (2/3, 1/3, 0), (0, 0, 1), (1/3, 2/3, 0); they sum
    # to one word per label, plus the prior's pseudo-count 1: pi is uniform.
    assert torch.allclose(pi, torch.full((3,), 1 / 3))
    # Source 2 said label 1 for words 0 and 2, whose shares of label 0 are 2/3 and 1/3, so
    # row 0 counts (0, 1, 0) plus the prior row (2, 1, 1).
    assert torch.allclose(confusion[2, 0], torch.tensor([2.0, 2.0, 1.0]) / 5)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="label ids"):
        fit_bea(torch.tensor([[0, 5]]), 3)
    with pytest.raises(ValueError, match="matrix"):
        fit_bea(torch.zeros(0, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match=">= 1"):
        BEAPrior(diagonal=0.5)


def test_fit_is_reproducible_and_leaves_the_param_store_alone():
    pyro.clear_param_store()
    truth = torch.randint(3, (200,), generator=torch.Generator().manual_seed(5))
    votes = _annotate(truth, torch.stack([_confusion(0.8, 3)] * 3), seed=4)
    first, second = fit_bea(votes, 3, steps=40), fit_bea(votes, 3, steps=40)
    assert torch.equal(first.confusion, second.confusion)
    assert len(pyro.get_param_store()) == 0

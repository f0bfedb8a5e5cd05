"""Which sentences to label next: acquisition scores of an unlabelled pool under a posterior.

With S posterior samples θ_s of a pair's classifier and p_s(y_w) = p(y_w | x, θ_s) for each
word w of a sentence x, p̄(y_w) = (1/S) Σ_s p_s(y_w) is the model average, and

- ``entropy``: Σ_w H[p̄(y_w)], the predictive entropy (total uncertainty, in nats);
- ``bald``: Σ_w ( H[p̄(y_w)] − (1/S) Σ_s H[p_s(y_w)] ), the mutual information I(y_w; θ)
  between each word's label and the classifier weights (BALD, Houlsby et al., 2011): the part
  of the uncertainty that a label would remove from the weights, not the noise no label can.
  The words' labels are independent given θ, so the sum is an upper bound on the sentence's
  joint I(y_1..n; θ), the usual factorised approximation. 0 <= bald <= entropy, word by word;
- ``random``: seeded uniform draws, the baseline.

Scores sum over words, so longer sentences score higher: they cost more to label too, and
what is budgeted here is sentences, as in the paper's few-shot curves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from pfpyro.config import ACQUISITION_STRATEGIES
from pfpyro.data.batch import sentence_chunks
from pfpyro.data.subwords import SubwordStates
from pfpyro.errors import ConfigError
from pfpyro.evaluate.uncertainty import token_entropy
from pfpyro.infer.predict import PFPredictor
from pfpyro.progress import progress_bar

STRATEGIES = ACQUISITION_STRATEGIES

#: Per-sample probabilities [S, N, T, c] of a chunk of sentences (features, mask): the same S
#: classifiers at every call.
SampleProba = Callable[[Tensor, Tensor], Tensor]


def check_strategy(strategy: str) -> str:
    """``strategy`` itself when it is one of :data:`STRATEGIES`; else a ConfigError."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    return strategy


def word_information(sample_probs: Tensor) -> tuple[Tensor, Tensor]:
    """(predictive entropy, mutual information I(y; θ)) per word, [N, T] each, in float64,
    from per-sample probabilities [S, N, T, c]. The MI is clamped at 0 (rounding)."""
    if sample_probs.dim() != 4:
        shape = tuple(sample_probs.shape)
        raise ConfigError(f"expected sample probabilities [S, N, T, c], got {shape}")
    probs = sample_probs.detach().to(torch.float64)
    entropy = token_entropy(probs.mean(0))
    expected = token_entropy(probs).mean(0)
    return entropy, (entropy - expected).clamp_min(0.0)


def sentence_information(sample_probs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(entropy [N], BALD [N]) of a chunk's sentences: the words' values summed, padding
    left out (see the module doc)."""
    entropy, information = word_information(sample_probs)
    real = mask.to(entropy.device, torch.bool)
    return (entropy * real).sum(-1).cpu(), (information * real).sum(-1).cpu()


def ranking(scores: Tensor) -> Tensor:
    """Indices of ``scores``, highest first; equal scores keep the pool's order."""
    return torch.sort(scores, descending=True, stable=True).indices


def fixed_samples(predictor: PFPredictor, task: str, lang: str, num_samples: int) -> SampleProba:
    """The run's posterior as a :data:`SampleProba`: S draws of (t, l, θ) made once, so every
    chunk of a pool is scored by the same S classifiers."""
    if num_samples < 2:
        raise ConfigError(f"posterior samples: BALD needs at least 2, got {num_samples}")
    samples: dict[str, Tensor] = predictor.posterior_samples(num_samples)

    def sample_proba(features: Tensor, mask: Tensor) -> Tensor:
        nonlocal samples
        probs, samples = predictor.sample_proba_with_samples(task, lang, features, mask, samples)
        return probs

    return sample_proba


def pool_information(
    sample_proba: SampleProba,
    features: Tensor | SubwordStates,
    mask: Tensor,
    *,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    """(entropy [N], BALD [N]) of a pool's sentences (word features [N, T, e] or subword
    states, mask [N, T]), in chunks of ``batch_size`` sentences with a progress bar when
    asked."""
    entropy, bald = [torch.zeros(0, dtype=torch.float64)], [torch.zeros(0, dtype=torch.float64)]
    chunks = sentence_chunks(features, mask, batch_size, mask.device)
    total = -(-mask.shape[0] // batch_size)
    for part, part_mask in progress_bar(
        chunks, total=total, desc="pool scores", enabled=progress, unit="chunk"
    ):
        h, mi = sentence_information(sample_proba(part, part_mask), part_mask)
        entropy.append(h)
        bald.append(mi)
    return torch.cat(entropy), torch.cat(bald)


def score_pool(
    sample_proba: SampleProba | None,
    features: Tensor | SubwordStates,
    mask: Tensor,
    strategy: str = "bald",
    *,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> Tensor:
    """[N] float64 scores of a pool's sentences under ``strategy`` (see the module doc);
    ``random`` reads no model (``sample_proba`` may be None) and draws U(0, 1) from
    ``seed``."""
    check_strategy(strategy)
    if strategy == "random":
        generator = torch.Generator().manual_seed(seed)
        return torch.rand(mask.shape[0], generator=generator, dtype=torch.float64)
    if sample_proba is None:
        raise ConfigError(f"strategy {strategy!r} needs posterior samples")
    entropy, bald = pool_information(
        sample_proba, features, mask, batch_size=batch_size, progress=progress
    )
    return bald if strategy == "bald" else entropy


@dataclass(frozen=True)
class PairGain:
    """The expected gain of labelling ``k`` sentences of one pair's pool (see
    :func:`expected_gain`)."""

    task: str
    lang: str
    gain: float
    pool_entropy: float
    pool_size: int


def expected_gain(bald: Tensor, entropy: Tensor, k: int) -> tuple[float, float]:
    """(the summed BALD of the pool's ``k`` best sentences, the pool's mean sentence entropy):
    the first is the pair's expected gain, an upper bound on the information (nats) that
    labelling those k sentences gives about the pair's classifier; the second says how unsure
    the model is on the pool before any label."""
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    top = torch.sort(bald, descending=True).values[:k]
    return float(top.sum()), float(entropy.mean()) if len(entropy) else 0.0


def rank_pairs(scores: Mapping[tuple[str, str], tuple[Tensor, Tensor]], k: int) -> list[PairGain]:
    """Pairs by expected gain of ``k`` labelled sentences, highest first, from each pair's
    pool scores (BALD [N], entropy [N])."""
    gains = [
        PairGain(task, lang, *expected_gain(bald, entropy, k), len(bald))
        for (task, lang), (bald, entropy) in scores.items()
    ]
    return sorted(gains, key=lambda g: (-g.gain, g.task, g.lang))


__all__ = [
    "STRATEGIES",
    "PairGain",
    "SampleProba",
    "check_strategy",
    "expected_gain",
    "fixed_samples",
    "pool_information",
    "rank_pairs",
    "ranking",
    "score_pool",
    "sentence_information",
    "word_information",
]

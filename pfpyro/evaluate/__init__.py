"""Metrics of a pair's predictions: task scores, uncertainty and calibration, correlations."""

from pfpyro.evaluate.correlation import (
    POOLED,
    Correlation,
    correlate,
    correlate_by_group,
    entropy_score_correlation,
)
from pfpyro.evaluate.decoding import bio_transitions, is_valid_bio, viterbi_decode
from pfpyro.evaluate.metrics import (
    PRF,
    argmax_labels,
    ids_to_tags,
    span_f1,
    span_prf,
    token_accuracy,
    token_f1,
    token_prf,
)
from pfpyro.evaluate.scoring import headline_metric, headline_score, score_pair
from pfpyro.evaluate.uncertainty import (
    ReliabilityDiagram,
    brier_score,
    ece_from_bins,
    expected_calibration_error,
    mean_entropy,
    negative_log_likelihood,
    reliability_diagram,
    sentence_entropy,
    token_entropy,
)

__all__ = [
    "POOLED",
    "PRF",
    "Correlation",
    "ReliabilityDiagram",
    "argmax_labels",
    "bio_transitions",
    "brier_score",
    "correlate",
    "correlate_by_group",
    "ece_from_bins",
    "entropy_score_correlation",
    "expected_calibration_error",
    "headline_metric",
    "headline_score",
    "ids_to_tags",
    "is_valid_bio",
    "mean_entropy",
    "negative_log_likelihood",
    "reliability_diagram",
    "score_pair",
    "sentence_entropy",
    "span_f1",
    "span_prf",
    "token_accuracy",
    "token_entropy",
    "token_f1",
    "token_prf",
    "viterbi_decode",
]

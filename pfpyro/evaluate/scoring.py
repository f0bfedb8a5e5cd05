"""Every metric of one task–language pair from one call: :func:`score_pair`."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pfpyro.data.tasks import find_task, task_spec
from pfpyro.evaluate.decoding import viterbi_decode
from pfpyro.evaluate.metrics import ids_to_tags, span_prf, token_accuracy, token_prf
from pfpyro.evaluate.uncertainty import (
    brier_score,
    expected_calibration_error,
    mean_entropy,
    negative_log_likelihood,
    sentence_entropy,
)


def headline_metric(task: str) -> str:
    """The metric ``task`` is reported and selected by: its description's ``metric`` (POS
    accuracy, NER span F1), which :func:`score_pair` copies to ``score``. For a task this
    process has no description of (a results file from another catalog), ``score`` itself:
    every scored pair holds it, so tables and figures still rank by the headline."""
    spec = find_task(task)
    return spec.metric if spec is not None else "score"


COMMON_KEYS: tuple[str, ...] = (
    "score",
    "accuracy",
    "entropy",
    "sentence_entropy",
    "ece",
    "nll",
    "brier",
    "n_words",
    "n_sentences",
)
SPAN_KEYS: tuple[str, ...] = (
    "span_precision",
    "span_recall",
    "span_f1",
    "span_precision_valid",
    "span_recall_valid",
    "span_f1_valid",
    "token_precision",
    "token_recall",
    "token_f1",
    "n_entities",
)


def headline_score(
    task: str,
    probs: Tensor | np.ndarray,
    gold_labels: Tensor | np.ndarray,
    mask: Tensor | np.ndarray,
) -> float:
    """The task's headline metric alone (:func:`headline_metric`: POS accuracy, NER span F1
    of the argmax): what model selection maximises, without the rest of :func:`score_pair`."""
    spec = task_spec(task)
    labels = spec.labels
    gold = torch.as_tensor(gold_labels).long()
    mask = torch.as_tensor(mask).bool()
    pred = torch.as_tensor(probs).argmax(-1).cpu()
    if spec.metric == "span_f1":
        return span_prf(ids_to_tags(gold, mask, labels), ids_to_tags(pred, mask, labels)).f1
    return token_accuracy(gold, pred, mask)


def score_pair(
    task: str,
    probs: Tensor | np.ndarray,
    gold_labels: Tensor | np.ndarray,
    mask: Tensor | np.ndarray,
    *,
    n_bins: int = 15,
) -> dict[str, float]:
    """All metrics of one pair from its predicted probabilities and gold label ids.

    ``probs`` is [N, T, c] over ``label_set(task)``, ``gold_labels`` [N, T] ids, ``mask``
    [N, T]; predicted labels are the argmax. Keys, for both tasks:

    - ``score``: the task's headline metric (:func:`headline_metric`: POS accuracy, NER
      span F1);
    - ``accuracy``: token accuracy;
    - ``entropy``: mean predictive entropy per word (nats); ``sentence_entropy``: the mean over
      sentences of each sentence's mean word entropy;
    - ``ece`` (``n_bins`` equal-width bins), ``nll`` (per word), ``brier`` (per word, summed
      over classes);
    - ``n_words``, ``n_sentences``: what was scored (as floats, so the dict is uniform).

    and for a span task (IOB2, such as NER) also ``span_precision``, ``span_recall``,
    ``span_f1`` (entity level, seqeval), the same three of the constrained decoding
    (:func:`~pfpyro.evaluate.decoding.viterbi_decode`, the most probable valid IOB2 sequence)
    as ``span_precision_valid``, ``span_recall_valid``, ``span_f1_valid``, then
    ``token_precision``, ``token_recall``, ``token_f1`` (micro over the tags other than the
    outside one, of the argmax) and ``n_entities`` (gold entities)."""
    spec = task_spec(task)
    labels = spec.labels
    probs = torch.as_tensor(probs)
    if probs.dim() != 3 or probs.shape[-1] != len(labels):
        raise ValueError(f"{task} probs must be [N, T, {len(labels)}], got {tuple(probs.shape)}")
    gold = torch.as_tensor(gold_labels).long()
    mask = torch.as_tensor(mask).bool()
    pred = probs.argmax(-1)
    out: dict[str, float] = {
        "accuracy": token_accuracy(gold, pred, mask),
        "entropy": mean_entropy(probs, mask),
        "sentence_entropy": float(sentence_entropy(probs, mask)[mask.any(-1)].mean()),
        "ece": expected_calibration_error(probs, gold, mask, n_bins),
        "nll": negative_log_likelihood(probs, gold, mask),
        "brier": brier_score(probs, gold, mask),
        "n_words": float(mask.sum()),
        "n_sentences": float(mask.any(-1).sum()),
    }
    if spec.spans:
        gold_tags = ids_to_tags(gold, mask, labels)
        span = span_prf(gold_tags, ids_to_tags(pred, mask, labels))
        valid = span_prf(gold_tags, ids_to_tags(viterbi_decode(probs, mask, labels), mask, labels))
        token = token_prf(gold, pred, mask, outside=labels.index(spec.outside))
        out.update(
            span_precision=span.precision,
            span_recall=span.recall,
            span_f1=span.f1,
            span_precision_valid=valid.precision,
            span_recall_valid=valid.recall,
            span_f1_valid=valid.f1,
            token_precision=token.precision,
            token_recall=token.recall,
            token_f1=token.f1,
            n_entities=float(span.n_gold),
        )
    out["score"] = out[spec.metric]
    return out

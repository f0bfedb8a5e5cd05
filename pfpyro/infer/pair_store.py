"""A run's few-shot pair posteriors on disk: ``RUN/pairs/<task>.<lang>.pt`` and its record.

``pfpyro update`` fits the posterior of an unseen pair on a file of one's own labels
(:func:`~pfpyro.infer.pair_posterior.fit_pair`; the run itself is left as it was) and saves
it here, so that ``pfpyro predict``, ``pfpyro suggest`` and :func:`pfpyro.load` use it for
that pair. The ``.pt`` holds the fitted :class:`PairPosterior`'s tensors and the record of
what it was fitted on; the ``.json`` beside it is the same record, for people to read. Each
file is written atomically, and a later update of the pair replaces both.

A pair posterior is fitted against one state of the run: one saved at another training step
(the run resumed or retrained since) is stale, and is ignored with a warning.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import pfpyro
from pfpyro.atomic import atomic_write, atomic_write_text
from pfpyro.data.batch import PairTensors
from pfpyro.errors import CheckpointError
from pfpyro.infer.checkpoint import safe_load
from pfpyro.infer.pair_posterior import FewShotSettings, PairPosterior
from pfpyro.model.factorization import ParameterFactorization
from pfpyro.model.guides import FactorizationGuide

logger = logging.getLogger(__name__)

PAIRS_DIR = "pairs"
FORMAT = "pfpyro-pair-posterior"
FORMAT_VERSION = 1


@dataclass
class PairUpdate:
    """A pair's fitted few-shot posterior, the ``record`` of what it was fitted on (k, words,
    settings, date, the run's step; the labels file when read from one) and the file it is
    saved in (None: fitted in this process only)."""

    posterior: PairPosterior
    record: dict[str, Any]
    path: Path | None = None

    @property
    def k(self) -> int:
        """The number of labelled sentences it was fitted on."""
        return int(self.record["k"])

    def note(self) -> str:
        """One line saying which posterior predicts the pair, for logs and standard error."""
        if self.path is None:
            return f"using the few-shot posterior fitted in this session, k = {self.k}"
        return f"using the few-shot posterior of {self.path}, k = {self.k}"


def pair_record(data: PairTensors, settings: FewShotSettings, run_step: int | None) -> dict:
    """What a pair posterior fitted on ``data`` with ``settings`` records of itself."""
    return {
        "k": len(data),
        "words": int(data.mask.sum()),
        "steps": settings.steps,
        "lr": settings.lr,
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_step": run_step,
        "version": pfpyro.__version__,
    }


def pair_path(run_dir: str | Path, task: str, lang: str) -> Path:
    """Where a run keeps the few-shot posterior of pair (task, lang)."""
    return Path(run_dir) / PAIRS_DIR / f"{task}.{lang}.pt"


def save_pair(run_dir: str | Path, update: PairUpdate) -> PairUpdate:
    """Write ``update`` into ``run_dir``'s pairs folder (the .pt, then its .json record), each
    file atomically, replacing an earlier one of the pair; the update with its path."""
    posterior = update.posterior
    path = pair_path(run_dir, posterior.task, posterior.lang)
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": posterior.task,
        "lang": posterior.lang,
        "state": {name: value.detach().cpu() for name, value in posterior.state_dict().items()},
        "record": update.record,
    }
    atomic_write(path, lambda handle: torch.save(body, handle))
    atomic_write_text(path.with_suffix(".json"), json.dumps(update.record, indent=2) + "\n")
    return PairUpdate(posterior, update.record, path)


def load_pair(
    run_dir: str | Path,
    factorization: ParameterFactorization,
    guide: FactorizationGuide,
    task: str,
    lang: str,
    run_step: int | None = None,
) -> PairUpdate | None:
    """The saved few-shot posterior of pair (task, lang) of the run ``factorization``,
    ``guide`` (at training step ``run_step``); None when the run has none, or only a stale
    one (fitted at another step: a warning says so). CheckpointError for a file that is not
    a pair posterior of this pair."""
    path = pair_path(run_dir, task, lang)
    if not path.is_file():
        return None
    body = safe_load(path)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a pfpyro pair posterior (no format tag {FORMAT!r})")
    if body.get("format_version") != FORMAT_VERSION or (body.get("task"), body.get("lang")) != (
        task,
        lang,
    ):
        raise CheckpointError(
            f"{path}: expected pair {task}/{lang} in format {FORMAT_VERSION}, found "
            f"{body.get('task')}/{body.get('lang')} in format {body.get('format_version')}"
        )
    record = dict(body.get("record") or {})
    if run_step is not None and record.get("run_step") != run_step:
        logger.warning(
            "%s was fitted at step %s of the run, which is now at step %s: ignored (run "
            "`pfpyro update` again)",
            path,
            record.get("run_step"),
            run_step,
        )
        return None
    posterior = PairPosterior(factorization, guide, task, lang)
    try:
        posterior.load_state_dict(body["state"])
    except (KeyError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "no state"
        raise CheckpointError(
            f"{path}: does not fit this run's pair {task}/{lang} ({reason})"
        ) from None
    posterior.to(factorization.anchor.device)
    return PairUpdate(posterior, record, path)


__all__ = [
    "FORMAT",
    "PAIRS_DIR",
    "PairUpdate",
    "load_pair",
    "pair_path",
    "pair_record",
    "save_pair",
]

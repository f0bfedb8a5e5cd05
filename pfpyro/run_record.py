"""What a run's ``run.json`` records of its encoder and of its seen pairs: the one place that
finds them, for loading a run (:func:`pfpyro.load`), extending one (:mod:`pfpyro.infer.extend`)
and ranking its unseen pairs (``pfpyro suggest --pairs``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def encoder_section(run: str | Path) -> dict[str, Any] | None:
    """The ``encoder`` section of the run.json beside ``run``, or of the experiment above it
    (a unit's folder is ``<experiment>/train/<unit>``); None when none records one."""
    run = Path(run)
    for folder in (run, run.parent, run.parent.parent):
        record = folder / "run.json"
        if record.is_file():
            config = json.loads(record.read_text(encoding="utf-8")).get("config", {})
            if "encoder" in config:
                return config["encoder"]
    return None


def seen_pairs(run: str | Path) -> list[tuple[str, str]] | None:
    """The pairs a run trained on: its own run.json's ``seen`` (``pfpyro train``), or, for a
    unit ``<experiment>/train/<partition>_seed<s>_<model>``, that partition's in the
    experiment's run.json; None when neither records them."""
    run = Path(run)
    own = run / "run.json"
    if own.is_file():
        seen = json.loads(own.read_text(encoding="utf-8")).get("seen")
        if seen is not None:
            return [(task, lang) for task, lang in seen]
    above = run.parent.parent / "run.json"
    if above.is_file() and "_seed" in run.name:
        partitions = json.loads(above.read_text(encoding="utf-8")).get("partitions", {})
        part = partitions.get(run.name.rsplit("_seed", 1)[0])
        if part is not None:
            return [(task, lang) for task, lang in part["seen"]]
    return None


__all__ = ["encoder_section", "seen_pairs"]

"""What a run's ``run.json`` records of its encoder: the one place that finds it, for loading a
run (:func:`pfpyro.load`) and for extending one (:mod:`pfpyro.infer.extend`)."""

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


__all__ = ["encoder_section"]

"""Training logs: one JSON object per line in the run folder, and TensorBoard when asked.

Every record carries ``step`` and ``kind`` ("train": ELBO, KL of t and l, learning rate, the
step's pair; "eval": the mean dev score and each seen pair's; "event": start, resume, stop).
The JSON-lines file is the source of truth (plain text, one ``json.loads`` per line); the
TensorBoard event files mirror its numbers for people who like curves. On resume, records
written after the checkpoint's step (by the run that was cut off) are dropped, so the log
reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

LOG_NAME = "log.jsonl"
TENSORBOARD_DIR = "tensorboard"

_logger = logging.getLogger("pfpyro.infer")


def _plain(value: Any) -> Any:
    """JSON-safe: non-finite floats become strings ("nan", "inf") instead of invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines log, in order (an unfinished last line is skipped)."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash mid-write
    return records


class RunLogger:
    """Writes training records to ``out_dir/log.jsonl`` (and TensorBoard); a no-op sink when
    ``out_dir`` is None. ``resume_step`` truncates the log to the records up to that step."""

    def __init__(
        self,
        out_dir: str | Path | None,
        *,
        tensorboard: bool = False,
        resume_step: int | None = None,
    ) -> None:
        self.path = Path(out_dir) / LOG_NAME if out_dir is not None else None
        self._handle = None
        self._writer = None
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            self._truncate(resume_step)
        elif resume_step is None and self.path.exists():
            self.path.unlink()  # a fresh run starts a fresh log
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        if tensorboard:
            self._writer = self._open_tensorboard(resume_step)

    def _truncate(self, step: int) -> None:
        kept = [r for r in read_log(self.path) if int(r.get("step", 0)) <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            for record in kept:
                handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def _open_tensorboard(self, resume_step: int | None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # tensorboard is an optional extra
            _logger.warning("TensorBoard logging is off: %s", err)
            return None
        log_dir = self.path.parent / TENSORBOARD_DIR
        # purge_step drops events after the checkpoint that a cut-off run had written.
        purge = None if resume_step is None else resume_step + 1
        return SummaryWriter(log_dir=str(log_dir), purge_step=purge)

    @property
    def tensorboard_enabled(self) -> bool:
        return self._writer is not None

    def log(self, kind: str, step: int, **values: Any) -> dict[str, Any]:
        """Write one record and return it."""
        record = {"kind": kind, "step": step, **values}
        if self._handle is not None:
            self._handle.write(json.dumps(_plain(record)) + "\n")
            self._handle.flush()
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._writer.add_scalar(f"{kind}/{key}", value, step)
                elif isinstance(value, dict):
                    for sub, number in value.items():
                        if isinstance(number, int | float):
                            self._writer.add_scalar(f"{kind}/{key}/{sub}", number, step)
        return record

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

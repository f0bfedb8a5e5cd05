"""Progress bars that read well wherever they go: tqdm's bar on a terminal, and on anything
else (a log file, a pipe, CI) whole lines, one every few percent and at most every half
minute, with no carriage returns.

tqdm redraws its bar in place with ``\\r``, which in a log file leaves thousands of partial
lines on one physical line. Off a terminal, the bar writes through :class:`LineWriter`, which
turns each redraw into a line of its own and drops repeats; tqdm's own options decide how
often it redraws (``miniters``: 5 % of the total; ``mininterval``: 30 s), and tqdm's
environment variables (``TQDM_MININTERVAL``, ``TQDM_MINITERS``) override them.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from typing import IO, Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")

#: Off a terminal, a line every this many seconds at most (tqdm's ``mininterval``)...
LOG_INTERVAL_S = 30.0
#: ...and every this fraction of the total at most (tqdm's ``miniters``).
LOG_FRACTION = 0.05

_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LineWriter:
    """A text stream for tqdm that writes each redraw of the bar as a line of its own: the
    ``\\r`` and escape sequences tqdm uses to redraw in place are dropped, and so is a redraw
    equal to the line before."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> int:
        for part in re.split(r"[\r\n]", _ESCAPES.sub("", text)):
            part = part.rstrip()
            if part and part != self.last:
                self.stream.write(part + "\n")
                self.last = part
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (standard error by default) is a terminal."""
    isatty = getattr(sys.stderr if stream is None else stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress_bar(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str,
    enabled: bool = True,
    stream: IO[str] | None = None,
    **options: Any,
) -> tqdm:
    """A tqdm bar on ``stream`` (standard error by default): redrawn in place on a terminal,
    whole lines elsewhere (see the module notes). ``options`` go to tqdm (``unit``,
    ``unit_scale``, ``initial``, ...)."""
    stream = sys.stderr if stream is None else stream
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, disable=not enabled, file=stream,
                    dynamic_ncols=True, **options)  # fmt: skip
    if "TQDM_MININTERVAL" not in os.environ:
        options.setdefault("mininterval", LOG_INTERVAL_S)
    if "TQDM_MINITERS" not in os.environ and total:
        options.setdefault("miniters", max(1, int(total * LOG_FRACTION)))
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, file=LineWriter(stream),
                ncols=80, **options)  # fmt: skip


__all__ = ["LineWriter", "is_terminal", "progress_bar"]

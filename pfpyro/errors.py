"""The errors pfpyro raises on purpose, so the CLI can print them in one line."""

from __future__ import annotations

from pathlib import Path


class PfpyroError(Exception):
    """Base of every error that is the user's to fix (bad input, bad config, missing file)."""


class DataFormatError(PfpyroError):
    """A corpus file that does not hold what its format promises.

    The message always names the file, the 1-based line and what was expected there.
    """

    def __init__(self, path: str | Path, line: int | None, expected: str, found: str = ""):
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.found = found
        where = f"{self.path}:{line}" if line is not None else self.path
        message = f"{where}: expected {expected}"
        if found:
            message += f", found {found!r}" if len(found) <= 80 else f", found {found[:77]!r}..."
        super().__init__(message)


class ConfigError(PfpyroError):
    """A config, catalog or partition request that cannot be met."""


class CheckpointError(PfpyroError):
    """A checkpoint that is missing, truncated or corrupt."""

"""Where the corpora live: one rule for finding the data root, used by every command and test."""

from __future__ import annotations

import os
from pathlib import Path

from pfpyro.errors import ConfigError

#: Environment variable that names the data root (CI sets it to ``../shared/data``).
DATA_ENV = "PFPYRO_DATA"

#: Where the data root sits relative to the current directory or to the repository root.
RELATIVE_DATA_ROOT = Path("..") / "shared" / "data"


def repo_root() -> Path:
    """The folder above the ``pfpyro`` package (the repository root in a source checkout)."""
    return Path(__file__).resolve().parent.parent.parent


def default_catalog_path() -> Path:
    """The paper's catalog, ``experiments/data/paper33.yaml`` under the repository root (the
    shipped catalog: its language and task tables serve every catalog)."""
    return repo_root() / "experiments" / "data" / "paper33.yaml"


def data_root(explicit: str | Path | None = None) -> Path:
    """The folder that holds the corpora, resolved to an absolute path.

    Tried in order: ``explicit``; else the environment variable ``PFPYRO_DATA``; else
    ``../shared/data`` against the current directory; else against the repository root.
    A root that is named (argument or environment) but missing is an error, never a silent
    fall-back, so a typo cannot make a run read other data than intended.
    """
    if explicit is not None:
        return _existing(Path(explicit), f"the folder given ({explicit})")
    env = os.environ.get(DATA_ENV)
    if env:
        return _existing(Path(env), f"${DATA_ENV} ({env})")
    tried = []
    for base in (Path.cwd(), repo_root()):
        candidate = (base / RELATIVE_DATA_ROOT).resolve()
        if candidate.is_dir():
            return candidate
        tried.append(str(candidate))
    raise ConfigError(
        f"no data root found; tried {' and '.join(tried)}. Set ${DATA_ENV} or pass --data DIR "
        "(the folder with ud/, wikiann/, ... described in shared/data/README.md)"
    )


def _existing(path: Path, what: str) -> Path:
    resolved = path.expanduser().resolve()
    if not resolved.is_dir():
        raise ConfigError(
            f"data root {resolved} does not exist or is not a folder (from {what}); "
            f"pass --data DIR or set ${DATA_ENV} to the folder with ud/, wikiann/, ..."
        )
    return resolved

"""Folders pfpyro builds once into its cache (the offline encoder, its ONNX export): built in a
temporary sibling, renamed into place, and complete only when their stamp says so.

The stamp (:data:`STAMP_NAME`, written last) records what the folder was built from and the
size of every file in it; a folder whose stamp is missing, names another source or lists a
file of another size is incomplete, so an interrupted build never leaves a folder that a
later run would load. Partial siblings of builds whose process died are removed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

#: Written last into a built folder: what it was built from, and its files' sizes.
STAMP_NAME = "pfpyro-source.json"


def stamp_matches(folder: str | Path, expected: Mapping[str, object]) -> bool:
    """True when ``folder``'s stamp holds ``expected`` and every file it lists has its size."""
    folder = Path(folder)
    try:
        stamp = json.loads((folder / STAMP_NAME).read_text(encoding="utf-8"))
        if any(stamp.get(key) != value for key, value in expected.items()):
            return False
        files = stamp["files"]
        return bool(files) and all(
            (folder / name).is_file() and (folder / name).stat().st_size == size
            for name, size in files.items()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def build_folder(folder: Path, stamp: Mapping[str, object], build: Callable[[Path], None]) -> Path:
    """Build ``folder`` with ``build(partial)`` in a temporary sibling, write the stamp (with
    the files' sizes) last, and rename it into place (an old ``folder`` is replaced)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(folder)
    partial = Path(
        tempfile.mkdtemp(prefix=f".{folder.name}.partial-{os.getpid()}-", dir=folder.parent)
    )
    try:
        build(partial)
        files = {p.name: p.stat().st_size for p in sorted(partial.iterdir())}
        text = json.dumps({**stamp, "files": files}, indent=2) + "\n"
        (partial / STAMP_NAME).write_text(text, encoding="utf-8")
        _apply_umask(partial)
        _replace_folder(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_partials(folder: Path) -> None:
    """Delete temporary siblings left by builds whose process has died (e.g. killed)."""
    prefix = f".{folder.name}.partial-"
    for sibling in folder.parent.glob(prefix + "*"):
        pid = sibling.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(sibling, ignore_errors=True)


def _apply_umask(folder: Path) -> None:
    """Ordinary permissions (mkdtemp and some writers create owner-only files)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)


def _replace_folder(new: Path, folder: Path) -> None:
    """Rename ``new`` to ``folder``; an old ``folder`` is moved aside first, then deleted."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(new, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["STAMP_NAME", "build_folder", "remove_dead_partials", "stamp_matches"]

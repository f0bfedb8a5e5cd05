"""Which model a folder holds: a sha256 over its weight, config and tokenizer files, so that
features are cached by what made them, not by a name. Free of torch and transformers (a hub
name's local folder is looked up through transformers only when one is given)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pfpyro.encode.offline import cache_root, sha256_file
from pfpyro.errors import ConfigError

#: Files of a model folder that make up its identity.
IDENTITY_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt", ".vocab", ".pt")


def local_model_folder(name_or_path: str) -> Path:
    """The local folder a model name or path loads from (a hub name: its cached snapshot)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path.resolve()
    from transformers.utils import cached_file

    try:
        config = cached_file(name_or_path, "config.json")
    except OSError as error:
        raise ConfigError(
            f"encoder {name_or_path!r}: no local folder or cached model: {error}"
        ) from None
    if config is None:
        raise ConfigError(f"encoder {name_or_path!r}: no config.json found")
    return Path(config).parent


def folder_identity(folder: str | Path, memo_dir: str | Path | None = None) -> str:
    """sha256 over the names and contents of a model folder's weight, config and tokenizer
    files. Per-file hashes are memoised in ``memo_dir`` (default ``<cache>/identity``),
    keyed by size and mtime; a memo that cannot be written is simply not kept."""
    folder = Path(folder).resolve()
    memo_dir = Path(memo_dir) if memo_dir is not None else cache_root() / "identity"
    memo_path = memo_dir / (hashlib.sha256(str(folder).encode()).hexdigest()[:32] + ".json")
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        memo = {}
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix in IDENTITY_SUFFIXES
    )
    if not files:
        raise ConfigError(f"{folder}: no model files to identify the encoder by")
    fresh, digest = {}, hashlib.sha256()
    for path in files:
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        old = memo.get(path.name)
        file_hash = old[2] if isinstance(old, list) and old[:2] == stamp else sha256_file(path)
        fresh[path.name] = [*stamp, file_hash]
        digest.update(f"{path.name}\0{file_hash}\n".encode())
    if fresh != memo:
        try:
            memo_dir.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"folder": str(folder), "files": fresh}, indent=1)
            temp = memo_path.with_suffix(f".tmp{id(fresh)}")
            temp.write_text(text, encoding="utf-8")
            temp.replace(memo_path)
        except OSError:
            pass
    return digest.hexdigest()


__all__ = ["IDENTITY_SUFFIXES", "folder_identity", "local_model_folder"]

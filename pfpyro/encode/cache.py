"""On-disk cache of per-sentence word features (fp16 safetensors under ``<cache>/features``).

One entry holds the features of one list of sentences (typically one file's worth). Its key
is a sha256 of the feature kind, the encoder identity, ``max_subwords`` and the exact words
of every sentence in order, so a changed file, model, tokenizer or length limit never reuses
a stale entry: there is nothing to invalidate, a stale entry is simply never asked for.

An entry is ``<key>.safetensors`` with ``features`` ``[total_words, dim]`` (fp16, the
sentences' arrays stacked) and ``lengths`` ``[n_sentences]`` (int64), written to a temporary
file and renamed into place. An entry that fails to load or whose lengths do not match the
words is deleted, logged and recomputed. Entries are read memory-mapped (copy-on-write), so a
corpus's features stay on disk until a mini-batch reads them: pfpyro only ever replaces an
entry by renaming a new file onto it, and nothing should rewrite one in place. ``kind`` leaves
room for other features of the same words (all subwords of a lower layer, for a trainable
encoder top) next to the first-subword ones; such a kind has one row per subword, and says
how many each sentence has.

A writer's temporary file is ``.<key prefix>.<pid>.<random>.tmp``, held under an exclusive
``flock`` for as long as the writer lives. A writer killed outright (``kill -9``, a lost
node) leaves its temporary behind, possibly gigabytes: the first write of a
:class:`FeatureCache` removes every temporary whose lock is free and whose writer is gone
(:meth:`FeatureCache.remove_stale_temporaries`), never one a live writer holds, so two
``pfpyro encode`` processes can share a cache. ``pfpyro cache info`` and ``pfpyro cache
clean`` show and remove them by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: a writer's liveness is read from its process id alone
    fcntl = None  # type: ignore[assignment]

import numpy as np

from pfpyro import __version__
from pfpyro.encode.offline import cache_root
from pfpyro.errors import PfpyroError

logger = logging.getLogger(__name__)

#: Default feature kind when the caller names none.
DEFAULT_KIND = "first-subword"

ComputeFn = Callable[[list[list[str]]], list[np.ndarray]]
#: ``fill(word_lists, out)``: write every sentence's rows, stacked, into ``out``.
FillFn = Callable[[list[list[str]], np.ndarray], None]


#: A temporary younger than this whose writer's process is alive may be one whose writer has
#: not taken its lock yet (the moment between creating and locking it): it is kept.
CREATION_GRACE_S = 60.0
#: Temporaries named without a process id were written by a pfpyro that took no lock: they
#: are stale once older than this.
UNLOCKED_TEMP_AGE_S = 24 * 3600.0

_TEMP_NAME = re.compile(r"\.[0-9a-f]{16}\.(?:(\d+)\.)?[^.]+\.tmp")


@dataclass(frozen=True)
class Temporary:
    """A writer's temporary entry file: its size, the writer's process id (None when the
    name has none) and whether it is stale (its writer is gone)."""

    path: Path
    size: int
    pid: int | None
    stale: bool


@dataclass(frozen=True)
class CacheInfo:
    """What a feature cache holds (``pfpyro cache info``)."""

    dir: Path
    entries: int
    entry_bytes: int
    temporaries: tuple[Temporary, ...]

    @property
    def stale(self) -> tuple[Temporary, ...]:
        return tuple(t for t in self.temporaries if t.stale)


class FeatureCache:
    """Features of sentence lists, stored under ``<cache_dir>/features`` (see module notes).

    ``cache_dir`` defaults to pfpyro's cache root (``$PFPYRO_CACHE``, else
    ``$XDG_CACHE_HOME/pfpyro``, else ``~/.cache/pfpyro``). ``hits`` and ``misses`` count
    :meth:`get_or_compute` outcomes.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
        self.dir = root / "features"
        self.hits = 0
        self.misses = 0
        self._cleaned = False

    def temporaries(self) -> list[Temporary]:
        """Every writer's temporary file in the cache, stale or not."""
        if not self.dir.is_dir():
            return []
        found = []
        for path in sorted(self.dir.iterdir()):
            match = _TEMP_NAME.fullmatch(path.name)
            if match is None:
                continue
            pid = int(match.group(1)) if match.group(1) else None
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # its writer finished meanwhile
                continue
            found.append(Temporary(path, size, pid, _writer_gone(path, pid)))
        return found

    def remove_stale_temporaries(self) -> list[Temporary]:
        """Remove the temporaries whose writers are gone; returns them (each logged)."""
        removed = []
        for temp in self.temporaries():
            if temp.stale:
                temp.path.unlink(missing_ok=True)
                logger.info("removed %s (%d bytes), left by a writer that died", temp.path,
                            temp.size)  # fmt: skip
                removed.append(temp)
        return removed

    def info(self) -> CacheInfo:
        """The number and size of the entries and every temporary (``pfpyro cache info``)."""
        entries = sorted(self.dir.glob("*.safetensors")) if self.dir.is_dir() else []
        size = 0
        for path in entries:
            with contextlib.suppress(FileNotFoundError):
                size += path.stat().st_size
        return CacheInfo(self.dir, len(entries), size, tuple(self.temporaries()))

    @staticmethod
    def key(
        encoder_identity: str,
        max_subwords: int,
        word_lists: Sequence[Sequence[str]],
        kind: str = DEFAULT_KIND,
    ) -> str:
        """sha256 of (kind, encoder identity, max_subwords, every sentence's words in order)."""
        digest = hashlib.sha256()
        head = [kind, encoder_identity, int(max_subwords), len(word_lists)]
        digest.update(json.dumps(head).encode("utf-8") + b"\n")
        for words in word_lists:
            digest.update(json.dumps(list(words), ensure_ascii=False).encode("utf-8") + b"\n")
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.safetensors"

    def get_or_compute(
        self,
        encoder_identity: str,
        max_subwords: int,
        word_lists: Sequence[Sequence[str]],
        compute_fn: ComputeFn,
        kind: str = DEFAULT_KIND,
        rows: Sequence[int] | None = None,
    ) -> list[np.ndarray]:
        """The cached features of ``word_lists``, or ``compute_fn(word_lists)`` stored first:
        one array per sentence (views of :meth:`get_or_compute_flat`'s).

        ``compute_fn`` must return one ``[rows[i], dim]`` array per sentence; ``rows``
        defaults to the word counts (one row per word; a kind with one row per subword gives
        its own).
        """
        if not word_lists:
            return []
        flat = self.get_or_compute_flat(
            encoder_identity, max_subwords, word_lists, compute_fn, kind, rows
        )
        lengths = [len(words) for words in word_lists] if rows is None else list(rows)
        return np.split(flat, np.cumsum(lengths)[:-1])

    def get_or_compute_flat(
        self,
        encoder_identity: str,
        max_subwords: int,
        word_lists: Sequence[Sequence[str]],
        compute_fn: ComputeFn,
        kind: str = DEFAULT_KIND,
        rows: Sequence[int] | None = None,
        fill: FillFn | None = None,
        dim: int | None = None,
    ) -> np.ndarray:
        """As :meth:`get_or_compute`, but the sentences' rows stacked, ``[sum(rows), dim]``,
        memory-mapped from the entry (so a corpus's features stay on disk until used).

        With ``fill`` (and the width ``dim``), a miss is computed *into* the new entry:
        ``fill(word_lists, out)`` writes the rows into ``out``, a mapping of the entry's
        temporary file, so encoding holds a batch in memory, not the whole list
        (:meth:`streaming`); ``compute_fn`` is then not called."""
        word_lists = [list(words) for words in word_lists]
        lengths = [len(words) for words in word_lists] if rows is None else list(rows)
        if len(lengths) != len(word_lists):
            raise PfpyroError(f"{len(lengths)} row counts for {len(word_lists)} sentences")
        if not word_lists:
            raise PfpyroError("no sentences to encode")
        key = self.key(encoder_identity, max_subwords, word_lists, kind)
        found = self.load_flat(key, lengths)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        metadata = {"kind": kind, "encoder": encoder_identity, "max_subwords": str(max_subwords)}
        if fill is not None and dim is not None:
            with self.streaming(key, lengths, dim, metadata) as out:
                fill(word_lists, out)
            mapped = self.load_flat(key, lengths)
            if mapped is None:
                raise PfpyroError(f"{self.path(key)}: the entry just written cannot be read")
            return mapped
        features = [np.asarray(a, dtype=np.float16) for a in compute_fn(word_lists)]
        self.store(key, features, lengths, metadata)
        # Read back mapped, so that what was just computed leaves memory when the caller is
        # done with it; an entry that could not be read back is the computed one.
        mapped = self.load_flat(key, lengths)
        return np.concatenate(features) if mapped is None else mapped

    def load(self, key: str, lengths: Sequence[int]) -> list[np.ndarray] | None:
        """The entry's arrays, or None when absent; a corrupt entry is deleted (and logged).
        They are views of the file, memory-mapped (:meth:`load_flat`)."""
        flat = self.load_flat(key, lengths)
        return None if flat is None else np.split(flat, np.cumsum(lengths)[:-1])

    def load_flat(self, key: str, lengths: Sequence[int]) -> np.ndarray | None:
        """The entry's features as one ``[sum(lengths), dim]`` fp16 array, memory-mapped from
        the file (copy-on-write: pages are read when used and never written back), or None.
        An entry that is unreadable or does not match ``lengths`` is deleted and logged."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            features, stored = _mapped_entry(path)
            if (
                features.ndim != 2
                or features.dtype != np.float16
                or stored.tolist() != list(lengths)
                or features.shape[0] != sum(lengths)
            ):
                raise ValueError(
                    f"features {features.shape} {features.dtype} for {len(stored)} sentences "
                    f"do not match {len(lengths)} sentences of {sum(lengths)} rows"
                )
        except Exception as error:  # any unreadable entry is recomputed, whatever the cause
            logger.warning("corrupt feature cache entry %s (%s); recomputing", path, error)
            path.unlink(missing_ok=True)
            return None
        return features

    def store(
        self,
        key: str,
        features: Sequence[np.ndarray],
        lengths: Sequence[int],
        metadata: dict[str, str] | None = None,
    ) -> Path:
        """Write an entry atomically (temporary file, then rename; :meth:`streaming`, the one
        writer of the entry format); returns its path."""
        if not features:
            raise PfpyroError("no sentences to store")
        if len(features) != len(lengths) or any(
            np.ndim(a) != 2 or len(a) != n for a, n in zip(features, lengths, strict=True)
        ):
            raise PfpyroError(
                f"feature arrays {[np.shape(a) for a in features][:5]} do not match the "
                f"sentence lengths {list(lengths)[:5]}"
            )
        dims = {a.shape[1] for a in features}
        if len(dims) > 1:
            raise PfpyroError(f"feature arrays of different widths: {sorted(dims)}")
        with self.streaming(key, lengths, int(features[0].shape[1]), metadata) as out:
            out[:] = np.concatenate([np.asarray(a, dtype=np.float16) for a in features])
        return self.path(key)

    @contextlib.contextmanager
    def streaming(
        self,
        key: str,
        lengths: Sequence[int],
        dim: int,
        metadata: dict[str, str] | None = None,
    ) -> Iterator[np.ndarray]:
        """Write an entry by filling it: the block gets ``out``, a writable mapping
        ``[sum(lengths), dim]`` (fp16) of the entry's temporary file, whose safetensors
        header and lengths are written first; when the block ends the file is flushed and
        renamed into place (on an error it is removed and nothing is stored)."""
        total = int(sum(lengths))
        size = total * dim * 2
        header = {
            "features": {"dtype": "F16", "shape": [total, dim], "data_offsets": [0, size]},
            "lengths": {
                "dtype": "I64",
                "shape": [len(lengths)],
                "data_offsets": [size, size + 8 * len(lengths)],
            },
            "__metadata__": {"pfpyro": __version__, **(metadata or {})},
        }
        text = json.dumps(header, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors does
        path = self.path(key)
        if not self._cleaned:  # the cache's first write: what killed writers left goes
            self._cleaned = True
            self.dir.mkdir(parents=True, exist_ok=True)
            self.remove_stale_temporaries()
        with _entry_file(self.dir, key, path) as temp:
            with open(temp, "wb") as handle:
                handle.write(len(text).to_bytes(8, "little") + text)
                handle.truncate(8 + len(text) + size)
                handle.seek(8 + len(text) + size)
                handle.write(np.asarray(lengths, dtype="<i8").tobytes())
            if total:
                out = np.memmap(temp, dtype="<f2", mode="r+", offset=8 + len(text),
                                shape=(total, dim))  # fmt: skip
            else:
                out = np.zeros((0, dim), dtype=np.float16)
            yield out
            if total:
                out.flush()
                del out


@contextlib.contextmanager
def _entry_file(directory: Path, key: str, path: Path) -> Iterator[str]:
    """A temporary file in ``directory``, locked by this writer while it lives, that becomes
    ``path`` when the block ends without an error (then readable as the umask allows), or is
    removed."""
    directory.mkdir(parents=True, exist_ok=True)
    prefix = f".{key[:16]}.{os.getpid()}."
    handle, temp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel if the writer dies
        yield temp
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes owner-only files
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    finally:
        os.close(handle)


def _writer_gone(path: Path, pid: int | None) -> bool:
    """Whether the writer of the temporary ``path`` is gone: its lock is free, and its
    process has ended (or the file is older than a writer could be without its lock)."""
    if fcntl is not None:
        try:
            handle = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer holds it
        finally:
            os.close(handle)  # closing releases the probe's lock
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if pid is None:
        return age > UNLOCKED_TEMP_AGE_S
    if _process_alive(pid):
        # Its lock is free: the moment before its writer locked it, or a reused pid.
        return fcntl is not None and age > CREATION_GRACE_S
    return True


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs; a zombie (killed, not yet reaped by its parent) does
    not, although it still has its pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it ended meanwhile
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _mapped_entry(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(features memory-mapped, lengths read) of a safetensors entry: an 8-byte header size,
    a JSON header giving each tensor's dtype, shape and byte range, then the data."""
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
        start = 8 + size
        spec = header["lengths"]
        if spec["dtype"] != "I64":
            raise ValueError(f"lengths of dtype {spec['dtype']}")
        begin, end = spec["data_offsets"]
        handle.seek(start + begin)
        lengths = np.frombuffer(handle.read(end - begin), dtype="<i8")
    spec = header["features"]
    if spec["dtype"] != "F16" or len(spec["shape"]) != 2:
        raise ValueError(f"features of dtype {spec['dtype']} and shape {spec['shape']}")
    begin, end = spec["data_offsets"]
    shape = tuple(int(n) for n in spec["shape"])
    if end - begin != shape[0] * shape[1] * 2 or start + end > path.stat().st_size:
        raise ValueError("truncated features")
    if shape[0] == 0:
        return np.zeros(shape, dtype=np.float16), lengths
    features = np.memmap(path, dtype="<f2", mode="c", offset=start + begin, shape=shape)
    return features, lengths


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


__all__ = ["DEFAULT_KIND", "CacheInfo", "FeatureCache", "Temporary"]

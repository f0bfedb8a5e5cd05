"""Writers killed outright leave nothing that grows: a SIGKILLed writer's temporary entry is
removed by the cache's next write, a live writer's never is; ``pfpyro cache info|clean``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pfpyro.cli import main
from pfpyro.encode import FeatureCache
from pfpyro.encode.cache import UNLOCKED_TEMP_AGE_S

#: A writer that fills half an entry, says so, and then waits to be killed (or lets go).
SLOW_WRITER = """
import sys, time
from pathlib import Path
from pfpyro.encode.cache import FeatureCache

def fill(word_lists, out):
    out[:2] = 1.0
    Path(sys.argv[2]).write_text("writing")
    while not Path(sys.argv[3]).exists():
        time.sleep(0.05)
    out[2:] = 2.0

FeatureCache(sys.argv[1]).get_or_compute_flat(
    "model-slow", 250, [["a", "b"], ["c", "d", "e"]], None, fill=fill, dim=4
)
"""


def start_writer(root: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A writer process mid-entry; returns it and the file that lets it finish."""
    ready, finish = tmp_path / "ready", tmp_path / "finish"
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(root), str(ready),
                               str(finish)])  # fmt: skip
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert writer.poll() is None, "the writer died before writing"
        assert time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.05)
    return writer, finish


def stale_temporary(root: Path):
    """The one temporary in the cache, once stale: the kernel can free a killed writer's lock
    a moment after the process has ended, so this waits for it (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        (temp,) = FeatureCache(root).temporaries()
        if temp.stale:
            return temp
        assert time.monotonic() < deadline, f"{temp.path} never became stale"
        time.sleep(0.05)


def store_one(cache: FeatureCache, words: list[list[str]], value: float = 3.0) -> np.ndarray:
    return cache.get_or_compute_flat(
        "model-a", 250, words, lambda lists: [np.full((len(w), 4), value) for w in lists]
    )


def test_a_killed_writers_temporary_goes_at_the_next_write_and_entries_stay(tmp_path):
    root = tmp_path / "cache"
    kept = store_one(FeatureCache(root), [["kept", "entry"]]).copy()
    writer, _ = start_writer(root, tmp_path)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    temp = stale_temporary(root)  # what the killed writer left
    assert temp.pid == writer.pid and temp.size > 0

    second = FeatureCache(root)
    store_one(second, [["another"]])  # the second run's first write cleans up
    assert second.temporaries() == [] and not temp.path.exists()
    assert not list(second.dir.glob(".*"))
    np.testing.assert_array_equal(store_one(second, [["kept", "entry"]]), kept)
    assert second.hits == 1 and second.info().entries == 2


def test_a_live_writers_temporary_is_kept_and_its_entry_completes(tmp_path):
    """Two writers share a cache: the second's write leaves the first's temporary alone."""
    root = tmp_path / "cache"
    writer, finish = start_writer(root, tmp_path)
    try:
        other = FeatureCache(root)
        store_one(other, [["meanwhile"]])
        (temp,) = other.temporaries()
        assert not temp.stale and temp.pid == writer.pid
        assert other.remove_stale_temporaries() == [] and temp.path.exists()
        assert main(["cache", "clean", "--cache", str(root)]) == 0 and temp.path.exists()
    finally:
        finish.write_text("go")
        assert writer.wait(timeout=120) == 0
    assert other.temporaries() == []
    flat = FeatureCache(root).get_or_compute_flat(
        "model-slow", 250, [["a", "b"], ["c", "d", "e"]], None, fill=None, dim=4
    )
    np.testing.assert_array_equal(flat[:, 0], [1, 1, 2, 2, 2])


def test_a_killed_writer_not_yet_reaped_is_gone(tmp_path):
    """Killed but not yet waited for by its parent (a zombie, as right after `kill -9` in a
    shell): its lock is free and its process does not run, so its temporary is stale."""
    root = tmp_path / "cache"
    writer, _ = start_writer(root, tmp_path)
    os.kill(writer.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{writer.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        stale_temporary(root)
        assert Path(f"/proc/{writer.pid}/stat").exists()  # not reaped: still a zombie
    finally:
        writer.wait()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporaries_without_a_pid_go_only_when_old(tmp_path):
    """Names without a process id come from a pfpyro that took no lock: stale after a day."""
    cache = FeatureCache(tmp_path)
    cache.dir.mkdir(parents=True)
    young = cache.dir / ".0123456789abcdef.k2j4h5g6.tmp"
    old = cache.dir / ".fedcba9876543210.a1b2c3d4.tmp"
    for path in (young, old):
        path.write_bytes(b"x" * 10)
    past = time.time() - UNLOCKED_TEMP_AGE_S - 60
    os.utime(old, (past, past))
    found = {t.path: t for t in cache.temporaries()}
    assert found[young].pid is None and not found[young].stale and found[old].stale
    assert [t.path for t in cache.remove_stale_temporaries()] == [old]
    assert young.exists()


def test_cache_info_and_clean_on_the_command_line(tmp_path, capsys):
    root = tmp_path / "cache"
    cache = FeatureCache(root)
    store_one(cache, [["one", "entry"]])
    stale = cache.dir / f".0123456789abcdef.{dead_pid()}.abcdefgh.tmp"
    stale.write_bytes(b"\0" * 2048)
    assert main(["cache", "info", "--cache", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"features:     {cache.dir}: 1 entries" in out
    assert "temporaries:  1 stale (2.0 kB), 0 being written" in out and str(stale) in out
    assert main(["cache", "clean", "--cache", str(root)]) == 0
    assert "removed 1 stale temporaries (2.0 kB)" in capsys.readouterr().out
    assert not stale.exists() and cache.info().entries == 1
    assert main(["cache", "clean", "--features", "--cache", str(root)]) == 0
    assert "removed 1 feature entries" in capsys.readouterr().out
    assert cache.info().entries == 0


def test_cache_without_a_verb_prints_its_usage(capsys):
    assert main(["cache"]) == 2
    assert "{info,clean}" in capsys.readouterr().out


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (999, "999 B"), (2048, "2.0 kB"),
                                            (3.5e9, "3.5 GB"), (4e12, "4000.0 GB")])  # fmt: skip
def test_sizes_read_as_people_write_them(size, text):
    from pfpyro.commands.cache import human_size

    assert human_size(size) == text

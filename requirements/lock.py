"""The locked install: writes ``requirements/lock.txt`` from a fresh install, and checks that
it agrees with ``setup.cfg`` and the Makefile's torch pin.

``make lock`` installs pfpyro with every extra into a new virtual environment, unconstrained,
and pipes ``pip freeze --all`` through ``lock.py write``; ``make install`` installs with the
lock as pip constraints (``-c``) and then runs ``lock.py check``, which fails, naming the file
and line, when a requirement of setup.cfg has no locked version or one outside its range.
Local version labels (``torch 2.13.0+cpu``) are dropped, so a CUDA build of the same torch
version satisfies the lock too.
"""

from __future__ import annotations

import argparse
import configparser
import re
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
SETUP_CFG = ROOT / "setup.cfg"
MAKEFILE = ROOT / "Makefile"

HEADER = """\
# The exact versions of everything `make install` installs (pfpyro with every extra), used
# as pip constraints. Written by `make lock` from a fresh, unconstrained install; do not edit
# by hand. To upgrade: `make lock`, then `make clean install test`, and commit this file.
# torch's local label (+cpu) is dropped: a CUDA build of the same version satisfies it.
"""

#: Distributions the lock leaves out: the project itself.
EXCLUDED = frozenset({"pfpyro"})


class LockError(Exception):
    """The lock and setup.cfg (or the Makefile) disagree; the message says where and how."""


def write(freeze: str) -> str:
    """The lock file's text from ``pip freeze --all`` output."""
    pins: dict[str, str] = {}
    for line in freeze.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("-e "):
            continue
        name = re.split(r"\s*(?:==|@)", line, maxsplit=1)[0]
        if canonicalize_name(name) in EXCLUDED:
            continue
        name, sep, version = line.partition("==")
        if not sep or "@" in line:
            raise LockError(f"pip freeze: expected NAME==VERSION, got {line!r}")
        pins[name.strip()] = str(Version(version.strip()).public)
    body = "".join(f"{name}=={pins[name]}\n" for name in sorted(pins, key=str.lower))
    return HEADER + body


def read_lock(path: Path = LOCK) -> dict[str, tuple[int, Version]]:
    """{canonical name: (1-based line, version)} of a lock file."""
    if not path.is_file():
        raise LockError(f"{path}: no lock file; run `make lock`")
    pins: dict[str, tuple[int, Version]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", text)
        if match is None:
            raise LockError(f"{path}:{number}: expected NAME==VERSION, got {line!r}")
        name = canonicalize_name(match.group(1))
        if name in pins:
            raise LockError(f"{path}:{number}: {match.group(1)} is locked twice")
        pins[name] = (number, Version(match.group(2)))
    return pins


def declared(path: Path = SETUP_CFG) -> list[tuple[str, Requirement]]:
    """(where, requirement) of every install requirement and extra in setup.cfg."""
    parser = configparser.ConfigParser()
    parser.read(path, encoding="utf-8")
    sections = [("install_requires", parser.get("options", "install_requires", fallback=""))]
    if parser.has_section("options.extras_require"):
        sections += [
            (f"extras_require {extra}", text)
            for extra, text in parser.items("options.extras_require")
        ]
    found = []
    for where, text in sections:
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                found.append((f"{path.name} [{where}]", Requirement(line)))
            except InvalidRequirement as error:
                raise LockError(
                    f"{path} [{where}]: {line!r} is not a requirement ({error})"
                ) from None
    return found


def torch_pin(path: Path = MAKEFILE) -> Requirement:
    """The Makefile's ``TORCH_PIN``."""
    match = re.search(r"^TORCH_PIN\s*\?=\s*(\S+)\s*$", path.read_text(encoding="utf-8"), re.M)
    if match is None:
        raise LockError(f"{path}: no `TORCH_PIN ?= torch==VERSION` line")
    return Requirement(match.group(1))


def check(lock: Path = LOCK, setup_cfg: Path = SETUP_CFG, makefile: Path = MAKEFILE) -> int:
    """Raise LockError for the first disagreement; returns how many requirements agree."""
    pins = read_lock(lock)
    requirements = [*declared(setup_cfg), (f"{makefile.name} TORCH_PIN", torch_pin(makefile))]
    for where, requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        if name not in pins:
            raise LockError(
                f"{lock}: no locked version of {requirement.name} ({where}: {requirement}); "
                "run `make lock`"
            )
        number, version = pins[name]
        if not requirement.specifier.contains(version, prereleases=True):
            raise LockError(
                f"{lock}:{number}: {requirement.name}=={version} is outside {where}'s "
                f"{requirement}; run `make lock`"
            )
    return len(requirements)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["write", "check"])
    args = parser.parse_args(argv)
    try:
        if args.action == "write":
            sys.stdout.write(write(sys.stdin.read()))
        else:
            count = check(LOCK, SETUP_CFG, MAKEFILE)
            print(f"{LOCK}: agrees with {SETUP_CFG.name} and the Makefile's torch pin "
                  f"({count} requirements)")  # fmt: skip
    except LockError as error:
        print(f"lock: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

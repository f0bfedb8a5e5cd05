"""The ``pfpyro`` command: one sub-command module per verb under :mod:`pfpyro.commands`.

Exit codes: 0 success; 2 a user error (bad input, bad config, missing file), printed as one
line on stderr; 1 an unexpected failure (a bug: the traceback is printed).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pfpyro import __version__
from pfpyro.errors import PfpyroError

# Each module has ``register(subparsers)``, which adds its parser with ``func=`` set.
COMMAND_MODULES: tuple[str, ...] = (
    "data",
    "encoder",
    "encode",
    "train",
    "extend",
    "fewshot",
    "predict",
    "experiment",
)


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfpyro",
        description="Zero-shot learning across tasks and languages by parameter space "
        "factorization (Ponti et al., TACL 2021).",
        epilog="example: pfpyro experiment experiments/configs/demo.yaml --out runs/demo\n\n"
        "exit codes: 0 success; 2 a user error (bad input, config or data), printed as one "
        "line; 1 an unexpected failure (a bug, with its traceback). `pfpyro COMMAND --help` "
        "shows each command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pfpyro {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"pfpyro.commands.{name}").register(subparsers)
    return parser


def main(args: Sequence[str] | None = None) -> int:
    parser = build_argparse()
    ns = parser.parse_args(args)
    if not getattr(ns, "func", None):
        parser.print_help()
        return 2
    try:
        return int(ns.func(ns) or 0)
    except PfpyroError as error:
        print(f"pfpyro {ns.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pfpyro {ns.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

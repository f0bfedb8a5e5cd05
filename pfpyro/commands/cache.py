"""``pfpyro cache info|clean``: what pfpyro's cache holds, and removing what dead writers left."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  pfpyro cache info                       # entries, sizes, temporaries left by killed writers
  pfpyro cache clean                      # remove those temporaries (never a live writer's)
  pfpyro cache clean --features           # and every feature entry (recomputed when needed)
  pfpyro cache info --cache /tmp/pfpyro-cache

The cache root is $PFPYRO_CACHE, else $XDG_CACHE_HOME/pfpyro, else ~/.cache/pfpyro. A writer
killed outright (kill -9) leaves its temporary entry file; the next `pfpyro encode`, train or
experiment removes it too, when it first writes to the cache."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="show what the feature cache holds, or remove temporaries left by killed writers",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="cache_command", metavar="{info,clean}")
    for name, help_text, func in (
        ("info", "print the cache's folders, entries, sizes and temporaries", run_info),
        ("clean", "remove temporaries whose writers are gone (--features: all entries)", run_clean),
    ):
        verb = verbs.add_parser(name, help=help_text, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        verb.add_argument(
            "--cache",
            type=Path,
            metavar="DIR",
            help="cache root (else $PFPYRO_CACHE, else $XDG_CACHE_HOME/pfpyro, else "
            "~/.cache/pfpyro)",
        )
        if name == "clean":
            verb.add_argument(
                "--features",
                action="store_true",
                help="also remove every feature entry (they are recomputed when next needed)",
            )
        verb.set_defaults(func=func)
    parser.set_defaults(func=lambda _: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def human_size(size: float) -> str:
    """``size`` bytes as ``12.3 MB`` (powers of 1000, as ``du --si``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_info(args: argparse.Namespace) -> int:
    from pfpyro.encode.cache import FeatureCache
    from pfpyro.encode.offline import cache_root

    root = Path(args.cache).expanduser() if args.cache else cache_root()
    info = FeatureCache(root).info()
    print(f"cache root:   {root}{'' if root.is_dir() else ' (not made yet)'}")
    print(f"features:     {info.dir}: {info.entries} entries, {human_size(info.entry_bytes)}")
    stale = info.stale
    live = len(info.temporaries) - len(stale)
    print(
        f"temporaries:  {len(stale)} stale ({human_size(sum(t.size for t in stale))}), "
        f"{live} being written"
    )
    for temp in stale:
        print(f"  stale: {temp.path} ({human_size(temp.size)})")
    for name in ("models", "onnx"):
        folder = root / name
        if folder.is_dir():
            folders = sorted(p.name for p in folder.iterdir() if p.is_dir())
            print(f"{name + ':':<13} {folder}: {len(folders)} folders, "
                  f"{human_size(_folder_size(folder))}")  # fmt: skip
    return 0


def run_clean(args: argparse.Namespace) -> int:
    from pfpyro.encode.cache import FeatureCache

    cache = FeatureCache(args.cache)
    removed = cache.remove_stale_temporaries()
    print(f"removed {len(removed)} stale temporaries "
          f"({human_size(sum(t.size for t in removed))})")  # fmt: skip
    if args.features:
        entries = sorted(cache.dir.glob("*.safetensors")) if cache.dir.is_dir() else []
        size = 0
        for path in entries:
            size += path.stat().st_size
            path.unlink(missing_ok=True)
        print(f"removed {len(entries)} feature entries ({human_size(size)}) from {cache.dir}")
    return 0

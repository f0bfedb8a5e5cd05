"""``pfpyro encode CONFIG``: compute and cache the features of every pair a config uses."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """example:
  pfpyro encode experiments/configs/demo.yaml
  pfpyro encode experiments/configs/paper.yaml --data ../shared/data

Features go to the feature cache (PFPYRO_CACHE, else $XDG_CACHE_HOME/pfpyro, else
~/.cache/pfpyro), keyed by the encoder, the words and the maximum length, so
`pfpyro experiment` and `pfpyro train` find them there."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="cache encoder features for every pair and split of a config",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", type=Path, help="experiment YAML")
    parser.add_argument("--data", help="data root (else PFPYRO_DATA, else ../shared/data)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from pfpyro.config import load_config

    config = load_config(args.config)  # before the heavy imports: a typo fails at once

    from pfpyro.model.capabilities import declares
    from pfpyro.pipeline.fit import source_tensors
    from pfpyro.pipeline.setup import prepare, run_components

    with tempfile.TemporaryDirectory() as scratch:
        setup = prepare(config, Path(scratch), data=args.data, progress=not args.quiet)
    needed: set[tuple[str, str, str, str]] = set()
    for _, partition in setup.partitions:
        for task, lang in partition.seen:
            needed |= {(task, lang, "train", "seen"), (task, lang, "dev", "seen")}
        for task, lang in partition.heldout:
            needed.add((task, lang, "test", "heldout"))
    words = 0
    for task, lang, split, role in sorted(needed):
        data = setup.store.get(task, lang, split, role)
        words += _report(data, f"{task}\t{lang}\t{split}\t{role}", args.quiet)
    # a baseline that trains on the source language's data (LS) reads it capped, per partition
    if any(declares(c, "needs_source_data") for c in run_components(config).values()):
        for name, partition in setup.partitions:
            train = setup.store.split_tensors(list(partition.seen), "train", "seen")
            for (task, lang), tensors in source_tensors(setup, train).items():
                words += tensors.num_words
                if not args.quiet:
                    print(f"{task}\t{lang}\ttrain\tLS source ({name})\t{len(tensors)} sentences")
    print(f"cached the features of {words} words")
    return 0


def _report(data, where: str, quiet: bool) -> int:
    count = data.tensors.num_words if data else 0
    if not quiet:
        sentences = len(data.sentences) if data else 0
        print(f"{where}\t{sentences} sentences\t{count} words")
    return count

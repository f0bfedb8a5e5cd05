"""``pfpyro data``: inspect the corpora of a catalog and the partitions drawn over them.

``pfpyro data summary`` reads every file of the catalog and prints, per pair, the number of
sentences each split gives when the pair is seen (train, dev) and when it is held out (test);
``pfpyro data partition`` prints the seen and held-out pairs of a partition scheme.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pfpyro.data.catalog import Catalog, default_catalog_path
from pfpyro.data.partition import (
    Pair,
    Partition,
    explicit_partition,
    format_pair,
    no_data_partition,
    paper_partition,
    parse_pair,
    random_partition,
)
from pfpyro.errors import ConfigError, PfpyroError

SCHEMES: tuple[str, ...] = ("paper-0", "paper-1", "random", "explicit", "no-data")

_DATA_EPILOG = """\
examples:
  pfpyro data summary
  pfpyro data partition --scheme paper-0
"""

_SUMMARY_EPILOG = """\
example:
  pfpyro data summary --data ../shared/data --catalog experiments/data/paper33.yaml

Columns: sentences of train and dev when the pair is seen, of test when it is held out.
'*' marks a pair whose test split trains it when seen (its treebank has no train split).
"""

_PARTITION_EPILOG = """\
examples:
  pfpyro data partition --scheme paper-1
  pfpyro data partition --scheme random --seed 3
  pfpyro data partition --scheme explicit --heldout pos/fi,ner/tr
  pfpyro data partition --scheme paper-0 --languages fi,hu,et,tr,ko
  pfpyro data partition --scheme no-data --lang wo
"""


def register(subparsers: Any) -> None:
    """Add ``data`` with its actions to the ``pfpyro`` command."""
    parser = subparsers.add_parser(
        "data",
        help="inspect the corpora: sentence counts per pair, partitions",
        description=__doc__.split("\n\n")[0],
        epilog=_DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_actions(parser)


def build_argparse() -> argparse.ArgumentParser:
    """The same actions as a stand-alone parser (``python -m pfpyro.commands.data``)."""
    parser = argparse.ArgumentParser(
        prog="pfpyro data",
        description=__doc__.split("\n\n")[0],
        epilog=_DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_actions(parser)
    return parser


def main(args: Sequence[str] | None = None) -> int:
    """Run one ``data`` action; a PfpyroError is one line on stderr and exit status 2."""
    parser = build_argparse()
    ns = parser.parse_args(args)
    try:
        return int(ns.func(ns))
    except PfpyroError as error:
        print(f"pfpyro data: error: {error}", file=sys.stderr)
        return 2


def _add_actions(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=lambda ns: _print_help(parser))
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")

    summary = actions.add_parser(
        "summary",
        help="sentence counts of every pair, as used when seen and when held out",
        description="Read every file of the catalog and print each pair's sentence counts: "
        "train and dev as used when the pair is seen, test as used when it is held out. "
        "Absent pairs are listed with the reason.",
        epilog=_SUMMARY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(summary)
    summary.set_defaults(func=run_summary)

    partition = actions.add_parser(
        "partition",
        help="the seen and held-out pairs of a partition scheme",
        description="Print the seen and held-out pairs of a partition. paper-0/paper-1: the "
        "authors' alternation over the sorted task x language product; random: a seeded "
        "random partition that meets the constraint; explicit: hold out --heldout; no-data: "
        "hold out every pair of --lang (a language with no labelled data).",
        epilog=_PARTITION_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    partition.add_argument("--scheme", required=True, choices=SCHEMES, help="partition scheme")
    partition.add_argument("--seed", type=int, default=0, help="seed of --scheme random")
    partition.add_argument(
        "--fraction",
        type=float,
        default=0.5,
        help="fraction of pairs to hold out with --scheme random (default 0.5)",
    )
    partition.add_argument(
        "--languages",
        help="comma-separated languages to partition (default: the catalog's target languages)",
    )
    partition.add_argument(
        "--heldout", help="comma-separated TASK/LANG pairs to hold out with --scheme explicit"
    )
    partition.add_argument("--lang", help="the language to leave out with --scheme no-data")
    _add_common(partition)
    partition.set_defaults(func=run_partition)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", metavar="DIR", help="data root (default: $PFPYRO_DATA or ../shared/data)"
    )
    parser.add_argument(
        "--catalog",
        metavar="FILE",
        help=f"catalog YAML (default: {default_catalog_path().name} in experiments/data)",
    )


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _load(ns: argparse.Namespace) -> Catalog:
    return Catalog.load(Path(ns.catalog) if ns.catalog else None, ns.data)


# ---------------------------------------------------------------------------------------------
# summary


def run_summary(ns: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    catalog = _load(ns)
    counted: dict[tuple, tuple[int, int]] = {}  # a file read for two roles is read once
    surfaced: dict[str, int] = {}  # "task/lang split": words read as their token's form

    def count(task: str, lang: str, split: str, role: str) -> int | None:
        entry = catalog.entry(task, lang)
        files = entry.files_for(split, role)
        if not files:
            return None
        key = (files, entry.format, split if entry.format == "bio" else "")
        if key not in counted:
            sentences = catalog.sentences(task, lang, split, role)
            counted[key] = (len(sentences), sum(s.surface_words for s in sentences))
        sentences, surface = counted[key]
        if surface:
            surfaced[f"{task}/{lang} {split}"] = surface
        return sentences

    print(f"catalog {catalog.path}", file=out)
    print(f"data    {catalog.data_root}", file=out)
    tw = max([4, *(len(task) for task, _ in catalog.entries)])  # the task column's width
    header = (
        f"{'task':{tw}}  {'lang':4}  {'format':10}  {'train':>7}  {'dev':>7}  {'test':>7}  source"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    totals: dict[str, list[int]] = {}
    for task, lang in sorted(catalog.entries):
        entry = catalog.entry(task, lang)
        if entry.absent:
            print(f"{task:{tw}}  {lang:4}  {'absent':10}  {entry.reason}", file=out)
            continue
        train = count(task, lang, "train", "seen")
        dev = count(task, lang, "dev", "seen")
        test = count(task, lang, "test", "heldout")
        row = totals.setdefault(task, [0, 0, 0, 0])
        for i, n in enumerate((train, dev, test)):
            row[i] += n or 0
        row[3] += 1
        mark = "*" if entry.test_as_train else " "
        print(
            f"{task:{tw}}  {lang:4}  {entry.format:10}  {_num(train):>6}{mark}  {_num(dev):>7}  "
            f"{_num(test):>7}  {entry.source}",
            file=out,
        )
    print("-" * len(header), file=out)
    for task, (train, dev, test, pairs) in sorted(totals.items()):
        print(f"{task:{tw}}  {pairs:>2} pairs {'':6}  {train:>7}  {dev:>7}  {test:>7}", file=out)
    listed = ", ".join(f"{where} {n}" for where, n in sorted(surfaced.items())) or "none"
    print(
        f"words with FORM '_' inside a multiword token, read as the token's surface form: "
        f"{sum(surface for _, surface in counted.values())} ({listed})",
        file=out,
    )
    absent = catalog.absent_pairs()
    print(
        f"{len(catalog.pairs())} present pairs, {len(absent)} absent "
        f"({' '.join(map(format_pair, absent)) or 'none'}); '*': test split trains the pair "
        "when seen",
        file=out,
    )
    return 0


def _num(n: int | None) -> str:
    return "-" if n is None else str(n)


# ---------------------------------------------------------------------------------------------
# partition


def run_partition(ns: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    catalog = _load(ns)
    languages = _languages(catalog, ns.languages)
    pairs = [p for p in catalog.pairs() if p[1] in languages]
    if ns.scheme != "explicit" and ns.heldout:
        raise ConfigError("--heldout is only for --scheme explicit")
    if (ns.scheme == "no-data") != bool(ns.lang):
        raise ConfigError("--scheme no-data needs --lang LANG, and --lang is only for it")
    if ns.scheme in ("paper-0", "paper-1"):
        partition = paper_partition(pairs, languages, int(ns.scheme[-1]))
    elif ns.scheme == "random":
        partition = random_partition(pairs, ns.seed, ns.fraction)
    elif ns.scheme == "no-data":
        partition = no_data_partition(pairs, ns.lang)
    else:
        if not ns.heldout:
            raise ConfigError("--scheme explicit needs --heldout TASK/LANG[,TASK/LANG...]")
        wanted = [parse_pair(text) for text in ns.heldout.split(",") if text.strip()]
        partition = explicit_partition(pairs, wanted)
    _print_partition(ns, catalog, partition, languages, out)
    return 0


def _languages(catalog: Catalog, text: str | None) -> list[str]:
    if not text:
        return catalog.target_languages()
    langs = [lang.strip() for lang in text.split(",") if lang.strip()]
    unknown = [lang for lang in langs if lang not in catalog.languages()]
    if unknown:
        raise ConfigError(
            f"unknown language(s) {', '.join(unknown)}; the catalog has "
            f"{' '.join(catalog.languages())}"
        )
    return langs


def _print_partition(
    ns: argparse.Namespace,
    catalog: Catalog,
    partition: Partition,
    languages: list[str],
    out: TextIO,
) -> None:
    scheme = ns.scheme + (f" (seed {ns.seed})" if ns.scheme == "random" else "")
    counts = partition.counts()
    per_task = "; ".join(
        f"{task}: {c['seen']} seen, {c['heldout']} held out" for task, c in counts.items()
    )
    print(
        f"partition {scheme} over {len(languages)} languages: {len(partition.seen)} seen, "
        f"{len(partition.heldout)} held out ({per_task})",
        file=out,
    )
    for title, pairs in (("seen", partition.seen), ("held out", partition.heldout)):
        print(f"{title} ({len(pairs)}):", file=out)
        for task in catalog.tasks():
            langs = [lang for t, lang in pairs if t == task]
            print(f"  {task} ({len(langs)}): {' '.join(langs)}", file=out)
    left_out: list[Pair] = [p for p in catalog.pairs() if p not in partition.pairs]
    if left_out:
        print(
            f"not partitioned (language not in the list): {' '.join(map(format_pair, left_out))}",
            file=out,
        )


if __name__ == "__main__":
    sys.exit(main())

"""Table 2 of the paper: PF-lr on language subsets of similar (Sim) or different (Dif) languages.

Ponti et al. (2021, §5.2) build subsets of |L| = 11 and |L| = 22 languages whose training and
evaluation languages are either maximally similar (same family) or maximally different, and
report PF-lr's average scores on each. "Family" is the top-level family of URIEL's ``fam``
features (:func:`pfpyro.data.uriel.language_family`; an isolate is its own family).

The candidates are the catalog's target languages with both tasks present (a language with one
task can never be held out). Subsets are built deterministically:

- **Sim**: whole families, largest first (ties by name), while they fit; the last family may be
  cut, but never to a single language, so every language keeps a relative in the subset.
- **Dif**: one language per family in turn (families largest first, languages by code), round
  after round, so the subset spans as many families as it can.

Each subset runs as its own experiment with a seeded random partition (an even number of
languages breaks the authors' alternating partition), PF-lr only. Two actions::

    python docs/examples/table2_subsets.py configs --out runs/table2/configs
    python docs/examples/table2_subsets.py table runs/table2

``configs`` writes ``sim11.yaml``, ``dif11.yaml``, ``sim22.yaml``, ``dif22.yaml`` (from
``--base``, by default ``experiments/configs/paper.yaml``); ``table`` reads
``RUNS/<subset>/results.csv`` of the four experiments and writes ``RUNS/table2.md``.

References: Ponti et al. (2021), TACL 9, §5.2 and Table 2; Littell et al. (2017), URIEL.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from pfpyro.atomic import atomic_write_text
from pfpyro.config import load_config
from pfpyro.data.catalog import Catalog, LanguageTable, default_catalog_path
from pfpyro.data.paths import data_root
from pfpyro.data.uriel import language_family
from pfpyro.errors import ConfigError, PfpyroError
from pfpyro.pipeline.setup import build_partitions
from pfpyro.report import table2, table2_markdown

HERE = Path(__file__).resolve().parent
DEFAULT_BASE = HERE.parent.parent / "experiments" / "configs" / "paper.yaml"

#: Subset key -> (|L|, kind, Table 2 column label), in the paper's column order.
SUBSETS: dict[str, tuple[int, str, str]] = {
    "sim11": (11, "sim", "|L|=11 Sim"),
    "dif11": (11, "dif", "|L|=11 Dif"),
    "sim22": (22, "sim", "|L|=22 Sim"),
    "dif22": (22, "dif", "|L|=22 Dif"),
}


def candidate_languages(catalog: Catalog) -> list[str]:
    """Target languages with every task of the catalog present (each can be held out once)."""
    present = set(catalog.pairs())
    return [
        lang
        for lang in catalog.target_languages()
        if all((task, lang) in present for task in catalog.tasks())
    ]


def group_by_family(
    langs: Sequence[str], languages: LanguageTable | None = None
) -> list[list[str]]:
    """The languages grouped by top-level family (URIEL codes from ``languages``, a catalog's
    table): largest family first, then by family name; languages sorted by code within one."""
    groups: dict[str, list[str]] = defaultdict(list)
    for lang in langs:
        groups[language_family(lang, languages)].append(lang)
    order = sorted(groups, key=lambda family: (-len(groups[family]), family))
    return [sorted(groups[family]) for family in order]


# --8<-- [start:subsets]
def similar_subset(families: Sequence[Sequence[str]], size: int) -> list[str]:
    """Whole families, largest first, while they fit; a cut family keeps at least two, and a
    family that would leave exactly one place (which no relative could fill) is passed over."""
    chosen: list[str] = []
    for members in families:
        room = size - len(chosen)
        if len(members) <= room and room - len(members) != 1:
            chosen += members
        elif 2 <= room <= len(members):
            chosen += members[:room]
    if len(chosen) != size:
        raise ConfigError(f"cannot build a similar-language subset of {size} languages")
    return chosen


def different_subset(families: Sequence[Sequence[str]], size: int) -> list[str]:
    """One language per family in turn, round after round, until ``size`` are chosen."""
    chosen: list[str] = []
    depth = max((len(f) for f in families), default=0)
    for round_ in range(depth):
        for members in families:
            if len(chosen) < size and round_ < len(members):
                chosen.append(members[round_])
    if len(chosen) != size:
        raise ConfigError(f"only {len(chosen)} candidate languages; {size} were asked for")
    return chosen


# --8<-- [end:subsets]


def subsets(catalog: Catalog) -> dict[str, list[str]]:
    """The four subsets of Table 2, by key of :data:`SUBSETS`."""
    families = group_by_family(candidate_languages(catalog), catalog.language_table)
    build = {"sim": similar_subset, "dif": different_subset}
    return {key: sorted(build[kind](families, size)) for key, (size, kind, _) in SUBSETS.items()}


def write_configs(base: Path, out: Path, data: str | None = None, seed: int = 0) -> dict[str, Path]:
    """One experiment config per subset, derived from ``base``; each partition is built once
    here, so a subset the constraint cannot partition fails now rather than mid-run."""
    config = load_config(base)
    catalog = Catalog.load(config.data.catalog or default_catalog_path(), data_root(data))
    written = {}
    for key, langs in subsets(catalog).items():
        values = config.to_dict()
        values.pop("source", None)
        values["name"] = f"table2-{key}"
        values["data"]["languages"] = langs
        values["partition"] = {"scheme": "random", "seed": seed, "indices": [0], "heldout": []}
        values["models"] = ["pf-lr"]
        path = out / f"{key}.yaml"
        families = ", ".join(
            f"{lang} ({language_family(lang, catalog.language_table)})" for lang in langs
        )
        header = f"# Table 2, {SUBSETS[key][2]}: {families}\n"
        atomic_write_text(path, header + yaml.safe_dump(values, sort_keys=False))
        derived = load_config(path)
        pairs = [p for p in catalog.pairs() if p[1] in langs]
        build_partitions(derived, pairs, langs)  # validates the constraint
        written[key] = path
    return written


def write_table(runs: Path, model: str = "pf-lr") -> Path:
    """Table 2 from ``runs/<subset>/results.csv`` of the four experiments."""
    results: Mapping[str, Path] = {
        label: runs / key / "results.csv" for key, (_, _, label) in SUBSETS.items()
    }
    missing = [str(path) for path in results.values() if not path.is_file()]
    if missing:
        raise ConfigError(f"no results yet: {', '.join(missing)}; run the four experiments first")
    table = table2(dict(results), model=model)
    path = runs / "table2.md"
    heading = f"# Table 2: {model} on similar (Sim) and different (Dif) language subsets (%)"
    atomic_write_text(path, f"{heading}\n\n{table2_markdown(table)}")
    return path


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    configs = actions.add_parser("configs", help="write the four subset configs")
    configs.add_argument("--out", type=Path, required=True, help="folder for the YAML files")
    configs.add_argument("--base", type=Path, default=DEFAULT_BASE, help="config to derive from")
    configs.add_argument("--data", help="data root (else PFPYRO_DATA, else ../shared/data)")
    configs.add_argument("--seed", type=int, default=0, help="seed of the random partitions")
    table = actions.add_parser("table", help="write RUNS/table2.md from the four results")
    table.add_argument("runs", type=Path, help="folder holding sim11/, dif11/, sim22/, dif22/")
    table.add_argument("--model", default="pf-lr", help="model to report (default pf-lr)")
    return parser


def main(args: Sequence[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    try:
        if ns.action == "configs":
            for key, path in write_configs(ns.base, ns.out, ns.data, ns.seed).items():
                print(f"{key}\t{path}")
        else:
            print(write_table(ns.runs, ns.model).read_text(encoding="utf-8"))
    except PfpyroError as error:
        print(f"table2_subsets: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

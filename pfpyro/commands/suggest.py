"""``pfpyro suggest RUN --task T --lang L POOL --budget N``: which sentences of an unlabelled
pool to label first for one pair, and ``pfpyro suggest RUN --pairs POOL...``: which unseen
pair to spend a labelling budget on (the scores: :mod:`pfpyro.infer.acquisition`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pfpyro.api import FittedPosterior

EPILOG = """examples:
  pfpyro suggest runs/pf-lr --task ner --lang wo wo.txt --budget 50 --out wo.ner.todo.tsv
  pfpyro suggest runs/pf-lr --task pos --lang yo pool.conllu --budget 100 --strategy entropy
  pfpyro suggest runs/pf-lr --pairs wo=wo.txt yo=yo.txt ner/tr=tr.iob --k 100

One pair: writes rank, pool line, score and sentence (TSV, best first) of the pool's BUDGET
sentences most worth labelling. Strategies: bald (default; the mutual information between the
sentence's labels and the classifier weights under the posterior samples, summed over its
words), entropy (predictive entropy, summed) or random (seeded). Pools: text (one sentence a
line, words split on spaces), conllu or iob (labels ignored), by extension (.conllu; .iob,
.bio, .tsv, .conll) unless --format says.

--pairs: every unseen pair of the run (not seen in training), ranked by its expected gain:
the summed BALD (nats) of the K best sentences of its pool, an upper bound on what K labels
tell the pair's classifier (docs/annotation.md). Pools as LANG=FILE (for every unseen pair of
that language) or TASK/LANG=FILE; every unseen pair needs one.

A pair updated by `pfpyro update` (RUN/pairs) is scored under its few-shot posterior, so the
next round of labels goes where that posterior is still unsure (a note on standard error
says so)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from pfpyro.config import ACQUISITION_STRATEGIES as STRATEGIES
    from pfpyro.data.readers import POOL_FORMATS

    parser = subparsers.add_parser(
        "suggest",
        help="rank unlabelled sentences (or unseen pairs) by what labelling them would teach",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, help="run folder written by `pfpyro train`")
    parser.add_argument("pool", nargs="+", help="the unlabelled pool (--pairs: LANG=FILE ...)")
    parser.add_argument("--task", help="task, e.g. ner or pos")
    parser.add_argument("--lang", help="language code, e.g. wo")
    parser.add_argument("--budget", type=int, help="sentences to suggest (default: all)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="bald", help="(bald)")
    parser.add_argument("--format", choices=POOL_FORMATS, help="pool format (default: by name)")
    parser.add_argument("--pairs", action="store_true", help="rank the unseen pairs instead")
    parser.add_argument("--k", type=int, default=100, help="--pairs: sentences to label (100)")
    parser.add_argument("--samples", type=int, default=100, help="posterior samples (100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of samples and random (0)")
    parser.add_argument("--out", type=Path, help="output TSV (default: standard output)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def load_posterior(
    run_dir: Path,
    device: str | None,
    quiet: bool,
    command: str = "suggest",
    what: str = "posterior samples to draw",
) -> FittedPosterior:
    """The run's posterior, or a one-line error saying that ``command`` finds no ``what``
    when the folder holds no trained posterior."""
    from pfpyro.api import load
    from pfpyro.errors import ConfigError

    missing = [name for name in ("model.json", "checkpoint.pt") if not (run_dir / name).exists()]
    if missing:
        raise ConfigError(
            f"{run_dir}: no {what} (no {' or '.join(missing)}): {command} needs a PF run "
            "written by `pfpyro train` or `pfpyro experiment`"
        )
    posterior = load(run_dir, device=device)
    if posterior.encoder_config is not None:
        posterior.encoder_config = {**posterior.encoder_config, "progress": not quiet}
    return posterior


def parse_pools(specs: list[str], unseen: list[tuple[str, str]]) -> dict[tuple[str, str], Path]:
    """Each unseen pair's pool file from ``LANG=FILE`` / ``TASK/LANG=FILE`` arguments."""
    from pfpyro.errors import ConfigError

    pools: dict[tuple[str, str], Path] = {}
    for spec in specs:
        key, sep, file = spec.partition("=")
        if not sep or not key or not file:
            raise ConfigError(f"--pairs: expected LANG=FILE or TASK/LANG=FILE, got {spec!r}")
        if "/" in key:
            pair = tuple(key.split("/", 1))
            if pair not in unseen:
                raise ConfigError(f"--pairs: {key} is not an unseen pair of the run")
            pools[pair] = Path(file)  # type: ignore[index]
        else:
            for task, lang in unseen:
                if lang == key:
                    pools.setdefault((task, lang), Path(file))
    missing = [f"{task}/{lang}" for task, lang in unseen if (task, lang) not in pools]
    if missing:
        raise ConfigError(f"--pairs: no pool for the unseen pairs {', '.join(missing)}")
    return pools


def unseen_pairs(posterior: FittedPosterior, run_dir: Path) -> list[tuple[str, str]]:
    """The run's pairs that it never trained on, from its run.json."""
    from pfpyro.errors import ConfigError
    from pfpyro.run_record import seen_pairs

    seen = seen_pairs(run_dir)
    if seen is None:
        raise ConfigError(f"{run_dir}: no run.json records the pairs this run was trained on")
    known = set(seen)
    pairs = [(t, l) for t in posterior.tasks for l in posterior.langs if (t, l) not in known]
    if not pairs:
        raise ConfigError(f"{run_dir}: the run has no unseen pair")
    return pairs


def note_update(posterior: FittedPosterior, task: str, lang: str) -> None:
    """Say on standard error when the pair is scored under its few-shot posterior."""
    update = posterior.few_shot(task, lang)
    if update is not None:
        print(f"pfpyro suggest: {task}/{lang}: {update.note()}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from pfpyro.atomic import atomic_write_text
    from pfpyro.data.readers import read_pool
    from pfpyro.errors import ConfigError

    if args.budget is not None and args.budget < 1:
        raise ConfigError(f"--budget must be a positive number of sentences, got {args.budget}")
    if args.k < 1:
        raise ConfigError(f"--k must be a positive number of sentences, got {args.k}")
    if (args.strategy != "random" or args.pairs) and args.samples < 2:
        raise ConfigError(f"--samples: BALD and entropy need at least 2, got {args.samples}")
    if args.pairs:
        if args.task or args.lang or args.budget is not None:
            raise ConfigError("--pairs ranks every unseen pair: drop --task, --lang, --budget")
        posterior = load_posterior(args.run, args.device, args.quiet)
        pools = parse_pools(args.pool, unseen_pairs(posterior, args.run))
        sentences = {pair: [w for _, w in read_pool(p, args.format)] for pair, p in pools.items()}
        for pair in pools:
            note_update(posterior, *pair)
        frame = posterior.rank_pairs(
            sentences, args.k, args.samples, args.seed, progress=not args.quiet
        )
        text = frame.to_csv(sep="\t", index=False, float_format="%.4f")
    else:
        if not args.task or not args.lang:
            raise ConfigError("--task and --lang are required (or --pairs)")
        if len(args.pool) != 1:
            raise ConfigError(f"expected one pool file, got {len(args.pool)}")
        posterior = load_posterior(args.run, args.device, args.quiet)
        posterior.factorization.task_index(args.task)  # unknown names fail before reading
        posterior.factorization.lang_index(args.lang)
        pool = read_pool(args.pool[0], args.format)
        if args.strategy != "random":
            note_update(posterior, args.task, args.lang)
        if args.budget is not None and args.budget > len(pool):
            print(f"pfpyro suggest: the pool holds {len(pool)} sentences, fewer than --budget "
                  f"{args.budget}: all are ranked", file=sys.stderr)  # fmt: skip
        frame = posterior.suggest(
            args.task,
            args.lang,
            [words for _, words in pool],
            budget=args.budget,
            strategy=args.strategy,
            num_samples=args.samples,
            seed=args.seed,
            progress=not args.quiet,
        )
        rows = ["rank\tline\tscore\tsentence"] + [
            f"{rank}\t{pool[index][0]}\t{score:.6f}\t{' '.join(words)}"
            for rank, index, score, words in frame.itertuples(index=False)
        ]
        text = "\n".join(rows) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0

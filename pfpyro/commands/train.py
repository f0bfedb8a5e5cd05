"""``pfpyro train CONFIG --out RUN``: fit one PF model on the seen pairs of one partition,
as ``pfpyro experiment`` fits it (the config's selection rule included)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pfpyro.config import ExperimentConfig, ModelConfig, TrainConfig

EPILOG = """example:
  pfpyro train experiments/configs/demo.yaml --out runs/pf-lr --guide lr
  pfpyro train experiments/configs/demo.yaml --out runs/pf-lr --resume   # continue a stopped run

The run folder gets checkpoint.pt, model.json, log.jsonl and run.json (config, encoder,
partition); `pfpyro predict RUN ...` reads it. With `selection: {mode: zero-shot}` the
training length is chosen first by a run on the selection split, in RUN/select. At the end
the held-out pairs' test scores (plug-in prediction) are printed."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a PF model (SVI) on the seen pairs of a config's partition",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", type=Path, help="experiment YAML")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue from RUN's checkpoint")
    parser.add_argument("--partition", help="partition name, e.g. paper-0 (default: the first)")
    parser.add_argument(
        "--seed", type=int, help="seed (default: the config's train.seed, else its first seed)"
    )
    parser.add_argument(
        "--guide",
        help="the guide's registered name: lr (PF-lr), d (PF-d) or your own (default: the "
        "config's model.guide)",
    )
    parser.add_argument("--data", help="data root (else PFPYRO_DATA, else ../shared/data)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run_train_config(
    config: ExperimentConfig, args: argparse.Namespace, progress: bool
) -> tuple[TrainConfig, ModelConfig]:
    """The run's TrainConfig and ModelConfig: the YAML's ``train:``, ``optim:`` and
    ``model:`` sections, where a flag given on the command line wins (``--seed``, ``--guide``;
    PF-lr keeps the section's rank); with neither flag nor ``train.seed``, the seed is the
    config's first of ``seeds``."""
    seed = args.seed if args.seed is not None else config.train.get("seed", config.seeds[0])
    model = config.model
    if args.guide:
        model = model.with_guide(args.guide)
    return config.train_config(seed, progress=progress), model


def run(args: argparse.Namespace) -> int:
    from pfpyro.config import load_config
    from pfpyro.errors import ConfigError

    config = load_config(args.config)  # first, and light: a typo costs a second, not an hour

    train_config, model_config = run_train_config(config, args, progress=not args.quiet)
    seed = train_config.seed

    from pfpyro.atomic import atomic_write_text
    from pfpyro.evaluate import headline_metric, score_pair
    from pfpyro.experiment import fit_pf, heldout_predictions, prepare
    from pfpyro.infer import PFPredictor
    from pfpyro.model.description import check_model_config

    out: Path = args.out
    if out.exists() and any(out.iterdir()) and not args.resume:
        raise ConfigError(f"{out} is not empty: pass --resume to continue it, or a new --out")
    try:
        check_model_config(model_config)  # an unknown --guide fails before any work
    except ConfigError as error:
        raise ConfigError(f"{args.config}: model: {error}") from None
    setup = prepare(config, out, data=args.data, progress=not args.quiet)
    names = [name for name, _ in setup.partitions]
    name = args.partition or names[0]
    if name not in names:
        raise ConfigError(f"unknown partition {name!r}; this config has: {', '.join(names)}")
    partition = dict(setup.partitions)[name]
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "config": config.to_dict(),
        "partition": name,
        "seed": seed,
        "guide": model_config.component("guide")[0],
        "seen": [list(p) for p in partition.seen],
        "heldout": [list(p) for p in partition.heldout],
    }
    atomic_write_text(out / "run.json", json.dumps(record, indent=2))
    # The experiment's own path: the config's selection rule, then all seen pairs.
    fit = fit_pf(
        setup, name, partition, model_config, train_config, out, out / "select", args.resume
    )
    predictor = PFPredictor(fit.result.factorization, fit.result.guide, mode="plugin")
    print(f"held-out test scores (plug-in), partition {name}, seed {seed}:")
    for task, lang, _, probs, test in heldout_predictions(
        setup.store, partition, {"plugin": predictor}
    ):
        scores = score_pair(task, probs, test.labels, test.mask)
        headline = headline_metric(task)
        score, entropy = 100 * scores[headline], scores["entropy"]
        print(f"  {task}\t{lang}\t{headline} {score:.2f}\tentropy {entropy:.3f}")
    return 0

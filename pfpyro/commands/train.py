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
  pfpyro train experiments/configs/demo.yaml --out runs/ddp --devices 2 --strategy ddp

The run folder gets checkpoint.pt, model.json, log.jsonl and run.json (config, encoder,
partition); `pfpyro predict RUN ...` reads it. With `selection: {mode: zero-shot}` the
training length is chosen first by a run on the selection split, in RUN/select. At the end
the held-out pairs' test scores (plug-in prediction) are printed.

With --devices N (Lightning, `pip install 'pyro-ppl[lightning]'`) the run is data-parallel
over N processes per node (× --num-nodes), one pair per process and step: it takes the
config's max_steps steps, without early stopping or selection (a zero-shot selection config
and model.init: jm are refused; experiments/configs/demo-v1.yaml runs). Rank 0 writes a
Lightning checkpoint to RUN/lightning every --checkpoint-every steps (train.checkpoint_every;
default train.eval_every), keeping the newest train.keep_checkpoints; --resume goes on from
the newest, on as many processes as wrote it, and ends exactly where the uninterrupted run
ends:
  pfpyro train experiments/configs/demo-v1.yaml --out runs/ddp --devices 2 --accelerator cpu \
      --checkpoint-every 50 --resume"""


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
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="a checkpoint every N steps (default: the config's train.checkpoint_every)",
    )
    many = parser.add_argument_group("several devices (Lightning)")
    many.add_argument("--devices", type=int, help="processes per node (data-parallel SVI)")
    many.add_argument(
        "--strategy", default="ddp", help="ddp (default) or ddp_spawn (with --devices)"
    )
    many.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (with --devices)")
    many.add_argument("--num-nodes", type=int, default=1, help="nodes (with --devices)")
    parser.set_defaults(func=run)


#: The variables that give a process's rank: Lightning's launcher (LOCAL_RANK, NODE_RANK),
#: torchrun (RANK) and SLURM's srun (SLURM_PROCID).
RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID")


def lightning_child() -> bool:
    """Whether this process is a data-parallel worker of rank > 0 (started by Lightning's
    launcher, on another node, by torchrun or by srun): rank 0 alone reports."""
    import os

    return any(int(os.environ.get(name) or 0) > 0 for name in RANK_VARIABLES)


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
    flags = {"progress": progress}
    if getattr(args, "checkpoint_every", None) is not None:
        flags["checkpoint_every"] = args.checkpoint_every
    return config.train_config(seed, **flags), model


def run(args: argparse.Namespace) -> int:
    from pfpyro.config import load_config
    from pfpyro.errors import ConfigError

    config = load_config(args.config)  # first, and light: a typo costs a second, not an hour

    train_config, model_config = run_train_config(config, args, progress=not args.quiet)
    seed = train_config.seed
    try:  # a flag's value too (--checkpoint-every), before any work
        train_config.validate()
    except ConfigError as error:
        raise ConfigError(f"{args.config}: train: {error}") from None

    from pfpyro.atomic import atomic_write_text
    from pfpyro.evaluate import headline_metric, score_pair
    from pfpyro.infer import PFPredictor
    from pfpyro.model.description import check_model_config
    from pfpyro.pipeline.fit import fit_pf
    from pfpyro.pipeline.grid import heldout_predictions
    from pfpyro.pipeline.setup import prepare

    out: Path = args.out
    if args.devices is not None:
        import importlib.util

        from pfpyro.config import DDP_STRATEGIES

        if args.strategy not in DDP_STRATEGIES:
            raise ConfigError(
                f"--strategy must be one of {', '.join(DDP_STRATEGIES)}, got {args.strategy!r}"
            )
        if args.devices < 1 or args.num_nodes < 1:
            raise ConfigError("--devices and --num-nodes must be positive")
        if importlib.util.find_spec("lightning") is None:
            raise ConfigError("--devices needs Lightning: pip install 'pyro-ppl[lightning]'")
        if config.selection.mode != "seen-dev":
            raise ConfigError(
                f"{args.config}: selection {config.selection.mode!r} is not available with "
                "--devices; use selection: {mode: seen-dev} (the run takes max_steps steps), "
                "e.g. experiments/configs/demo-v1.yaml"
            )
        if model_config.init != "random":
            raise ConfigError(
                f"{args.config}: model.init {model_config.init!r} is not available with "
                "--devices (a data-parallel run starts at the random initialisation); use "
                "model.init: random"
            )
    if out.exists() and any(out.iterdir()) and not args.resume and not lightning_child():
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
    if args.devices is not None:
        result = train_on_devices(setup, name, partition, model_config, train_config, args)
        if lightning_child():
            return 0  # rank 0 reports
    else:  # the experiment's own path: the config's selection rule, then all seen pairs
        result = fit_pf(
            setup, name, partition, model_config, train_config, out, out / "select", args.resume
        ).result
    predictor = PFPredictor(result.factorization, result.guide, mode="plugin")
    print(f"held-out test scores (plug-in), partition {name}, seed {seed}:")
    for task, lang, _, probs, test in heldout_predictions(
        setup.store, partition, {"plugin": predictor}
    ):
        scores = score_pair(task, probs, test.labels, test.mask)
        headline = headline_metric(task)
        score, entropy = 100 * scores[headline], scores["entropy"]
        print(f"  {task}\t{lang}\t{headline} {score:.2f}\tentropy {entropy:.3f}")
    return 0


def train_on_devices(setup, name, partition, model_config, train_config, args):
    """The seen pairs' PF model trained data-parallel (:mod:`pfpyro.infer.distributed`)."""
    import sys

    from pfpyro.infer.distributed import train_distributed
    from pfpyro.pipeline.fit import unit_data, with_language_data

    if not lightning_child():
        print(
            f"--devices {args.devices}: {train_config.max_steps} steps on "
            f"{args.devices * args.num_nodes} processes, no early stopping (train.patience is "
            "not used)",
            file=sys.stderr,
        )
    data = unit_data(setup, name, partition)
    pairs = [*partition.seen, *partition.heldout]
    langs = sorted({lang for _, lang in pairs})
    return train_distributed(
        data.train,
        data.dev,
        train_config,
        model=with_language_data(model_config, langs, setup.catalog),
        tasks=sorted({task for task, _ in pairs}),
        langs=langs,
        devices=args.devices,
        strategy=args.strategy,
        accelerator=args.accelerator,
        num_nodes=args.num_nodes,
        out_dir=args.out,
        resume=args.resume,
        encoder_top=setup.store.encoder_top(),
    )

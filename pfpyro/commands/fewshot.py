"""``pfpyro fewshot CONFIG --out OUT``: k labelled sentences of each unseen pair, PF against
JM (learning curves)."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """example:
  pfpyro fewshot experiments/configs/demo.yaml --out runs/fewshot --k 0,10,50,100

Trains the config's PF model on its first partition (as `pfpyro experiment` does; resumable),
then gives every held-out pair k of its own training sentences: PF updates q(l_j) and q(θ_ij)
with the run held fixed, JM retrains on its data plus the same sentences. Writes
OUT/fewshot.csv, OUT/fewshot.md and OUT/fewshot.png (score against k, a panel per task)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fewshot",
        help="learning curves of the unseen pairs with k labelled sentences, PF against JM",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", type=Path, help="experiment YAML (selection: seen-dev)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--k", default="0,10,50,100", help="comma-separated k (default 0,10,50,100)"
    )
    parser.add_argument("--partition", help="partition name (default: the config's first)")
    parser.add_argument("--model", default="pf-lr", help="pf-lr (default), pf-d or pf")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps per pair (300)")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (0.01)")
    parser.add_argument("--data", help="data root (else PFPYRO_DATA, else ../shared/data)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pfpyro.config import load_config
    from pfpyro.errors import ConfigError

    config = load_config(args.config)  # first, and light: a typo costs a second, not an hour
    try:
        ks = [int(text) for text in args.k.split(",") if text.strip()]
    except ValueError:
        raise ConfigError(f"--k: expected comma-separated integers, got {args.k!r}") from None

    from pfpyro.infer.pair_posterior import FewShotSettings
    from pfpyro.pipeline.fewshot import markdown, run_fewshot

    frame = run_fewshot(
        config,
        args.out,
        ks=ks,
        partition_name=args.partition,
        model=args.model,
        settings=FewShotSettings(steps=args.steps, lr=args.lr, seed=config.seeds[0]),
        data=args.data,
        progress=not args.quiet,
    )
    print(markdown(frame), end="")
    print(f"wrote {args.out / 'fewshot.csv'}, fewshot.md and fewshot.png")
    return 0

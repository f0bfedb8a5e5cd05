"""``pfpyro extend RUN --config CONFIG --pair TASK/LANG --out NEW``: add a language or task."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """example:
  pfpyro extend runs/pf-lr --config experiments/configs/demo.yaml --pair pos/hu --out runs/pf-lr+hu

Fits q(l_new) (or q(t_new)) on the labelled training data of the given pairs, read through the
config's catalog and encoder, with everything the run already learned held fixed; writes a new
run folder (model.json, checkpoint.pt, run.json) that `pfpyro predict` and pfpyro.load read.
Then prints the plug-in test scores of the new language's (or task's) other pairs that the
catalog has test data for: they are zero-shot pairs of the extended model."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extend",
        help="add a new language (or task) to a trained run, without retraining it",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, help="a run folder of pfpyro train (or experiment)")
    parser.add_argument("--config", type=Path, required=True, help="config: catalog, encoder")
    parser.add_argument(
        "--pair",
        action="append",
        required=True,
        help="a labelled pair of the new language or task, e.g. pos/hu (repeatable)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the new run folder")
    parser.add_argument("--steps", type=int, default=500, help="Adam steps (default 500)")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per step")
    parser.add_argument("--lr", type=float, default=0.02, help="learning rate (default 0.02)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--data", help="data root (else PFPYRO_DATA, else ../shared/data)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pfpyro.config import load_config
    from pfpyro.data.partition import parse_pair

    config = load_config(args.config)
    pairs = [parse_pair(text) for text in args.pair]

    from pfpyro.api import load
    from pfpyro.errors import ConfigError
    from pfpyro.evaluate import headline_metric, score_pair
    from pfpyro.infer import PFPredictor
    from pfpyro.infer.extend import extend
    from pfpyro.pipeline.setup import feature_store, load_catalog

    catalog = load_catalog(config, args.data)
    missing = [f"{t}/{x}" for t, x in pairs if (t, x) not in set(catalog.pairs())]
    if missing:
        raise ConfigError(f"{args.config}: catalog has no pair(s) {', '.join(missing)}")
    store = feature_store(config, catalog, progress=not args.quiet)
    train = {}
    for task, lang in pairs:
        data = store.get(task, lang, "train", "seen")
        if data is None:
            raise ConfigError(f"pair {task}/{lang} has no training data in the catalog")
        train[task, lang] = data.tensors
    result = extend(
        args.run,
        train,
        args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        progress=not args.quiet,
    )
    added = [*result.new_langs, *result.new_tasks]
    print(f"added {', '.join(added)} in {result.seconds:.1f} s; wrote {args.out}")
    model = load(args.out)
    predictor = PFPredictor(model.factorization, model.guide, mode="plugin")
    zero_shot = [
        (task, lang)
        for task in model.tasks
        for lang in model.langs
        if (lang in result.new_langs or task in result.new_tasks) and (task, lang) not in train
    ]
    for task, lang in zero_shot:
        if (task, lang) not in set(catalog.pairs()):
            continue
        test = store.get(task, lang, "test", "heldout")
        if test is None:
            continue
        t = test.tensors
        scores = score_pair(
            task, predictor.predict_proba(task, lang, t.inputs, t.mask), t.labels, t.mask
        )
        metric = headline_metric(task)
        print(f"  zero-shot {task}\t{lang}\t{metric} {100 * scores[metric]:.2f}")
    return 0

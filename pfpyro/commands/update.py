"""``pfpyro update RUN --task T --lang L LABELS``: fit an unseen pair's few-shot posterior on
a file of one's own labels, and save it in the run folder for `predict` and `suggest`."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  pfpyro update runs/pf-lr --task ner --lang wo wo.ner.iob
  pfpyro update runs/pf-lr --task pos --lang yo labelled.conllu --steps 500

Reads the labelled sentences of the pair (CoNLL-U for a task whose description names a
CoNLL-U field, such as pos; IOB, token first and tag last, for any task; by extension, .conllu
or .iob/.bio/.tsv/.conll, unless --format says), encodes them with the run's encoder and fits
q(l_j) and q(θ_ij) of the pair on them with the run held fixed. Writes RUN/pairs/T.L.pt and
RUN/pairs/T.L.json (labels file and sha256, k, words, settings, date), atomically; `pfpyro
predict` and `pfpyro suggest` then use it for the pair. Every update starts from the run's
posterior: rerun it with all the pair's labels so far, and it replaces the last one. Seen pairs
are refused (the update is for unseen pairs)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from pfpyro.data.readers import LABEL_FORMATS

    parser = subparsers.add_parser(
        "update",
        help="fit an unseen pair's posterior on a file of one's own labels (few-shot)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, help="run folder written by `pfpyro train`")
    parser.add_argument("labels", type=Path, help="the pair's labelled sentences")
    parser.add_argument("--task", required=True, help="task, e.g. ner or pos")
    parser.add_argument("--lang", required=True, help="language code, e.g. wo")
    parser.add_argument("--format", choices=LABEL_FORMATS, help="(default: by extension)")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps (300)")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (0.01)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fit (0)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pfpyro.commands.suggest import load_posterior
    from pfpyro.infer.pair_posterior import FewShotSettings

    settings = FewShotSettings(steps=args.steps, lr=args.lr, seed=args.seed)
    settings.validate()  # a bad flag fails before the run is loaded
    posterior = load_posterior(args.run, args.device, args.quiet, "update", "posterior to update")
    update = posterior.update_from_file(
        args.task, args.lang, args.labels, args.format, settings, progress=not args.quiet
    )
    record = update.record
    print(
        f"wrote {update.path} and {update.path.with_suffix('.json').name}: {args.task}/"
        f"{args.lang} fitted on k = {record['k']} sentences, {record['words']} words of "
        f"{args.labels}"
    )
    return 0

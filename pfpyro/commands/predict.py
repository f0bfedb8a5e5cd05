"""``pfpyro predict RUN --task T --lang L FILE``: tag a file with a trained PF model.

Works for every pair of the model, seen or held out; a held-out pair with a few-shot
posterior saved by `pfpyro update` is tagged with it (a note on standard error says so;
--zero-shot ignores it). Each output line is
``word<TAB>label<TAB>probability<TAB>entropy`` (entropy in nats of the word's predictive
distribution), a blank line between sentences, then one ``# sentence entropy`` comment per
sentence before its words.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """example:
  pfpyro predict runs/pf-lr --task ner --lang wo sentences.txt --bma 100 --out wo.ner.tsv
  pfpyro predict runs/pf-lr --task pos --lang yo test.conllu --format conllu
  pfpyro predict runs/pf-lr --task pos --lang wo one.txt --runtime onnx   # fast start-up

Input formats: text (one sentence per line, words split on spaces; the default), words (one
word per line in the first column, blank line between sentences), or any corpus format of
`pfpyro data` (conllu, tsv, wikiann, masakhaner): then gold labels are scored too."""

INPUT_FORMATS = ("text", "words", "conllu", "tsv", "wikiann", "masakhaner")


def register(subparsers: argparse._SubParsersAction) -> None:
    from pfpyro.config import ENCODER_RUNTIMES

    parser = subparsers.add_parser(
        "predict",
        help="tag a file with a trained model (plug-in or Bayesian model averaging)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, help="run folder written by `pfpyro train`")
    parser.add_argument("file", type=Path, help="the sentences to tag")
    parser.add_argument("--task", required=True, help="task, e.g. ner or pos")
    parser.add_argument("--lang", required=True, help="language code, e.g. wo")
    parser.add_argument("--format", choices=INPUT_FORMATS, default="text", help="input format")
    parser.add_argument(
        "--bma", type=int, metavar="S", help="Bayesian model averaging over S posterior samples"
    )
    parser.add_argument("--out", type=Path, help="output file (default: standard output)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when available)")
    parser.add_argument(
        "--runtime",
        choices=ENCODER_RUNTIMES,
        help="what runs the encoder (default: the run's own, from its run.json); onnx: ONNX "
        "Runtime, exported into the cache once, starts without transformers",
    )
    parser.add_argument(
        "--zero-shot",
        action="store_true",
        help="ignore the pair's few-shot posterior of `pfpyro update` (RUN/pairs), if any",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run, fast_exit=True)  # see pfpyro.cli.main


def read_input(path: Path, fmt: str, task: str, lang: str) -> tuple[list[tuple[str, ...]], list]:
    """(word lists, Sentence objects when the format carries gold labels, else [])."""
    from pfpyro.data.readers import blocks, read_lines, read_sentences
    from pfpyro.errors import DataFormatError

    if fmt == "text":
        lines = read_lines(path)
        words = [tuple(line.split()) for line in lines if line.strip()]
        return words, []
    if fmt == "words":
        lines = read_lines(path)
        words = []
        for start, block in blocks(lines):
            for offset, line in enumerate(block):
                if line.startswith("\t") or line.startswith(" "):
                    raise DataFormatError(path, start + offset, "a word in the first column", line)
            words.append(tuple(line.split()[0] for line in block))
        return words, []
    sentences = read_sentences(path, fmt, task, lang, "test")
    return [s.words for s in sentences], sentences


def run(args: argparse.Namespace) -> int:
    import torch

    from pfpyro.api import load
    from pfpyro.atomic import atomic_write_text
    from pfpyro.data.tasks import label_set
    from pfpyro.errors import ConfigError
    from pfpyro.evaluate import score_pair

    if not (args.run / "model.json").exists():
        raise ConfigError(f"{args.run}: not a run folder (no model.json); train one first")
    posterior = load(args.run, device=args.device)
    posterior.factorization.task_index(args.task)  # a clear error naming the known tasks
    posterior.factorization.lang_index(args.lang)
    words, gold = read_input(args.file, args.format, args.task, args.lang)
    if posterior.encoder_config is None:
        raise ConfigError(f"{args.run}: no run.json records the encoder of this run")
    posterior.encoder_config = {**posterior.encoder_config, "progress": not args.quiet}
    if args.runtime is not None:  # a flag given wins over the run's record
        posterior.encoder_config["runtime"] = args.runtime
    update = None if args.zero_shot else posterior.few_shot(args.task, args.lang)
    if update is not None:
        print(f"pfpyro predict: {update.note()}", file=sys.stderr)
    prediction = posterior.predict(
        args.task, args.lang, words, bma=args.bma, zero_shot=args.zero_shot
    )
    lines = []
    for k, sentence in enumerate(prediction.words):
        lines.append(f"# sentence_entropy = {sum(prediction.entropy[k]) / len(sentence):.4f}")
        for word, label, confidence, entropy in zip(
            sentence,
            prediction.labels[k],
            prediction.confidence[k],
            prediction.entropy[k],
            strict=True,
        ):
            lines.append(f"{word}\t{label}\t{confidence:.4f}\t{entropy:.4f}")
        lines.append("")
    text = "\n".join(lines) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    if gold:
        index = {label: k for k, label in enumerate(label_set(args.task))}
        probs = prediction.probs
        labels = torch.zeros(probs.shape[:2], dtype=torch.long)
        mask = torch.zeros(probs.shape[:2], dtype=torch.bool)
        for k, sentence in enumerate(gold):
            labels[k, : len(sentence)] = torch.tensor([index[x] for x in sentence.labels])
            mask[k, : len(sentence)] = True
        scores = score_pair(args.task, probs, labels, mask)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
        print(f"scores against the file's labels: {shown}", file=sys.stderr)
    return 0

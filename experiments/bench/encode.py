"""Encoder throughput: bare forward passes against pfpyro's full feature extraction.

In one run over the same length-sorted batches of real sentences (400 of UD English-EWT
train, plus 50 each of Turkish, Korean, Tamil and Arabic), it times

(a) the encoder's forward passes alone, on batches tokenised and padded beforehand, and
(b) :meth:`pfpyro.encode.WordEncoder.encode` from words to arrays: tokenisation, alignment,
    windows, forward passes, gathering and a cold-cache write,

after one warm-up of each, repeated and taking the median, and prints words per second of
both and their ratio (b)/(a); pfpyro's own overhead is the gap (goal: ratio >= 0.9).

Then each of ``--variants`` (default all three): torch int8 (``precision="int8"``, the linear
layers dynamically quantised), ONNX Runtime fp32 and ONNX Runtime int8 (``runtime="onnx"``,
:mod:`pfpyro.encode.onnx_runtime`; exported into the cache on first use): its full-extraction
words per second and ratio against torch fp32, and a probe: a softmax POS tagger
(:class:`~pfpyro.baselines.linear.LinearTagger`, the baselines' classifier) trained on the
first ``--probe-sentences`` sentences of UD English-EWT and of Turkish-IMST train (or of the
``--probe-langs`` chosen among those and Korean-GSD, Vietnamese-VTB, Hungarian-Szeged) and
tested on the first half as many of their test files, on each encoder's features; the
accuracy lost against torch fp32 is printed (goal: at most 0.5 points).

Usage::

    python experiments/bench/encode.py [--data DIR] [--repeats 3] [--batch-size 32]
           [--variants onnx-int8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from pfpyro.data.paths import data_root
from pfpyro.data.readers import read_sentences
from pfpyro.encode import OFFLINE_ENCODER, FeatureCache, WordEncoder

#: (treebank folder, file, language, split, sentences taken from the start of the file)
SOURCES = (
    ("UD_English-EWT", "en_ewt-ud-train.conllu", "en", "train", 400),
    ("UD_Turkish-IMST", "tr_imst-ud-train.conllu", "tr", "train", 50),
    ("UD_Korean-GSD", "ko_gsd-ud-train.conllu", "ko", "train", 50),
    ("UD_Tamil-TTB", "ta_ttb-ud-train.conllu", "ta", "train", 50),
    ("UD_Arabic-PUD", "ar_pud-ud-test.conllu", "ar", "test", 50),
)


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python experiments/bench/encode.py --repeats 5",
    )
    parser.add_argument("--data", help="data root (else PFPYRO_DATA, else ../shared/data)")
    parser.add_argument("--encoder", default=OFFLINE_ENCODER, help="model name or path")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per batch")
    parser.add_argument("--max-subwords", type=int, default=250)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument(
        "--variants",
        type=_variant_list,
        default=list(VARIANTS),
        help=f"comma-separated encoders compared with torch fp32 ('' for none; default: "
        f"{','.join(VARIANTS)})",
    )
    parser.add_argument(
        "--probe-sentences", type=int, default=1000, help="training sentences per probe language"
    )
    parser.add_argument(
        "--probe-langs",
        type=_probe_list,
        default=["en", "tr"],
        help="probe languages, comma-separated, among en,tr,ko,vi,hu (default: en,tr)",
    )
    return parser


def _variant_list(text: str) -> list[str]:
    names = [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}"
        )
    return names


def _probe_list(text: str) -> list[str]:
    langs = [lang for lang in text.split(",") if lang]
    known = [lang for _, _, lang in PROBE]
    unknown = [lang for lang in langs if lang not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"no probe treebank for {unknown[0]!r}; known: {', '.join(known)}"
        )
    return langs


def load_words(root: Path) -> list[tuple[str, ...]]:
    words = []
    for folder, name, lang, split, count in SOURCES:
        sentences = read_sentences(root / "ud" / folder / name, "conllu", "pos", lang, split)
        words += [s.words for s in sentences[:count]]
    return words


def time_bare(encoder: WordEncoder, inputs: Sequence[dict[str, torch.Tensor]]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in inputs:
            encoder.forward(batch)
    return time.perf_counter() - start


def time_full(encoder: WordEncoder, words: Sequence[Sequence[str]]) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        encoder.cache = FeatureCache(scratch)  # cold: every run computes and writes
        start = time.perf_counter()
        encoder.encode(words)
        elapsed = time.perf_counter() - start
        assert encoder.cache.misses == 1
    return elapsed


def main(args: Sequence[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    if ns.threads:
        torch.set_num_threads(ns.threads)
    words = load_words(data_root(ns.data))
    n_words = sum(len(w) for w in words)
    encoder = WordEncoder(
        ns.encoder, max_subwords=ns.max_subwords, batch_size=ns.batch_size, progress=False
    )
    plan = encoder.plan(words)
    inputs = [plan.batch_inputs(b, encoder.pad_id) for b in range(len(plan.batches))]
    subwords = sum(len(ids) for ids in plan.ids)
    print(
        f"{len(words)} sentences, {n_words} words, {subwords} subwords (specials included), "
        f"{len(inputs)} batches of up to {ns.batch_size}; torch threads {torch.get_num_threads()}"
    )
    time_bare(encoder, inputs)  # warm-up
    time_full(encoder, words)
    bare, full = [], []
    for _ in range(ns.repeats):
        bare.append(time_bare(encoder, inputs))
        full.append(time_full(encoder, words))
    rate_bare = n_words / statistics.median(bare)
    rate_full = n_words / statistics.median(full)
    print(f"(a) bare forward passes:       {rate_bare:8.0f} words/s  (runs: {_fmt(bare)})")
    print(f"(b) full feature extraction:   {rate_full:8.0f} words/s  (runs: {_fmt(full)})")
    print(f"ratio (b)/(a): {rate_full / rate_bare:.3f}")
    if ns.variants:
        compare_variants(ns, encoder, words, rate_full)
    return 0


#: The treebanks a probe can use: (treebank folder, file prefix, language); ``--probe-langs``
#: picks among them (default en,tr).
PROBE = (
    ("UD_English-EWT", "en_ewt", "en"),
    ("UD_Turkish-IMST", "tr_imst", "tr"),
    ("UD_Korean-GSD", "ko_gsd", "ko"),
    ("UD_Vietnamese-VTB", "vi_vtb", "vi"),
    ("UD_Hungarian-Szeged", "hu_szeged", "hu"),
)

#: The faster encoders compared with torch fp32: (runtime, precision).
VARIANTS = {
    "torch-int8": ("torch", "int8"),
    "onnx-fp32": ("onnx", "fp32"),
    "onnx-int8": ("onnx", "int8"),
}


def compare_variants(
    ns: argparse.Namespace, fp32: WordEncoder, words: Sequence[Sequence[str]], rate_fp32: float
) -> dict[str, dict[str, float]]:
    """Each of ``ns.variants`` against torch fp32: full-extraction speed on ``words`` and a POS
    probe's accuracy per probe language; returns {variant: {"rate", "ratio", lang: lost}}."""
    encoders = {"torch-fp32": fp32}
    results: dict[str, dict[str, float]] = {}
    for name in ns.variants:
        runtime, precision = VARIANTS[name]
        encoder = WordEncoder(ns.encoder, max_subwords=ns.max_subwords, batch_size=ns.batch_size,
                              progress=False, precision=precision, runtime=runtime)  # fmt: skip
        time_full(encoder, words)  # warm-up
        runs = [time_full(encoder, words) for _ in range(ns.repeats)]
        rate = sum(len(w) for w in words) / statistics.median(runs)
        results[name] = {"rate": rate, "ratio": rate / rate_fp32}
        print(f"({name}) full extraction: {rate:8.0f} words/s, {rate / rate_fp32:.3f} x torch "
              f"fp32  (runs: {_fmt(runs)})")  # fmt: skip
        encoders[name] = encoder
    for lang, scores in probe_scores(ns, encoders).items():
        shown = ", ".join(f"{name} {score:.2f}" for name, score in scores.items())
        print(f"probe POS {lang}: accuracy {shown}")
        for name in ns.variants:
            lost = scores["torch-fp32"] - scores[name]
            results[name][lang] = lost
            print(f"  {name}: lost {lost:+.2f} points against torch fp32 (goal <= 0.5)")
    return results


def probe_scores(
    ns: argparse.Namespace, encoders: dict[str, WordEncoder]
) -> dict[str, dict[str, float]]:
    """A softmax POS tagger's test accuracy on each encoder's features, per probe language."""
    from pfpyro.baselines.linear import LinearTagger
    from pfpyro.data.batch import PairTensors
    from pfpyro.data.tasks import label_set
    from pfpyro.evaluate import token_accuracy

    root = data_root(ns.data)
    index = {label: k for k, label in enumerate(label_set("pos"))}
    out = {}
    for folder, prefix, lang in PROBE:
        if lang not in ns.probe_langs:
            continue
        split_sentences = {
            split: read_sentences(
                root / "ud" / folder / f"{prefix}-ud-{split}.conllu", "conllu", "pos", lang, split
            )[:count]
            for split, count in (("train", ns.probe_sentences), ("test", ns.probe_sentences // 2))
        }
        scores = {}
        for name, encoder in encoders.items():
            encoder.cache = FeatureCache()
            tensors = {
                split: PairTensors.from_arrays(
                    encoder.encode([s.words for s in found]),
                    [[index[label] for label in s.labels] for s in found],
                )
                for split, found in split_sentences.items()
            }
            tagger = LinearTagger.fit(tensors["train"], num_classes=len(index), seed=0)
            test = tensors["test"]
            probs = tagger.predict_proba(test.features.float(), test.mask)
            scores[name] = 100 * token_accuracy(test.labels, probs.argmax(-1), test.mask)
        out[lang] = scores
    return out


def _fmt(times: Sequence[float]) -> str:
    return ", ".join(f"{t:.2f}s" for t in times)


if __name__ == "__main__":
    raise SystemExit(main())

"""Prediction end to end: raw sentences in, tags out, plug-in against model averaging, and the
start-up a user waits for.

It trains a small PF-lr run on the demo config (``--steps`` SVI steps into a temporary folder;
the features of the demo's languages come from the cache when ``make demo`` has run), then
times, as the median of ``--repeats`` calls each:

(a) with the run loaded and its encoder built, ``FittedPosterior.predict`` on ``--sentences``
    real sentences (UD Wolof test, words only): encoding included (the feature cache off),
    plug-in and BMA over
    ``--samples`` posterior samples; words per second of each and their ratio (goal ≤ 1.3);
(b) the same two on the sentences' features computed once (the cached-feature ratio, where
    the head is the whole cost), printed beside it;
(c) whole processes: ``pfpyro predict RUN one.txt`` on one sentence not in the feature cache
    (goal ≤ 3 s on 2 cores), with the run's own encoder (torch) and with ``--runtime onnx``
    (ONNX Runtime, no transformers; exported into the cache by an untimed first call), and
    ``pfpyro --help`` (goal ≤ 0.5 s).

Usage::

    python experiments/bench/predict.py [--sentences 300] [--samples 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python experiments/bench/predict.py --sentences 300 --repeats 3",
    )
    parser.add_argument("--sentences", type=int, default=300, help="sentences to tag")
    parser.add_argument("--samples", type=int, default=100, help="S for model averaging")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls (median)")
    parser.add_argument("--steps", type=int, default=50, help="SVI steps of the bench's run")
    parser.add_argument("--data", type=Path, help="data root (default: as every command finds it)")
    return parser


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def process_seconds(
    args: Sequence[str], repeats: int, before: Callable[[int], object] = lambda k: None
) -> float:
    """Median wall time of a whole ``pfpyro`` process (start-up, imports, work, exit);
    ``before(k)`` runs untimed before the k-th."""
    pfpyro = Path(sys.executable).parent / "pfpyro"
    times = []
    for k in range(repeats):
        before(k)
        start = time.perf_counter()
        subprocess.run([str(pfpyro), *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_run(folder: Path, steps: int, data: Path | None) -> Path:
    """A PF-lr run of the demo config, ``steps`` SVI steps, in ``folder``."""
    values = yaml.safe_load((ROOT / "experiments" / "configs" / "demo.yaml").read_text())
    values["train"] = {**values["train"], "max_steps": steps, "eval_every": steps}
    config = folder / "bench.yaml"
    config.write_text(yaml.safe_dump(values), encoding="utf-8")
    run = folder / "run"
    args = ["train", str(config), "--out", str(run), "--quiet"]
    if data is not None:
        args += ["--data", str(data)]
    subprocess.run(
        [str(Path(sys.executable).parent / "pfpyro"), *args], check=True, capture_output=True
    )
    return run


def main(args: Sequence[str] | None = None) -> dict[str, float]:
    opts = build_argparse().parse_args(args)
    import pfpyro
    from pfpyro.data.batch import PairTensors
    from pfpyro.data.paths import data_root
    from pfpyro.data.readers import read_sentences

    root = data_root(opts.data)
    sentences = read_sentences(
        root / "ud" / "UD_Wolof-WTB" / "wo_wtb-ud-test.conllu", "conllu", "pos", "wo", "test"
    )[: opts.sentences]
    words = [s.words for s in sentences]
    count = sum(len(w) for w in words)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        run_dir = train_run(folder, opts.steps, opts.data)
        run = pfpyro.load(run_dir, device="cpu")
        run.encoder_config = {**run.encoder_config, "progress": False}
        run.predict("pos", "wo", words[:5])  # builds the encoder (start-up, not throughput)
        run.encoder().cache = None  # encode every call: the feature cache would hide it

        results["plugin_s"] = median_seconds(lambda: run.predict("pos", "wo", words), opts.repeats)
        results["bma_s"] = median_seconds(
            lambda: run.predict("pos", "wo", words, bma=opts.samples), opts.repeats
        )
        results["bma_over_plugin"] = results["bma_s"] / results["plugin_s"]

        features = PairTensors.from_arrays(run.encoder().encode(words)).features.float()
        results["plugin_cached_s"] = median_seconds(
            lambda: run.predict("pos", "wo", words, features=features), opts.repeats
        )
        results["bma_cached_s"] = median_seconds(
            lambda: run.predict("pos", "wo", words, bma=opts.samples, features=features),
            opts.repeats,
        )
        results["bma_over_plugin_cached"] = results["bma_cached_s"] / results["plugin_cached_s"]

        one = folder / "one.txt"

        def new_sentence(k: int) -> None:
            """A sentence the feature cache has not seen: the encoder must run."""
            fresh = [*reversed(words[k]), f"bench{time.time_ns()}"]
            one.write_text(" ".join(fresh) + "\n", encoding="utf-8")

        predict = ["predict", str(run_dir), str(one), "--task", "pos", "--lang", "wo", "--quiet"]
        results["predict_one_process_s"] = process_seconds(predict, opts.repeats, new_sentence)
        onnx = [*predict, "--runtime", "onnx"]
        process_seconds(onnx, 1, new_sentence)  # exports the encoder on first use (untimed)
        results["predict_one_onnx_process_s"] = process_seconds(onnx, opts.repeats, new_sentence)
        results["help_process_s"] = process_seconds(["--help"], opts.repeats)

    print(f"{len(words)} sentences, {count} words (UD Wolof test); BMA over {opts.samples} samples")
    for name, key in (("plug-in", "plugin_s"), ("BMA", "bma_s")):
        rate = count / results[key]
        print(f"end to end  {name:8} {results[key]:8.3f} s {rate:10.0f} words/s")
    print(f"end to end  BMA / plug-in {results['bma_over_plugin']:6.2f}   (goal <= 1.3)")
    for name, key in (("plug-in", "plugin_cached_s"), ("BMA", "bma_cached_s")):
        rate = count / results[key]
        print(f"cached      {name:8} {results[key]:8.3f} s {rate:10.0f} words/s")
    print(f"cached      BMA / plug-in {results['bma_over_plugin_cached']:6.2f}")
    print(f"process     pfpyro predict, one sentence {results['predict_one_process_s']:6.2f} s"
          "   (goal <= 3)")  # fmt: skip
    print(f"process     the same, --runtime onnx     {results['predict_one_onnx_process_s']:6.2f} s"
          "   (goal <= 3)")  # fmt: skip
    print(f"process     pfpyro --help                {results['help_process_s']:6.2f} s"
          "   (goal <= 0.5)")  # fmt: skip
    return results


if __name__ == "__main__":
    main()

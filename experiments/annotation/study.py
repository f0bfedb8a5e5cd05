"""The simulated annotation study (issue 24, item 3): posterior-chosen sentences against
random ones, for the unseen pairs of a trained PF run.

For every held-out pair of the config's first partition, its (capped) training split is the
pool with its labels hidden; in rounds of ``round_size`` sentences up to ``rounds`` rounds a
strategy picks the next sentences from what is left (random: a seeded order; entropy and
BALD: :mod:`pfpyro.infer.acquisition` under the pair's current posterior, the run's before
the first round, the few-shot posterior after each), their labels are revealed, and the
pair's posterior is refitted on all its labelled sentences (:func:`fit_pair`, the update of
``pfpyro fewshot``), then scored on the pair's test split (plug-in, as ``pfpyro fewshot``).
No strategy reads a test sentence. JM is retrained on its data plus the same chosen sentences
of every held-out pair at ``jm_ks`` as the reference. Each (pair, strategy, seed) is one
unit, saved when done: a rerun resumes.

The strategy default is chosen first, on validation pairs: ``validation.extra_languages``'
pairs are added to the training pairs and ``validation.pairs`` of them carved out
(:func:`pfpyro.pipeline.setup.validation_split`, each keeping its language seen with the other
task, like the held-out pairs), a PF model is trained without them, and the same simulation
runs on them, their train split as the pool, scored on their dev split. The strategy with the
highest mean score over rounds 1..R there is the default; the test pairs do not enter.

    nice -n 19 python experiments/annotation/study.py experiments/annotation/demo.yaml \\
        --out runs/annotation --results experiments/results/annotation
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from scipy.stats import spearmanr

from pfpyro.atomic import atomic_write_text
from pfpyro.config import load_config
from pfpyro.data.batch import PairTensors
from pfpyro.data.partition import Partition
from pfpyro.evaluate import headline_score
from pfpyro.infer import PFPredictor
from pfpyro.infer.acquisition import expected_gain, fixed_samples, pool_information, ranking
from pfpyro.infer.pair_posterior import FewShotPredictor, FewShotSettings, PairPosterior, fit_pair
from pfpyro.pipeline.fewshot import shot_pool
from pfpyro.pipeline.fit import fit_baseline_model, fit_pf, pf_model_config
from pfpyro.pipeline.setup import prepare, validation_split
from pfpyro.report import figure_fewshot, markdown_table

STRATEGIES = ("random", "entropy", "bald")


@dataclasses.dataclass
class Study:
    """The study's settings (the YAML)."""

    config: str
    model: str = "pf-lr"
    round_size: int = 10
    rounds: int = 10
    random_seeds: tuple[int, ...] = (0, 1, 2)
    samples: int = 100
    steps: int = 300
    lr: float = 0.01
    jm_ks: tuple[int, ...] = (10, 50, 100)
    validation: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Study:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key in ("random_seeds", "jm_ks"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def units(self) -> list[tuple[str, int]]:
        return [("random", s) for s in self.random_seeds] + [("entropy", 0), ("bald", 0)]


# -- one unit: a pair, a strategy, a seed ------------------------------------------------------
def scores_now(sampler, pool: PairTensors, left: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(entropy, BALD) of the pool's sentences not yet labelled."""
    index = torch.tensor(left)
    part = pool.batch(index)
    return pool_information(sampler, part.inputs, part.mask)


def pair_sampler(pair: PairPosterior, samples: int):
    """The few-shot posterior's q(θ_ij) as a fixed-sample scorer."""
    theta = pair.theta_samples(samples)
    return lambda features, mask: pair.sample_probs(features, theta)


def simulate(run, task, lang, pool, scored, strategy, seed, study) -> dict:
    """Rounds of one unit: the chosen pool indices per round and the score after each."""
    factorization, guide = run
    started = time.perf_counter()
    settings = FewShotSettings(steps=study.steps, lr=study.lr, seed=seed)
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(1000 + seed))
    base = PFPredictor(factorization, guide, mode="bma")
    labelled: list[int] = []
    posterior = None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        zero = FewShotPredictor(factorization, guide, {})
        rows = [{"k": 0, "score": evaluate(zero, task, lang, scored), "chosen": []}]
        for _ in range(study.rounds):
            left = [k for k in range(len(pool)) if k not in set(labelled)]
            if not left:
                break
            if strategy == "random":
                taken = set(labelled)
                new = [int(k) for k in order if int(k) not in taken][: study.round_size]
            else:
                sampler = (
                    fixed_samples(base, task, lang, study.samples)
                    if posterior is None
                    else pair_sampler(posterior, study.samples)
                )
                entropy, bald = scores_now(sampler, pool, left)
                best = ranking(bald if strategy == "bald" else entropy)[: study.round_size]
                new = [left[int(k)] for k in best]
            labelled += new
            data = pool.batch(torch.tensor(labelled))
            posterior = fit_pair(factorization, guide, task, lang, data, settings)
            predictor = FewShotPredictor(factorization, guide, {(task, lang): posterior})
            rows.append(
                {
                    "k": len(labelled),
                    "score": evaluate(predictor, task, lang, scored),
                    "chosen": new,
                }
            )
    return {"rows": rows, "seconds": time.perf_counter() - started}


def evaluate(predictor, task: str, lang: str, scored: PairTensors) -> float:
    probs = predictor.predict_proba(task, lang, scored.inputs, scored.mask).detach().float()
    return 100 * headline_score(task, probs, scored.labels, scored.mask)


def run_units(phase, run, pools, scored, study, units_dir: Path, log) -> pd.DataFrame:
    """Every (pair, strategy, seed) of a phase, skipping those already saved."""
    rows = []
    for (task, lang), pool in pools.items():
        for strategy, seed in study.units():
            path = units_dir / phase / f"{task}_{lang}_{strategy}_{seed}.json"
            if not path.exists():
                result = simulate(run, task, lang, pool, scored[task, lang], strategy, seed, study)
                atomic_write_text(path, json.dumps(result))
                log(
                    f"{phase} {task}/{lang} {strategy} seed {seed}: "
                    f"{result['rows'][-1]['score']:.2f} in {result['seconds']:.0f} s"
                )
            result = json.loads(path.read_text(encoding="utf-8"))
            for row in result["rows"]:
                rows.append(
                    (phase, task, lang, strategy, seed, row["k"], row["score"], result["seconds"])
                )
    columns = ["phase", "task", "lang", "strategy", "seed", "k", "score", "unit_seconds"]
    return pd.DataFrame(rows, columns=columns)


def chosen_sentences(units_dir: Path, phase: str, pools, strategy: str, seed: int, k: int):
    """The first ``k`` sentences a unit chose of each pair's pool, as tensors."""
    shots = {}
    for (task, lang), pool in pools.items():
        result = json.loads(
            (units_dir / phase / f"{task}_{lang}_{strategy}_{seed}.json").read_text()
        )
        chosen = [i for row in result["rows"] for i in row["chosen"]][:k]
        shots[task, lang] = pool.batch(torch.tensor(chosen))
    return shots


# -- the study ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path, help="the study's YAML")
    parser.add_argument("--out", type=Path, required=True, help="work folder (runs, units)")
    parser.add_argument("--results", type=Path, required=True, help="where tables go")
    parser.add_argument("--skip-jm", action="store_true", help="no JM reference")
    args = parser.parse_args(argv)
    study = Study.load(args.study)
    config = load_config(Path(study.config))
    seed = config.seeds[0]
    units_dir = args.out / "units"
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.0f} s] {message}", flush=True)

    setup = prepare(config, args.out, progress=False)
    name, partition = setup.partitions[0]
    architecture = pf_model_config(config, study.model)
    train_config = config.train_config(seed, progress=False)

    # 1. validation pairs: the strategy default, before any test pair is touched
    val_config = dataclasses.replace(
        config,
        selection=dataclasses.replace(
            config.selection,
            extra_languages=list(study.validation["extra_languages"]),
            validation_pairs=int(study.validation["pairs"]),
        ),
    )
    val_setup = prepare(val_config, args.out / "validation", progress=False)
    split = validation_split(val_config, val_setup.catalog, name, partition)
    val_fit = fit_pf(
        val_setup,
        name,
        Partition(seen=split.seen, heldout=split.heldout),
        architecture,
        train_config,
        args.out / "validation" / "train",
        args.out / "validation" / "select",
    )
    log(f"validation run trained: pairs {', '.join('/'.join(p) for p in split.heldout)}")
    store = val_setup.store
    val_pools = store.split_tensors(list(split.heldout), "train", "seen")
    val_dev = store.split_tensors(list(split.heldout), "dev", "seen")
    val_run = (val_fit.result.factorization, val_fit.result.guide)
    validation = run_units("validation", val_run, val_pools, val_dev, study, units_dir, log)
    curve = validation[validation["k"] > 0].groupby(["strategy", "task", "lang"])["score"].mean()
    by_strategy = curve.groupby("strategy").mean().sort_values(ascending=False)
    default = str(by_strategy.index[0])
    log(f"validation: mean score over rounds {by_strategy.round(2).to_dict()}; default {default}")

    # 2. the held-out pairs: pools are their training splits, scored on their test splits
    stem = f"{name}_seed{seed}_{study.model}"
    fit = fit_pf(
        setup,
        name,
        partition,
        architecture,
        train_config,
        args.out / "train" / stem,
        args.out / "train" / f"{stem}.select",
    )
    run = (fit.result.factorization, fit.result.guide)
    pools = shot_pool(setup, partition, seed)  # usable held-out pairs (no test_as_train)
    tests = {pair: setup.store.get(*pair, "test", "heldout").tensors for pair in pools}
    log(f"test run trained; {len(pools)} held-out pairs: {', '.join('/'.join(p) for p in pools)}")
    test = run_units("test", run, pools, tests, study, units_dir, log)

    # 3. predicted gain of each pair (the run's posterior, before any label) and realised gain
    k_max = study.round_size * study.rounds
    predicted = {}
    base = PFPredictor(*run, mode="bma")
    for (task, lang), pool in pools.items():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sampler = fixed_samples(base, task, lang, study.samples)
            entropy, bald = pool_information(sampler, pool.inputs, pool.mask)
        predicted[task, lang] = expected_gain(bald, entropy, k_max)[0]

    # 4. JM on the same chosen sentences
    jm_rows = []
    if not args.skip_jm:
        for strategy, unit_seed in study.units():
            for k in study.jm_ks:
                path = units_dir / "jm" / f"{strategy}_{unit_seed}_k{k}.csv"
                if not path.exists():
                    t0 = time.perf_counter()
                    shots = chosen_sentences(units_dir, "test", pools, strategy, unit_seed, k)
                    jm = fit_baseline_model(
                        setup, "jm", {**fit.data.train, **shots}, fit.data.dev, seed
                    )
                    rows = [(t, x, evaluate(jm, t, x, tests[t, x])) for t, x in pools]
                    frame = pd.DataFrame(rows, columns=["task", "lang", "score"])
                    frame["seconds"] = time.perf_counter() - t0
                    atomic_write_text(path, frame.to_csv(index=False))
                    log(f"jm {strategy} seed {unit_seed} k={k}: {frame['score'].mean():.2f}")
                frame = pd.read_csv(path)
                for row in frame.itertuples(index=False):
                    jm_rows.append(
                        (
                            "test-jm",
                            row.task,
                            row.lang,
                            strategy,
                            unit_seed,
                            k,
                            row.score,
                            row.seconds,
                        )
                    )
    jm = pd.DataFrame(jm_rows, columns=test.columns)
    write_results(args.results, study, validation, test, jm, predicted, default, by_strategy)
    log(f"done; results in {args.results}")
    return 0


# -- the report ----------------------------------------------------------------------------------
def per_pair(frame: pd.DataFrame) -> pd.DataFrame:
    """Scores per (task, lang, strategy, k), random's averaged over its seeds."""
    return frame.groupby(["task", "lang", "strategy", "k"], as_index=False)["score"].mean()


def labels_needed(curves: pd.DataFrame, task: str, strategy: str, target: float) -> str:
    """The least k whose mean over the task's pairs reaches ``target`` (">K" if none)."""
    rows = curves[(curves["task"] == task) & (curves["strategy"] == strategy)]
    means = rows.groupby("k")["score"].mean().sort_index()
    reached = [k for k, v in means.items() if k > 0 and v >= target]
    return str(min(reached)) if reached else f">{int(means.index.max())}"


def write_results(out, study, validation, test, jm, predicted, default, by_strategy) -> None:
    out.mkdir(parents=True, exist_ok=True)
    frames = pd.concat([validation, test, jm], ignore_index=True)
    atomic_write_text(out / "annotation.csv", frames.to_csv(index=False, float_format="%.4f"))
    curves = per_pair(test)
    lines = ["# Simulated annotation study: tables", ""]
    # curves: mean ± SE over pairs per task, strategy and k
    ks = sorted(curves["k"].unique())
    for task in sorted(curves["task"].unique()):
        body = []
        for strategy in STRATEGIES:
            rows = curves[(curves["task"] == task) & (curves["strategy"] == strategy)]
            g = rows.groupby("k")["score"]
            mean, se = g.mean(), g.std() / np.sqrt(g.count())
            body.append([f"PF-lr {strategy}", *(f"{mean[k]:.2f} ± {se[k]:.2f}" for k in ks)])
        if not jm.empty:
            jm_pairs = per_pair(jm)
            for strategy in STRATEGIES:
                rows = jm_pairs[(jm_pairs["task"] == task) & (jm_pairs["strategy"] == strategy)]
                g = rows.groupby("k")["score"]
                mean, se = g.mean(), g.std() / np.sqrt(g.count())
                body.append(
                    [
                        f"JM on {strategy}'s",
                        *(f"{mean[k]:.2f} ± {se[k]:.2f}" if k in mean else "" for k in ks),
                    ]
                )
        pairs = curves[curves["task"] == task]["lang"].nunique()
        lines += [f"## {task}: mean ± SE over {pairs} pairs, score by labelled sentences", ""]
        lines.append(
            markdown_table(["model", *(f"k={k}" for k in ks)], body, align="-" + "r" * len(ks))
        )
    # labels needed to reach random's score at 100 and at 50
    k_max = study.round_size * study.rounds
    body = []
    for task in sorted(curves["task"].unique()):
        rand = curves[(curves["task"] == task) & (curves["strategy"] == "random")]
        means = rand.groupby("k")["score"].mean()
        for at in (k_max, k_max // 2):
            target = means[at]
            body.append(
                [
                    task,
                    f"random at {at}: {target:.2f}",
                    *(labels_needed(curves, task, s, target) for s in STRATEGIES),
                ]
            )
    lines += ["## Labels needed to reach random's score", ""]
    lines.append(markdown_table(["task", "target", *STRATEGIES], body, align="--rrr"))
    # predicted against realised gain of the pairs
    gains = []
    for (task, lang), value in predicted.items():
        pair = curves[(curves["task"] == task) & (curves["lang"] == lang)]
        score = pair.set_index(["strategy", "k"])["score"]
        gains.append(
            (
                task,
                lang,
                value,
                score["bald", k_max] - score["bald", 0],
                score["random", k_max] - score["random", 0],
            )
        )
    gain = pd.DataFrame(gains, columns=["task", "lang", "predicted", "bald", "random"])
    atomic_write_text(out / "pair_gains.csv", gain.to_csv(index=False, float_format="%.4f"))
    lines += [f"## Predicted gain (summed BALD of the top {k_max}, nats) and realised gain", ""]
    lines.append(
        markdown_table(
            ["task", "lang", "predicted", f"bald k=0→{k_max}", f"random k=0→{k_max}"],
            [[t, x, f"{p:.2f}", f"{b:+.2f}", f"{r:+.2f}"] for t, x, p, b, r in gains],
            align="--rrr",
        )
    )
    for realised in ("bald", "random"):
        rho, p = spearmanr(gain["predicted"], gain[realised])
        lines.append(
            f"Spearman (predicted, realised under {realised}) over {len(gain)} pairs: "
            f"rho = {rho:.3f}, p = {p:.3f}"
        )
        lines.append("")
    # validation
    lines += ["## Validation pairs (the strategy default)", ""]
    lines.append(
        markdown_table(
            ["strategy", "mean score over rounds 1..R"],
            [[s, f"{v:.2f}"] for s, v in by_strategy.items()],
            align="-r",
        )
    )
    lines.append(f"Default chosen on the validation pairs: **{default}**.")
    atomic_write_text(out / "annotation.md", "\n".join(lines) + "\n")
    figure = curves.assign(model=lambda f: "pf-lr-" + f["strategy"])
    if not jm.empty:
        jm_curves = per_pair(jm).assign(model=lambda f: "jm-on-" + f["strategy"])
        figure = pd.concat([figure, jm_curves], ignore_index=True)
    figure_fewshot(figure, out / "annotation.png")
    val_curves = per_pair(validation).assign(model=lambda f: "pf-lr-" + f["strategy"])
    figure_fewshot(val_curves, out / "validation.png")


if __name__ == "__main__":
    sys.exit(main())

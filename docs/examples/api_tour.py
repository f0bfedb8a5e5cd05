"""A tour of the Python API over a trained run: ``pfpyro.load(RUN)`` and what it offers.

Run it on any run folder written by ``pfpyro train`` (or a ``train/<unit>`` folder of
``pfpyro experiment``)::

    python docs/examples/api_tour.py runs/pf-lr

The tests run it on a small synthetic run, passing word features directly (a synthetic run has
no encoder); on a real run, ``features=None`` lets the run's own encoder encode the words.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import pfpyro


def tour(
    run_dir: str | Path,
    task: str | None = None,
    lang: str | None = None,
    sentences: Sequence[Sequence[str]] = (("Dakar", "la", "dëkk"),),
    features: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Load a run and use each part of the API once; returns what each call gave."""
    # --8<-- [start:load]
    run = pfpyro.load(run_dir)  # a FittedPosterior
    print(run.tasks, run.langs)  # every pair of these, seen or held out, can be predicted
    # --8<-- [end:load]
    task = task or run.tasks[0]
    lang = lang or run.langs[0]
    # --8<-- [start:latents]
    t_means, l_means = run.posterior_means()  # {task: [h]}, {language: [h]}
    l_samples = run.language_samples(500, seed=0)  # {language: [500, h]} drawn from q(l)
    W, b = run.classifier(task, lang)  # θ at f_psi(E[t], E[l]): W [e, c], b [c]
    # --8<-- [end:latents]
    # --8<-- [start:predict]
    words = [list(sentence) for sentence in sentences]
    plugin = run.predict(task, lang, words, features=features)  # posterior-mean classifier
    averaged = run.predict(task, lang, words, bma=100, features=features)  # 100 samples
    print(averaged.to_frame())  # sentence, word, text, label, probability, entropy
    # --8<-- [end:predict]
    # --8<-- [start:similarity]
    similarity = run.language_similarity()  # cosine of posterior means, [m, m] DataFrame
    neighbours = run.nearest_languages(lang, k=3)  # the 3 most similar languages
    # --8<-- [end:similarity]
    # --8<-- [start:arviz]
    print(run)  # sizes, guide, how far t and l moved from their prior
    idata = run.to_arviz(num_samples=1000)  # t [task, latent] and l [language, latent] draws
    # e.g. arviz.summary(idata, var_names=["l"]); arviz.plot_forest(idata, var_names=["l"])
    # --8<-- [end:arviz]
    return {
        "run": run,
        "t_means": t_means,
        "l_means": l_means,
        "l_samples": l_samples,
        "classifier": (W, b),
        "plugin": plugin,
        "bma": averaged,
        "similarity": similarity,
        "neighbours": neighbours,
        "idata": idata,
    }


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="run folder")
    parser.add_argument("--task", help="task (default: the model's first)")
    parser.add_argument("--lang", help="language (default: the model's first)")
    return parser


def main(args: Sequence[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    tour(ns.run, ns.task, ns.lang)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

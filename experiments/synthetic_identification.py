"""Does a language effect shared by the tasks carry a language from one task to the other?

A synthetic world drawn by the ``adapter`` hypernetwork itself
(:func:`pfpyro.testing.synthetic.make_shared_effect_world`): what a language does to the
features is the same in every task. Three layouts of seen pairs, each with the held-out pairs
of task1 whose language is seen only in task0:

- ``paper``: task0 seen in lang0–2, task1 in lang3–5 (no language has both tasks);
- ``one-bridge``: the same plus task0 in lang5 (one language with both tasks);
- ``task0-everywhere``: 8 languages, task0 seen in all, task1 in lang6–7 only.

PF-d with the ``adapter`` layout (the true family), with the empty-trunk ``residual`` layout,
and the adapter at offset scale 0 (a classifier per task, blind to the language: JM's
special case), all trained by the same SVI settings; the oracle uses the true θ. Prints a
Markdown table of held-out accuracy (mean over the held-out pairs) per seed and the mean.

    python experiments/synthetic_identification.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pfpyro.config import ModelConfig, OptimConfig, TrainConfig
from pfpyro.evaluate import token_accuracy
from pfpyro.infer import PFPredictor, train
from pfpyro.testing.synthetic import make_shared_effect_world

LAYOUTS = ("paper", "one-bridge", "task0-everywhere")
MODELS = {
    "adapter": {"name": "adapter", "rank": 2, "task_offset": False},
    "residual": {"name": "residual", "hidden_dims": []},
    "per-task (scale 0)": {"name": "adapter", "rank": 2, "task_offset": False, "offset_scale": 0},
}


def layout(name: str, seed: int):
    """(world, seen pairs, held-out pairs) of one layout."""
    if name == "task0-everywhere":
        world = make_shared_effect_world(num_langs=8, seed=seed)
        seen = [("task0", lang) for lang in world.langs] + [("task1", x) for x in world.langs[6:]]
        return world, seen, [("task1", lang) for lang in world.langs[:6]]
    world = make_shared_effect_world(num_langs=6, seed=seed)
    seen = [("task0", x) for x in world.langs[:3]] + [("task1", x) for x in world.langs[3:]]
    if name == "one-bridge":
        seen.append(("task0", "lang5"))
    return world, seen, [("task1", lang) for lang in world.langs[:3]]


def accuracy(world, pair, probs) -> float:
    data = world.test[pair]
    return float(token_accuracy(data.labels, probs.argmax(-1), data.mask))


def held_out_accuracy(world, seen, held, hypernet: dict, steps: int) -> float:
    config = TrainConfig(batch_size=60, max_steps=steps, eval_every=steps, seed=0,
                         progress=False, optim=OptimConfig(lr=0.02, clip="norm"))  # fmt: skip
    result = train(
        {pair: world.train[pair] for pair in seen},
        {},
        config,
        model=ModelConfig(latent_dim=2, guide="d", hypernet=hypernet),
        tasks=world.tasks,
        langs=world.langs,
        num_classes=world.num_classes,
    )
    plugin = PFPredictor(result.factorization, result.guide, mode="plugin")
    scores = [
        accuracy(world, p, plugin.predict_proba(*p, world.test[p].features, world.test[p].mask))
        for p in held
    ]
    return statistics.mean(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    print("| layout | model | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |")
    print("|---|---|" + "---|" * (len(args.seeds) + 1))
    for name in LAYOUTS:
        rows: dict[str, list[float]] = {"oracle": []}
        for seed in args.seeds:
            world, seen, held = layout(name, seed)
            oracle = [accuracy(world, p, world.oracle_probs(p, world.test[p].features.float()))
                      for p in held]  # fmt: skip
            rows["oracle"].append(statistics.mean(oracle))
            for model, hypernet in MODELS.items():
                value = held_out_accuracy(world, seen, held, hypernet, args.steps)
                rows.setdefault(model, []).append(value)
        for model, values in rows.items():
            cells = " | ".join(f"{100 * v:.1f}" for v in values)
            print(f"| {name} | {model} | {cells} | {100 * statistics.mean(values):.1f} |")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

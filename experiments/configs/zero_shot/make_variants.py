"""Writes the zero-shot selection study's configs (one per PF variant, plus the baselines).

Every config is the demo's languages and partition with ``selection: zero-shot``: four
validation pairs carved from the seen pairs plus four selection-only languages (hu, id, mt,
ug), each of which keeps its other task in training. The variant that the README reports as
chosen is the one with the best zero-shot validation score; the held-out scores are printed
beside it but take no part in the choice.

    python experiments/configs/zero_shot/make_variants.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent

BASE = {
    "data": {
        "languages": ["eu", "fi", "ta", "tr", "vi", "wo", "yo"],
        "source_language": "en",
        "caps": {"train": 150, "dev": 60, "test": 120},
        "cap_seed": 0,
    },
    "partition": {"scheme": "paper", "indices": [0]},
    "selection": {
        "mode": "zero-shot",
        "validation_pairs": 4,
        "seed": 0,
        "extra_languages": ["hu", "id", "mt", "ug"],
        "baseline_epochs": [2, 5, 10, 20, 30],
    },
    "encoder": {"name": "multilingual-e5-small-offline", "max_subwords": 250, "batch_size": 32},
    "baselines": {"epochs": 30},
    "predict": {"bma_samples": 100, "entropy_sentences": 800},
    "seeds": [0],
}
TRAIN = {
    "guide": "d",
    "latent_dim": 10,
    "hidden_dims": [],
    "batch_size": 16,
    "lr": 0.003,
    "max_steps": 1200,
    "eval_every": 100,
    "patience": 4,
    "num_particles": 3,
}
VARIANTS = {
    "shared": {},  # the paper's padded, task-shared output
    "blocked": {"hypernet": "blocked"},
    "residual": {"hypernet": "residual"},
    "residual-small": {"hypernet": "residual", "offset_scale": 0.1},
    "residual-small-decay": {"hypernet": "residual", "offset_scale": 0.1, "weight_decay": 0.01},
    "shared-beta10": {"kl_beta": 10.0},
}


def main() -> None:
    baselines = {**BASE, "name": "zs-baselines", "train": TRAIN}
    baselines["models"] = ["ns", "ls", "jm", "bea"]
    (HERE / "baselines.yaml").write_text(yaml.safe_dump(baselines, sort_keys=False))
    for name, extra in VARIANTS.items():
        config = {**BASE, "name": f"zs-{name}", "train": {**TRAIN, **extra}, "models": ["pf-d"]}
        (HERE / f"pf-{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


if __name__ == "__main__":
    main()

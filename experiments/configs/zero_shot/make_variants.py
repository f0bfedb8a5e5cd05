"""Writes the zero-shot selection studies' configs (one per PF variant, plus the baselines).

Every config is the demo's languages and partition with ``selection: zero-shot``: four
validation pairs carved from the seen pairs plus four selection-only languages (hu, id, mt,
ug), each of which keeps its other task in training. The variant that the README reports as
chosen is the one with the best zero-shot validation score; the held-out scores are printed
beside it but take no part in the choice.

The same variants on the paper's grid (``grid/``: 33 languages, both partitions, PF-d and
PF-lr, 3 seeds, the caps of ``paper-v1.yaml``). Its partitions see one task per target language,
so English (the LS source, with both tasks) is the only selection-only language and gives the
one validation pair per fold; the carve seed (2) is the first that validates a different
task in each of the two folds, so that both tasks steer selection.

    python experiments/configs/zero_shot/make_variants.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pfpyro.config import migrate_legacy_train

HERE = Path(__file__).resolve().parent
CONFIGS = Path(__file__).resolve().parents[1]

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
# The variants are written here in one flat mapping (architecture, optimiser and run together,
# pfpyro 0.1's train: form) and split into model:, optim: and train: as they are written.
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
GRID_VARIANTS = ("shared", "blocked", "residual", "residual-small")
# The baselines may train up to 30 epochs; 800 steps are about 2.3 epochs of the grid's ~5,700
# seen training sentences. The same budget for PF: up to 10,600 steps (about 30 epochs), with
# validation every 200 steps and the same patience rule ending it when validation stops rising.
GRID_BUDGET = {"max_steps": 10_600, "eval_every": 200, "patience": 4}
GRID_EXTRA = {"residual-small-long": {**VARIANTS["residual-small"], **GRID_BUDGET}}
GRID_SELECTION = {
    "mode": "zero-shot",
    "validation_pairs": 1,
    "seed": 2,
    "extra_languages": ["en"],
    "baseline_epochs": [2, 5, 10, 20, 30],
}


def write_study(
    folder: Path, base: dict, train: dict, variants: dict, pf_models: list[str], prefix: str
) -> None:
    """One config for the four baselines, one per PF variant, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    baselines = {**base, "name": f"{prefix}-baselines", "train": train}
    baselines["models"] = ["ns", "ls", "jm", "bea"]
    (folder / "baselines.yaml").write_text(dump(baselines))
    for name, extra in variants.items():
        config = {**base, "name": f"{prefix}-{name}", "train": {**train, **extra}}
        config["models"] = pf_models
        (folder / f"pf-{name}.yaml").write_text(dump(config))


def dump(config: dict) -> str:
    """The YAML of ``config``, its flat ``train:`` split into model:, optim: and train:."""
    split, _ = migrate_legacy_train(config, "make_variants")
    return yaml.safe_dump(split, sort_keys=False)


def grid_base() -> tuple[dict, dict]:
    """The paper grid's config (``paper-v1.yaml``) under zero-shot selection, checked every 100
    steps; returns (everything but ``train`` and ``models``, ``train``)."""
    paper = yaml.safe_load((CONFIGS / "paper-v1.yaml").read_text())
    paper = {k: v for k, v in paper.items() if k not in ("name", "models")}
    model, optim = paper.pop("model"), paper.pop("optim")
    hypernet, guide = model.pop("hypernet"), model.pop("guide")  # flat again, as TRAIN is
    flat = {**model, **hypernet, "hypernet": hypernet["name"], **guide, "guide": guide["name"]}
    flat.pop("name")
    train = {**flat, **optim, **paper.pop("train"), "eval_every": 100}
    return {**paper, "selection": GRID_SELECTION}, train


def main() -> None:
    write_study(HERE, BASE, TRAIN, VARIANTS, ["pf-d"], "zs")
    base, train = grid_base()
    variants = {name: VARIANTS[name] for name in GRID_VARIANTS} | GRID_EXTRA
    write_study(HERE / "grid", base, train, variants, ["pf-d", "pf-lr"], "zs-grid")


if __name__ == "__main__":
    main()

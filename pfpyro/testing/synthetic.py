"""A synthetic world drawn from the generative model itself, where the truth is known.

Tasks and languages get vectors t_i, l_j ~ N(0, I_h); a random hypernetwork (linear by default,
so that a handful of seen pairs can identify it) gives θ_ij ~ N(f_psi, diag f_phi); words are
x ~ N(0, I_e) and labels y ~ softmax(W_ij x + b_ij). The oracle that knows θ_ij bounds every
model's accuracy, and a model that ignores the language shows what factorization adds.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair
from pfpyro.model.heads import SoftmaxHead
from pfpyro.model.hypernet import HyperNetwork


@dataclass
class SyntheticWorld:
    """Everything drawn: latents, the true θ of every pair, and data for each pair."""

    tasks: tuple[str, ...]
    langs: tuple[str, ...]
    num_classes: dict[str, int]
    feature_dim: int
    t: Tensor  # [n, h]
    l: Tensor  # [m, h]
    theta: dict[Pair, Tensor]  # [d] per pair
    head: SoftmaxHead
    hypernet: HyperNetwork  # the true f_psi, f_phi (for checks that hold them fixed)
    train: dict[Pair, PairTensors] = field(default_factory=dict)
    dev: dict[Pair, PairTensors] = field(default_factory=dict)
    test: dict[Pair, PairTensors] = field(default_factory=dict)

    def pairs(self) -> list[Pair]:
        return [(task, lang) for task in self.tasks for lang in self.langs]

    def oracle_probs(self, pair: Pair, features: Tensor) -> Tensor:
        """p(y | x, θ_ij) under the true θ_ij: the best any model can do."""
        return self.head.logits(self.theta[pair], features, self.num_classes[pair[0]]).softmax(-1)


def _draw_split(
    head: SoftmaxHead,
    theta: Tensor,
    classes: int,
    sentences: int,
    length: int,
    gen: torch.Generator,
) -> PairTensors:
    features = torch.randn(sentences, length, head.feature_dim, generator=gen)
    probs = head.logits(theta, features, classes).softmax(-1)
    labels = torch.multinomial(probs.reshape(-1, classes), 1, generator=gen).reshape(
        sentences, length
    )
    mask = torch.ones(sentences, length, dtype=torch.bool)
    return PairTensors(features.half(), labels, mask)


def make_world(
    num_tasks: int = 4,
    num_langs: int = 6,
    *,
    num_classes: int = 4,
    feature_dim: int = 8,
    latent_dim: int = 3,
    hidden_dims: tuple[int, ...] = (),
    weight_scale: float = 3.0,
    theta_variance: float = 1e-3,
    sentences: tuple[int, int, int] = (60, 20, 40),
    length: int = 12,
    seed: int = 0,
) -> SyntheticWorld:
    """Draw a world of ``num_tasks`` × ``num_langs`` pairs with train/dev/test data for each.

    ``weight_scale`` multiplies the random hypernetwork's mean layer so that labels depend
    strongly on θ (a confident oracle); ``theta_variance`` is f_phi, constant.
    """
    gen = torch.Generator().manual_seed(seed)
    tasks = tuple(f"task{i}" for i in range(num_tasks))
    langs = tuple(f"lang{j}" for j in range(num_langs))
    classes = dict.fromkeys(tasks, num_classes)
    head = SoftmaxHead(feature_dim, num_classes)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        hypernet = HyperNetwork(latent_dim, head.num_params, hidden_dims, theta_variance)
    with torch.no_grad():
        hypernet.mean.weight.mul_(weight_scale)
        t = torch.randn(num_tasks, latent_dim, generator=gen)  # t_i ~ N(0, I)
        l = torch.randn(num_langs, latent_dim, generator=gen)  # l_j ~ N(0, I)
        world = SyntheticWorld(tasks, langs, classes, feature_dim, t, l, {}, head, hypernet)
        for i, task in enumerate(tasks):
            for j, lang in enumerate(langs):
                loc, variance = hypernet(t[i], l[j])
                theta = loc + variance.sqrt() * torch.randn(loc.shape, generator=gen)
                world.theta[task, lang] = theta
                for split, count in zip(("train", "dev", "test"), sentences, strict=True):
                    data = _draw_split(head, theta, num_classes, count, length, gen)
                    getattr(world, split)[task, lang] = data
    return world


def make_shared_effect_world(
    num_tasks: int = 2,
    num_langs: int = 6,
    *,
    num_classes: int = 4,
    feature_dim: int = 8,
    latent_dim: int = 2,
    rank: int = 2,
    weight_scale: float = 3.0,
    effect_scale: float = 1.5,
    shift: bool = True,
    sentences: tuple[int, int, int] = (60, 20, 60),
    length: int = 12,
    seed: int = 0,
) -> SyntheticWorld:
    """A world whose languages act on the features the same way for every task: pair (i, j)
    labels x by W_iᵀ (x + V diag(a(l_j)) Uᵀ x + c(l_j)) + b_i (docs/model.md §5), drawn with
    the ``adapter`` hypernetwork itself, its parts random (``effect_scale`` sizes U, a and c).
    What a language does is then the same in every task, so it can be learnt from one task and
    carried to another: the identification argument for a shared language effect. ``shift``
    False draws no c(l): a shift alone is not identified across tasks without a language seen
    in both (docs/model.md §5)."""
    from pfpyro.model.adapter import LanguageAdapterHyperNetwork

    gen = torch.Generator().manual_seed(seed)
    tasks = tuple(f"task{i}" for i in range(num_tasks))
    langs = tuple(f"lang{j}" for j in range(num_langs))
    classes = dict.fromkeys(tasks, num_classes)
    head = SoftmaxHead(feature_dim, num_classes)
    widths = [head.params_for(num_classes)] * num_tasks
    truth = LanguageAdapterHyperNetwork(
        latent_dim, widths, feature_dim=feature_dim, rank=rank, task_offset=False
    )
    with torch.no_grad():
        for base in truth.base:
            base.copy_(weight_scale * torch.randn(base.shape, generator=gen) / feature_dim**0.5)
        truth.down.copy_(effect_scale * torch.randn(truth.down.shape, generator=gen))
        truth.up.copy_(torch.randn(truth.up.shape, generator=gen) / feature_dim**0.5)
        truth.gates.weight.copy_(torch.randn(truth.gates.weight.shape, generator=gen))
        truth.gates.bias.zero_()
        drawn = torch.randn(truth.shift.weight.shape, generator=gen)
        truth.shift.weight.copy_(effect_scale * drawn if shift else torch.zeros_like(drawn))
        t = torch.randn(num_tasks, latent_dim, generator=gen)
        l = torch.randn(num_langs, latent_dim, generator=gen)
        world = SyntheticWorld(tasks, langs, classes, feature_dim, t, l, {}, head, truth)
        for i, task in enumerate(tasks):
            for j, lang in enumerate(langs):
                theta, _ = truth(t[i], l[j], i)
                world.theta[task, lang] = theta
                for split, count in zip(("train", "dev", "test"), sentences, strict=True):
                    data = _draw_split(head, theta, num_classes, count, length, gen)
                    getattr(world, split)[task, lang] = data
    return world


def train_on_world(world, seen: list[Pair], max_steps: int, eval_every: int, out_dir=None):
    """A small PF run on ``world``'s ``seen`` pairs (h = 3, the linear shared hypernetwork,
    lr 0.02, one thread), as the tests that need a trained posterior fit it."""
    from pfpyro.config import ModelConfig, OptimConfig, TrainConfig
    from pfpyro.infer import train

    torch.set_num_threads(1)
    config = TrainConfig(
        max_steps=max_steps,
        eval_every=eval_every,
        batch_size=10,
        seed=0,
        progress=False,
        optim=OptimConfig(lr=0.02),
    )
    return train(
        {p: world.train[p] for p in seen},
        {p: world.dev[p] for p in seen},
        config,
        model=ModelConfig(latent_dim=3, hypernet={"name": "shared", "hidden_dims": []}),
        tasks=world.tasks,
        langs=world.langs,
        num_classes=world.num_classes,
        out_dir=out_dir,
    )


class HashEncoder:
    """Word features drawn from each word's hash, N(0, I) of width ``feature_dim``: the same
    word always gets the same vector. Stands in for a run's encoder (``FittedPosterior.
    encoder``) in tests of the commands that encode words (predict, suggest, update)."""

    def __init__(self, feature_dim: int) -> None:
        self.feature_dim = feature_dim

    def encode(self, words) -> list[np.ndarray]:
        """[n_words, e] fp16 features per sentence, as :class:`pfpyro.encode.WordEncoder`."""
        rows = []
        for sentence in words:
            seeds = [zlib.crc32(w.encode()) for w in sentence]
            vectors = [np.random.default_rng(s).normal(size=self.feature_dim) for s in seeds]
            rows.append(np.stack(vectors).astype(np.float16))
        return rows


def train_run_folder(
    world: SyntheticWorld, seen: list[Pair], out_dir: str | Path, max_steps: int, eval_every: int
) -> Path:
    """A small run folder as `pfpyro train` leaves one (:func:`train_on_world`: checkpoint,
    model.json; and a run.json recording the ``seen`` pairs and a stand-in encoder, for
    which the tests put a :class:`HashEncoder`), for tests of the commands that read one."""
    out = Path(out_dir)
    train_on_world(world, seen, max_steps=max_steps, eval_every=eval_every, out_dir=out)
    record = {"config": {"encoder": {"name": "fake"}}, "seen": [list(p) for p in seen]}
    (out / "run.json").write_text(json.dumps(record), encoding="utf-8")
    return out

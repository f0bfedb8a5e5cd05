"""A data-dependent prior, added without editing pfpyro: languages of one family share a centre.

The paper's prior draws every language vector from N(0, I). This one reads data about the
languages: l_j ~ N(μ_f(j), I), where f(j) is language j's URIEL family and each family's
centre μ_f is learned with the hypernetwork (empirical Bayes through the ELBO), so a language
with little data starts from its relatives. t_i ~ N(0, I) as in the paper.

A prior subclasses :class:`pfpyro.model.priors.LatentPrior` and is registered by name. Because
it needs data about the languages, it *declares* so (``needs_language_table = True``, see
:mod:`pfpyro.model.capabilities`) and says how to complete its arguments from the run's
language table (``complete_args``): the pipeline checks every language's URIEL code before any
work and fills ``families`` in, which then travel in ``model.json``. Nothing in pfpyro names it.

Run it: ``python docs/examples/family_prior.py`` (trains on a synthetic world).

References: Ponti et al. (2021), TACL 9, §2 and footnote 6 (languages without data).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import pyro.distributions as dist
import torch

from pfpyro.config import ModelConfig, OptimConfig
from pfpyro.data.catalog import LanguageTable
from pfpyro.infer import TrainConfig, TrainResult, train
from pfpyro.model import register
from pfpyro.model.priors import LatentPrior, standard_normal
from pfpyro.testing.synthetic import make_world


# --8<-- [start:prior]
@register("prior", "family")
class FamilyPrior(LatentPrior):
    """p(t) = N(0, I); p(l_j) = N(μ_f(j), I), one learned centre per language family."""

    #: The pipeline checks each language's URIEL code and calls complete_args.
    needs_language_table = True

    @classmethod
    def complete_args(
        cls, args: Mapping[str, Any], langs: Sequence[str], language_table: LanguageTable | None
    ) -> dict[str, Any]:
        """``args`` with each language's URIEL family, unless the config gives them."""
        from pfpyro.data.uriel import language_family

        if "families" in args:
            return dict(args)
        families = {lang: language_family(lang, language_table) for lang in langs}
        return {**args, "families": families}

    def __init__(
        self,
        tasks: Sequence[str],
        langs: Sequence[str],
        latent_dim: int,
        *,
        families: Mapping[str, str],
    ) -> None:
        super().__init__(tasks, langs, latent_dim)
        names = sorted({families[lang] for lang in self.langs})
        index = [names.index(families[lang]) for lang in self.langs]
        self.family_index = torch.nn.Buffer(torch.tensor(index))
        self.centres = torch.nn.Parameter(torch.zeros(len(names), latent_dim))  # μ_f

    def task_prior(self) -> dist.Distribution:
        return standard_normal(self.latent_dim, self.anchor).expand([len(self.tasks)])

    def language_prior(self) -> dist.Distribution:
        return dist.Normal(self.centres[self.family_index], 1.0).to_event(1)


# --8<-- [end:prior]


def train_synthetic(max_steps: int = 200, seed: int = 0) -> TrainResult:
    """Train PF with the family prior on a synthetic world whose four languages fall into two
    families (given here: synthetic languages have no URIEL code)."""
    world = make_world(num_tasks=2, num_langs=4, feature_dim=8, latent_dim=3, seed=seed)
    heldout = [("task0", "lang1"), ("task1", "lang3")]
    seen = [pair for pair in world.pairs() if pair not in heldout]
    families = {"lang0": "a", "lang1": "a", "lang2": "b", "lang3": "b"}
    model = ModelConfig(
        latent_dim=3,
        prior={"name": "family", "families": families},
        hypernet={"name": "shared", "hidden_dims": [16]},
    )
    config = TrainConfig(
        batch_size=8,
        optim=OptimConfig(lr=0.03),
        max_steps=max_steps,
        eval_every=100,
        log_every=25,
        seed=seed,
        progress=False,
    )
    return train(
        {pair: world.train[pair] for pair in seen},
        {pair: world.dev[pair] for pair in seen},
        config,
        model=model,
        tasks=world.tasks,
        langs=world.langs,
        num_classes=world.num_classes,
    )


def build_argparse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="SVI steps (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(args: Sequence[str] | None = None) -> int:
    ns = build_argparse().parse_args(args)
    result = train_synthetic(max_steps=ns.steps, seed=ns.seed)
    centres = result.factorization.prior.centres.detach()
    print(f"best dev score {result.best_score:.3f}; family centres {centres.tolist()}")
    # --8<-- [start:complete]
    args = FamilyPrior.complete_args({}, ["fi", "et", "tr"], None)  # the shipped table
    print(args["families"])  # fi and et share a family (Uralic); tr is Turkic
    # --8<-- [end:complete]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

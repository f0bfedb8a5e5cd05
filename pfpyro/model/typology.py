"""A typology prior: language vectors centred on a learned map of their URIEL vectors.

    t_i ~ N(0, I_h)                       (the paper's)
    l_j ~ N(A z_j + b, σ² I_h)            z_j: language j's URIEL vector, reduced (below)

The paper (§4.1, footnote 6) leaves a language with no labelled data for any task without a
posterior. Under this prior such a language still has one: q(l_j) is drawn to p(l_j | u_j),
whose centre A z_j + b is learned from the languages that have data, so every task of that
language gets a posterior predictive. A, b and σ are learned with the hypernetwork (empirical
Bayes through the ELBO). They start at A = 0, b = 0, σ = 1: training begins at the paper's
N(0, I).

URIEL's k-NN vectors (lang2vec's ``syntax_knn+phonology_knn+inventory_knn``: 289 binary
features) outnumber the languages of any run, so A would be free to fit each seen language's
vector exactly. The prior therefore reads ``z_j``: the vectors centred over the model's
languages and projected on their first ``components`` principal directions (scaled to unit
variance), computed at construction from ``vectors`` alone (signs fixed, so that a rebuilt
model gets the same projection). The vectors themselves are an argument of the component,
saved in ``model.json``: a run rebuilds without lang2vec. The prior declares that it needs a
language table (``needs_language_table``); the pipeline then has :meth:`TypologyPrior.complete_args`
fill the vectors in from the catalog's language table when a config names the prior without
them (:func:`pfpyro.pipeline.fit.with_language_data`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.nn import PyroParam
from torch import Tensor, nn

from pfpyro.data.catalog import LanguageTable
from pfpyro.data.uriel import FEATURE_SET, uriel_vector
from pfpyro.errors import ConfigError
from pfpyro.model.priors import LatentPrior, standard_normal
from pfpyro.model.registry import register

DEFAULT_COMPONENTS = 8


def principal_scores(vectors: Tensor, components: int) -> Tensor:
    """[m, k] scores of the rows of ``vectors`` [m, u] on their first k = min(components,
    rank) principal directions, each scaled to unit variance over the rows; each direction's
    sign makes its largest-magnitude loading positive."""
    centred = vectors - vectors.mean(0)
    _, singular, directions = torch.linalg.svd(centred, full_matrices=False)
    keep = int(min(components, (singular > 1e-5 * singular.max().clamp_min(1e-30)).sum()))
    directions = directions[:keep]
    largest = directions.abs().argmax(1)
    signs = directions.gather(1, largest[:, None]).sign()
    scores = centred @ (directions * signs).T
    return scores / scores.std(0, unbiased=False).clamp_min(1e-12)


@register("prior", "typology")
class TypologyPrior(LatentPrior):
    """p(t) = N(0, I); p(l_j) = N(A z_j + b, σ² I), z_j from language j's URIEL vector."""

    #: Each language's URIEL code is read from the run's language table (checked before any
    #: work), and :meth:`complete_args` turns it into the prior's ``vectors``.
    needs_language_table = True

    @classmethod
    def complete_args(
        cls, args: Mapping[str, Any], langs: Sequence[str], language_table: LanguageTable | None
    ) -> dict[str, Any]:
        """``args`` with, unless given, the URIEL vector of each of ``langs`` (the prior's
        ``feature_set``, by default NS's) from ``language_table``: they then travel in
        model.json."""
        if "vectors" in args:
            return dict(args)
        feature_set = args.get("feature_set", FEATURE_SET)
        vectors = {lang: uriel_vector(lang, feature_set, language_table).tolist() for lang in langs}
        return {**args, "feature_set": feature_set, "vectors": vectors}

    def __init__(
        self,
        tasks: Sequence[str],
        langs: Sequence[str],
        latent_dim: int,
        *,
        vectors: Mapping[str, Sequence[float]],
        components: int = DEFAULT_COMPONENTS,
        feature_set: str | None = None,
    ) -> None:
        super().__init__(tasks, langs, latent_dim)
        missing = [lang for lang in self.langs if lang not in vectors]
        if missing:
            raise ConfigError(
                f"typology prior: no URIEL vector for {', '.join(missing)} (the prior's "
                "'vectors' argument maps every language of the model to its vector)"
            )
        widths = {len(vectors[lang]) for lang in self.langs}
        if len(widths) != 1:
            raise ConfigError(f"typology prior: the URIEL vectors differ in length {widths}")
        if components < 1:
            raise ConfigError(f"typology prior: components must be >= 1, got {components}")
        self.feature_set = feature_set  # where the vectors came from (a record, not used)
        table = torch.tensor([list(vectors[lang]) for lang in self.langs], dtype=torch.float32)
        scores = principal_scores(table, components) if len(self.langs) > 1 else table[:, :0]
        self.scores = nn.Buffer(scores)  # z_j, [m, k]
        self.weight = nn.Parameter(torch.zeros(latent_dim, scores.shape[1]))  # A
        self.bias = nn.Parameter(torch.zeros(latent_dim))  # b
        self.scale = PyroParam(torch.tensor(1.0), constraint=constraints.positive)  # σ

    def task_prior(self) -> dist.Distribution:
        return standard_normal(self.latent_dim, self.anchor).expand([len(self.tasks)])

    def language_centres(self) -> Tensor:
        """A z_j + b for every language, [m, h]."""
        return self.scores @ self.weight.T + self.bias

    def language_prior(self) -> dist.Distribution:
        return dist.Normal(self.language_centres(), self.scale).to_event(1)


__all__ = ["DEFAULT_COMPONENTS", "TypologyPrior", "principal_scores"]

"""Heads: how a sampled parameter vector theta turns word features into a label distribution.

The paper's head is a softmax classifier, theta = vec(W) ⊕ b with W ∈ R^{e×c}, b ∈ R^c
(§2, step 3). A new head (another likelihood, a small generated MLP, ...) subclasses
:class:`Head` and is passed to :class:`~pfpyro.model.factorization.ParameterFactorization`.
"""

from __future__ import annotations

import pyro.distributions as dist
from torch import Tensor


class Head:
    """The interface: how many parameters the head needs, and the distribution they give."""

    def __init__(self, feature_dim: int, max_classes: int) -> None:
        self.feature_dim = feature_dim
        self.max_classes = max_classes

    @property
    def num_params(self) -> int:
        """d in the paper: the width of theta."""
        raise NotImplementedError

    def logits(self, theta: Tensor, features: Tensor, num_classes: int) -> Tensor:
        """Unnormalised scores [..., B, T, num_classes] of the task's classes."""
        raise NotImplementedError

    def distribution(self, theta: Tensor, features: Tensor, num_classes: int) -> dist.Distribution:
        """p(y | x, theta) per word, batch shape [..., B, T]."""
        return dist.Categorical(logits=self.logits(theta, features, num_classes))


class SoftmaxHead(Head):
    """softmax(W x + b): d = e·c + c. A task with fewer than c classes uses the first
    ``num_classes`` columns; the others are masked out of its softmax, not given mass."""

    @property
    def num_params(self) -> int:
        return self.feature_dim * self.max_classes + self.max_classes

    def unpack(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """theta [..., d] -> W [..., e, c], b [..., c]."""
        e, c = self.feature_dim, self.max_classes
        weight = theta[..., : e * c].reshape(*theta.shape[:-1], e, c)
        return weight, theta[..., e * c :]

    def logits(self, theta: Tensor, features: Tensor, num_classes: int) -> Tensor:
        weight, bias = self.unpack(theta)
        weight, bias = weight[..., :num_classes], bias[..., :num_classes]
        # theta's batch dims are [..., 1, 1] (particles, then the sentence and word dims), and
        # features are [B, T, e]: (x W) then broadcasts to [..., B, T, c].
        scores = features.unsqueeze(-2) @ weight  # [..., B, T, 1, c]
        return scores.squeeze(-2) + bias

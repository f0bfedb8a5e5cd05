"""Heads: how a sampled parameter vector theta turns word features into a label distribution.

The paper's head is a softmax classifier, theta = vec(W) ⊕ b with W ∈ R^{e×c}, b ∈ R^c
(§2, step 3). A new head (another likelihood, a small generated MLP, ...) subclasses
:class:`Head` and is registered by name (:func:`pfpyro.model.registry.register`), so a config
and ``model.json`` can name it.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor, nn

from pfpyro.model.registry import register


class Head:
    """The interface: how many parameters the head needs, and the distribution they give."""

    def __init__(self, feature_dim: int, max_classes: int) -> None:
        self.feature_dim = feature_dim
        self.max_classes = max_classes

    @property
    def num_params(self) -> int:
        """d in the paper: the width of theta."""
        raise NotImplementedError

    def params_for(self, num_classes: int) -> int:
        """The width of a θ that serves a task of ``num_classes`` labels (what a task-blocked
        hypernetwork generates for it); by default the padded width, ``num_params``."""
        return self.num_params

    def logits(self, theta: Tensor, features: Tensor, num_classes: int) -> Tensor:
        """Unnormalised scores [..., B, T, num_classes] of the task's classes."""
        raise NotImplementedError

    def padded(self, theta: Tensor, num_classes: int, fill: float) -> Tensor:
        """A task's own θ (width ``params_for(num_classes)``) in the padded layout of width
        ``num_params``, the extra slots at ``fill``: how a step over several pairs stacks the
        θ of a task-blocked hypernetwork's tasks (:meth:`ParameterFactorization.model_pairs`)."""
        raise NotImplementedError(f"{type(self).__name__} has no padded layout")

    def distribution(self, theta: Tensor, features: Tensor, num_classes: int) -> dist.Distribution:
        """p(y | x, theta) per word, batch shape [..., B, T]."""
        return dist.Categorical(logits=self.logits(theta, features, num_classes))


@register("head", "softmax")
class SoftmaxHead(Head):
    """softmax(W x + b): d = e·c + c. A task with fewer than c classes uses the first
    ``num_classes`` columns; the others are masked out of its softmax, not given mass."""

    @property
    def num_params(self) -> int:
        return self.feature_dim * self.max_classes + self.max_classes

    def params_for(self, num_classes: int) -> int:
        """The width of a θ that serves ``num_classes`` labels only (a task-blocked output)."""
        return self.feature_dim * num_classes + num_classes

    def padded(self, theta: Tensor, num_classes: int, fill: float) -> Tensor:
        """vec(W) ⊕ b of ``num_classes`` columns as the first columns of the padded layout."""
        weight, bias = self.unpack(theta)
        extra = self.max_classes - num_classes
        weight = nn.functional.pad(weight, (0, extra), value=fill)
        bias = nn.functional.pad(bias, (0, extra), value=fill)
        return torch.cat([weight.reshape(*weight.shape[:-2], -1), bias], dim=-1)

    def unpack(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """theta [..., d] -> W [..., e, c], b [..., c], with c = d / (e + 1): the padded
        width (``max_classes``) or a task's own (a task-blocked hypernetwork's output)."""
        e = self.feature_dim
        c = theta.shape[-1] // (e + 1)
        if c * (e + 1) != theta.shape[-1]:
            raise ValueError(f"theta of width {theta.shape[-1]} is no e·c + c for e = {e}")
        weight = theta[..., : e * c].reshape(*theta.shape[:-1], e, c)
        return weight, theta[..., e * c :]

    def logits(self, theta: Tensor, features: Tensor, num_classes: int) -> Tensor:
        weight, bias = self.unpack(theta)
        weight, bias = weight[..., :num_classes], bias[..., :num_classes]
        # theta's batch dims are [..., 1, 1] (particles or posterior samples, then the sentence
        # and word dims) and features are [B, T, e]: the logits are [..., B, T, c].
        samples = theta.shape[:-1]
        if features.dim() == 3 and all(size == 1 for size in samples[-2:]):
            # One matrix product: the words [B·T, e] times every sample's W side by side
            # [e, K·c]. Broadcasting (x W) instead would copy W once per word.
            count, (sentences, length, width) = weight[..., 0, 0].numel(), features.shape
            side_by_side = weight.reshape(count, width, num_classes).permute(1, 0, 2)
            flat = features.reshape(-1, width) @ side_by_side.reshape(width, -1)
            scores = flat.reshape(sentences, length, count, num_classes).permute(2, 0, 1, 3)
            return scores.reshape(*samples[:-2], sentences, length, num_classes) + bias
        if features.dim() == 4 and samples[-3:] == (features.shape[0], 1, 1):
            # Several pairs at once (model_pairs): features [P, B, T, e], theta [..., P, 1, 1]:
            # one batched product per pair, again without a copy of W per word.
            pairs, sentences, length, width = features.shape
            w = weight[..., 0, 0, :, :]  # [..., P, e, c]
            outer = w.shape[:-3]
            flat = features.reshape(pairs, sentences * length, width)
            scores = torch.einsum("pne,kpec->kpnc", flat, w.reshape(-1, pairs, width, num_classes))
            return scores.reshape(*outer, pairs, sentences, length, num_classes) + bias
        scores = features.unsqueeze(-2) @ weight  # [..., B, T, 1, c]
        return scores.squeeze(-2) + bias

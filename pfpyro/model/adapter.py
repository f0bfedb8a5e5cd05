"""A language effect shared by the tasks: the ``adapter`` hypernetwork (docs/model.md, §5).

The paper's partitions see one task of each language, so in a layout where each task reads
l_j through networks of its own, nothing ties what l_j learns from one task to the other: the
zero-shot θ of an unseen pair is set by the initialisation, not by data. Here the language acts
on the *features*, the same way for every task, and each task's classifier reads the adapted
features (in the spirit of MAD-X, Pfeiffer et al. 2020, and Hyper-X, Üstün et al. 2022):

    W_i, b_i = B_i + g_i(t_i)                                  task i's classifier   (5.1)
    x'      = x + s · (V diag(a(l_j)) Uᵀ x + c(l_j))           language j's features (5.2)
    logits  = W_iᵀ x' + b_i                                                          (5.3)

with a(l) ∈ R^r and c(l) ∈ R^e linear in l and shared by the tasks, U, V ∈ R^{e×r}, and s the
effect's scale (``offset_scale``). As the head is linear, (5.3) is the softmax classifier with

    f_psi(t_i, l_j) = vec(W_i + s · U diag(a(l_j)) Vᵀ W_i) ⊕ (b_i + s · W_iᵀ c(l_j)),

which this module returns, so θ_ij ~ N(f_psi, diag f_phi) is the paper's step (2) as before
and prediction, model averaging and few-shot updates need nothing new. f_phi is each task's
softplus layer over t ⊕ l ⊕ (t − l) ⊕ (t ⊙ l). B_i are point estimates (the JM anchor,
``model.init: jm``); g_i, U and c start at zero, so at step 0 θ_ij = B_i for every language:
the joint multilingual classifier, which s = 0 keeps for good.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pyro.nn import PyroModule
from torch import Tensor, nn

from pfpyro.errors import ConfigError
from pfpyro.model.hypernet import combine, init_variance_layer
from pfpyro.model.registry import register


@register("hypernet", "adapter")
class LanguageAdapterHyperNetwork(PyroModule):
    """Per-task base classifiers B_i with a task offset g_i(t_i), read through a low-rank
    feature adapter and shift generated from l_j and shared by every task (eqs. 5.1–5.3).

    ``feature_dim`` is the head's e (the pipeline supplies it: this network declares
    ``needs_feature_dim``); ``rank`` is r; ``offset_scale`` is s (0: θ_ij = B_i + g_i(t_i),
    no language effect); ``task_offset`` switches g_i on. Written for the softmax head's
    θ = vec(W) ⊕ b."""

    task_blocked = True  # each task's θ has its own width (e + 1) · c_i
    supports_pairs_per_step = True  # padded to the head's widest layout (model_pairs)
    needs_feature_dim = True
    with_base = True

    def __init__(
        self,
        latent_dim: int,
        out_dims: Sequence[int],
        *,
        feature_dim: int,
        rank: int = 16,
        offset_scale: float = 1.0,
        task_offset: bool = True,
        init_variance: float = 1e-3,
    ) -> None:
        if rank < 1:
            raise ConfigError(f"adapter rank must be at least 1, got {rank}")
        if not offset_scale >= 0:
            raise ConfigError(f"offset_scale must be non-negative, got {offset_scale}")
        if not init_variance > 0:
            raise ConfigError(f"init_variance must be positive, got {init_variance}")
        super().__init__()
        e = int(feature_dim)
        self.feature_dim, self.rank = e, int(rank)
        self.out_dims = tuple(int(d) for d in out_dims)
        self.classes = tuple(d // (e + 1) for d in self.out_dims)
        if any(c * (e + 1) != d for c, d in zip(self.classes, self.out_dims, strict=True)):
            raise ConfigError(
                f"the adapter hypernetwork reads θ = vec(W) ⊕ b of a softmax head over {e} "
                f"features; widths {list(self.out_dims)} are not (e + 1)·c"
            )
        self.offset_scale = float(offset_scale)
        self.base = nn.ParameterList(nn.Parameter(torch.zeros(d)) for d in self.out_dims)
        # (5.1) g_i(t_i): zero at initialisation, so θ starts at the base.
        self.task_offset = (
            nn.ModuleList(_zero_linear(latent_dim, d) for d in self.out_dims)
            if task_offset
            else None
        )
        # (5.2) the language effect, shared by the tasks: a(l), c(l), U (zero) and V.
        self.gates = nn.Linear(latent_dim, self.rank)
        self.shift = _zero_linear(latent_dim, e)
        self.down = nn.Parameter(torch.zeros(e, self.rank))  # U
        self.up = nn.Parameter(torch.randn(e, self.rank) / e**0.5)  # V
        self.variance = nn.ModuleList(nn.Linear(4 * latent_dim, d) for d in self.out_dims)
        for layer in self.variance:
            init_variance_layer(layer, init_variance)

    def task_classifier(self, t: Tensor, task: int) -> tuple[Tensor, Tensor]:
        """(W_i [..., e, c], b_i [..., c]) of eq. 5.1."""
        theta = self.base[task]
        if self.task_offset is not None:
            theta = theta + self.task_offset[task](t)
        e, c = self.feature_dim, self.classes[task]
        return theta[..., : e * c].reshape(*theta.shape[:-1], e, c), theta[..., e * c :]

    def forward(self, t: Tensor, l: Tensor, task: int | None = None) -> tuple[Tensor, Tensor]:
        """(f_psi, f_phi) of task ``task`` in language l: eq. 5.3 folded into θ's mean."""
        if task is None:
            raise ValueError("the adapter hypernetwork needs the task's index")
        # t may be one task's vector beside several languages' ([..., 1, h] and [..., n, h]):
        # W_i and Vᵀ W_i are then made once, and broadcast over the languages.
        shape = torch.broadcast_shapes(t.shape[:-1], l.shape[:-1])
        weight, bias = self.task_classifier(t, task)
        if self.offset_scale:
            gates = self.gates(l)  # a(l_j) [..., r]
            projected = torch.einsum("er,...ec->...rc", self.up, weight)  # Vᵀ W_i
            adapted = torch.einsum("er,...r,...rc->...ec", self.down, gates, projected)
            shifted = torch.einsum("...e,...ec->...c", self.shift(l), weight)  # W_iᵀ c(l_j)
            weight = weight + self.offset_scale * adapted
            bias = bias + self.offset_scale * shifted
        weight = weight.expand(*shape, *weight.shape[-2:])
        bias = bias.expand(*shape, bias.shape[-1])
        mean = torch.cat([weight.reshape(*weight.shape[:-2], -1), bias], dim=-1)
        return mean, nn.functional.softplus(self.variance[task](combine(t, l)))

    def zero_offsets(self) -> None:
        """g_i and the language effect's U, c at zero: θ_ij = B_i (the JM anchor)."""
        with torch.no_grad():
            for layer in [*(self.task_offset or ()), self.shift]:
                layer.weight.zero_()
                layer.bias.zero_()
            self.down.zero_()


def _zero_linear(width_in: int, width_out: int) -> nn.Linear:
    layer = nn.Linear(width_in, width_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


__all__ = ["LanguageAdapterHyperNetwork"]

"""The hypernetwork: f_psi (mean) and f_phi (variance) of the classifier's parameters.

Paper §2, step (2): both networks read t ⊕ l ⊕ (t − l) ⊕ (t ⊙ l) (Stolee and Patterson, 2019),
share every layer but the last (to save parameters), and end in a linear layer (f_psi, any real
value) and a softplus layer (f_phi, a positive **variance**), respectively.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pyro.nn import PyroModule
from torch import Tensor, nn

from pfpyro.errors import ConfigError
from pfpyro.model.positive import inverse_softplus
from pfpyro.model.registry import register

PAPER_HIDDEN_DIMS = (400, 768, 768, 768, 768)


def combine(t: Tensor, l: Tensor) -> Tensor:
    """The hypernetwork's input t ⊕ l ⊕ (t − l) ⊕ (t ⊙ l), of width 4h."""
    t, l = torch.broadcast_tensors(t, l)
    return torch.cat([t, l, t - l, t * l], dim=-1)


def shared_layers(latent_dim: int, hidden_dims: Sequence[int]) -> tuple[nn.Sequential, int]:
    """The ReLU layers that f_psi and f_phi share, reading the 4h-wide combined input; and
    the width of their output."""
    layers: list[nn.Module] = []
    width = 4 * latent_dim
    for hidden in hidden_dims:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers), width


def _checked(hidden_dims: Sequence[int], init_variance: float) -> tuple[int, ...]:
    """``hidden_dims`` as a tuple; ConfigError on a width or variance no network can have."""
    if any(int(h) < 1 for h in hidden_dims):
        raise ConfigError(f"hidden_dims must be positive, got {list(hidden_dims)}")
    if not init_variance > 0:
        raise ConfigError(f"init_variance must be positive, got {init_variance}")
    return tuple(int(h) for h in hidden_dims)


def init_variance_layer(layer: nn.Linear, init_variance: float) -> None:
    """f_phi's last layer (before its softplus) starts at about ``init_variance`` everywhere:
    small weights, the bias at softplus⁻¹(init_variance)."""
    with torch.no_grad():
        layer.weight.mul_(0.01)
        layer.bias.fill_(inverse_softplus(init_variance))


class HyperNetwork(PyroModule):
    """Maps a task vector and a language vector to (f_psi, f_phi), each of width ``out_dim``.

    ``hidden_dims`` are the shared ReLU layers (the paper: 400, then 768 for the inner layers,
    six layers in all with the output layer); ``()`` gives a linear map, as in the synthetic
    world. ``init_variance`` is f_phi's value at initialisation (through the softplus bias), so
    that early samples of theta are not swamped by noise.
    """

    def __init__(
        self,
        latent_dim: int,
        out_dim: int | Sequence[int],
        hidden_dims: Sequence[int] = PAPER_HIDDEN_DIMS,
        init_variance: float = 1e-3,
    ) -> None:
        hidden_dims = _checked(hidden_dims, init_variance)
        out_dim = out_dim if isinstance(out_dim, int) else max(out_dim)
        super().__init__()
        self.shared, width = shared_layers(latent_dim, hidden_dims)
        self.mean = nn.Linear(width, out_dim)  # f_psi's last layer
        self.variance = nn.Linear(width, out_dim)  # f_phi's last layer, before the softplus
        init_variance_layer(self.variance, init_variance)

    def forward(self, t: Tensor, l: Tensor, task: int | None = None) -> tuple[Tensor, Tensor]:
        """(f_psi(t, l), f_phi(t, l)): the mean and the diagonal variance of theta.

        ``task`` (the task's index) is unused here: the paper's network reads the task only
        through t. Task-aware networks (:class:`TaskBlockedHyperNetwork`) need it.
        """
        hidden = self.shared(combine(t, l))
        return self.mean(hidden), nn.functional.softplus(self.variance(hidden))


@register("hypernet", "blocked")
class TaskBlockedHyperNetwork(PyroModule):
    """A hypernetwork whose outputs are blocked by task: task i owns its own θ (width
    ``out_dims[i]``), so no output slot is shared by labels of different tasks.

    The paper's network pads every task to the largest label set and shares the slots, so the
    language path moves POS column k and NER column k together although they mean unrelated
    labels. Here the shared layers read t ⊕ l ⊕ (t − l) ⊕ (t ⊙ l) as in the paper, and each
    task has its own last layers (the ``blocked`` layout). In the ``residual`` layout
    (:class:`ResidualHyperNetwork`, ``with_base``) each task also has a point-estimated base
    classifier and the network gives only a language-dependent offset, scaled by
    ``offset_scale``:  f_psi(t_i, l_j) = base_i + offset_scale · g_i(t_i, l_j).  A zero offset
    is the joint multilingual classifier (JM) of the task, so the language path is a
    correction to it whose strength ``offset_scale`` (and the decay on g) sets.
    """

    #: Each task's θ has its own width: a step over several pairs pads them to the head's
    #: widest layout (``ParameterFactorization.blocked_pair_params``); no new task by extension.
    task_blocked = True
    supports_pairs_per_step = True
    #: Each task also has a point-estimated base classifier (the residual layout).
    with_base = False

    def __init__(
        self,
        latent_dim: int,
        out_dims: Sequence[int],
        hidden_dims: Sequence[int] = PAPER_HIDDEN_DIMS,
        init_variance: float = 1e-3,
    ) -> None:
        hidden_dims = _checked(hidden_dims, init_variance)
        super().__init__()
        self.shared, width = shared_layers(latent_dim, hidden_dims)
        self.out_dims = tuple(int(d) for d in out_dims)
        self.offset_scale = 1.0
        self.mean = nn.ModuleList(nn.Linear(width, d) for d in self.out_dims)
        self.variance = nn.ModuleList(nn.Linear(width, d) for d in self.out_dims)
        self.base = (
            nn.ParameterList(nn.Parameter(torch.zeros(d)) for d in self.out_dims)
            if self.with_base
            else None
        )
        for layer in self.variance:
            init_variance_layer(layer, init_variance)

    def forward(self, t: Tensor, l: Tensor, task: int | None = None) -> tuple[Tensor, Tensor]:
        """(f_psi, f_phi) of task ``task``'s block, each of width ``out_dims[task]``."""
        if task is None:
            raise ValueError("a task-blocked hypernetwork needs the task's index")
        hidden = self.shared(combine(t, l))
        mean = self.mean[task](hidden)
        if self.base is not None:
            mean = self.base[task] + self.offset_scale * mean
        return mean, nn.functional.softplus(self.variance[task](hidden))

    def zero_offsets(self) -> None:
        """The offset layers g_i at zero: f_psi = base_i (the residual layout's JM anchor)."""
        with torch.no_grad():
            for layer in self.mean:
                layer.weight.zero_()
                layer.bias.zero_()


# -- the other registered layouts (latent_dim, per-task θ widths, named arguments) -------------
# Classes, so that what each can do is declared on it (pfpyro.model.capabilities); "blocked" is
# TaskBlockedHyperNetwork itself.


@register("hypernet", "shared")
class SharedHyperNetwork(HyperNetwork):
    """The paper's layout: one output, as wide as the widest task's θ, shared by every task
    (a task with fewer labels uses the first columns)."""

    #: A new task uses the first columns of the shared output: ``pfpyro extend`` can add one.
    accepts_new_tasks = True


@register("hypernet", "residual")
class ResidualHyperNetwork(TaskBlockedHyperNetwork):
    """Per-task base classifiers plus a language-dependent offset scaled by ``offset_scale``;
    ``layout`` is the shared layers' ``hidden_dims`` and ``init_variance``."""

    with_base = True

    def __init__(
        self, latent_dim: int, out_dims: Sequence[int], offset_scale: float = 1.0, **layout: Any
    ) -> None:
        if not offset_scale > 0:
            raise ConfigError(f"offset_scale must be positive, got {offset_scale}")
        super().__init__(latent_dim, out_dims, **layout)
        self.offset_scale = float(offset_scale)

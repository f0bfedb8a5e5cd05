"""The hypernetwork: f_psi (mean) and f_phi (variance) of the classifier's parameters.

Paper §2, step (2): both networks read t ⊕ l ⊕ (t − l) ⊕ (t ⊙ l) (Stolee and Patterson, 2019),
share every layer but the last (to save parameters), and end in a linear layer (f_psi, any real
value) and a softplus layer (f_phi, a positive **variance**), respectively.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pyro.nn import PyroModule
from torch import Tensor, nn


def combine(t: Tensor, l: Tensor) -> Tensor:
    """The hypernetwork's input t ⊕ l ⊕ (t − l) ⊕ (t ⊙ l), of width 4h."""
    t, l = torch.broadcast_tensors(t, l)
    return torch.cat([t, l, t - l, t * l], dim=-1)


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
        out_dim: int,
        hidden_dims: Sequence[int] = (400, 768, 768, 768, 768),
        init_variance: float = 1e-3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 4 * latent_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.shared = nn.Sequential(*layers)
        self.mean = nn.Linear(width, out_dim)  # f_psi's last layer
        self.variance = nn.Linear(width, out_dim)  # f_phi's last layer, before the softplus
        with torch.no_grad():
            self.variance.weight.mul_(0.01)
            self.variance.bias.fill_(math.log(math.expm1(init_variance)))

    def forward(self, t: Tensor, l: Tensor) -> tuple[Tensor, Tensor]:
        """(f_psi(t, l), f_phi(t, l)): the mean and the diagonal variance of theta."""
        hidden = self.shared(combine(t, l))
        return self.mean(hidden), nn.functional.softplus(self.variance(hidden))

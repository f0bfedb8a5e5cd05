"""Positive values stored unconstrained: a variance or a scale is softplus(ρ) of a free ρ."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def inverse_softplus(value: float | Tensor) -> float | Tensor:
    """The ρ with softplus(ρ) = ``value`` (> 0): log(e^value − 1), for a Python float (in
    double precision) or elementwise for a tensor."""
    if isinstance(value, Tensor):
        return torch.log(torch.expm1(value))
    return math.log(math.expm1(value))


__all__ = ["inverse_softplus"]

"""Where tensors live: CUDA when there is one (or when asked), the CPU otherwise."""

from __future__ import annotations

import torch


def resolve_device(name: str | None = None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA when available; anything else is taken as given."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        from pfpyro.errors import ConfigError

        raise ConfigError(f"device {name!r} was asked for but CUDA is not available here")
    return device

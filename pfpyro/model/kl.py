"""KL(q ‖ N(0, I)) in closed form for the guides' Gaussians (paper eqs. 9–10).

With S = diag(δ²) + B Bᵀ:
  KL = ½ [ Σ_i (m_i² + δ_i² + Σ_j b_ij²) − h − ln det S ]                                (9)
  ln det S = ln det(I_k + Bᵀ diag(δ⁻²) B) + Σ_i ln δ_i²   (matrix determinant lemma)    (10)
Used by tests to check the Pyro ELBO, and by anyone who wants the KL terms logged.
"""

from __future__ import annotations

import torch
from torch import Tensor


def kl_lowrank_to_standard(loc: Tensor, cov_factor: Tensor | None, cov_diag: Tensor) -> Tensor:
    """KL(N(loc, diag(cov_diag) + F Fᵀ) ‖ N(0, I)) per row; ``cov_factor`` None is PF-d."""
    h = loc.shape[-1]
    trace = cov_diag.sum(-1) + loc.pow(2).sum(-1)  # Σ m² + Σ δ²                   (9)
    logdet = cov_diag.log().sum(-1)  # Σ ln δ²                                           (10)
    if cov_factor is not None:
        trace = trace + cov_factor.pow(2).sum((-2, -1))  # + Σ b²                  (9)
        rank = cov_factor.shape[-1]
        capacitance = torch.eye(rank, dtype=loc.dtype, device=loc.device) + (
            cov_factor.transpose(-1, -2) @ (cov_factor / cov_diag.unsqueeze(-1))
        )
        logdet = logdet + torch.linalg.slogdet(capacitance).logabsdet  # det lemma   (10)
    return 0.5 * (trace - h - logdet)

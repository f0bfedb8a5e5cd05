"""pfpyro: zero-shot learning across tasks and languages by parameter space factorization.

Ponti, Vulić, Cotterell, Parović, Reichart and Korhonen (2021), "Parameter Space Factorization
for Zero-Shot Learning across Tasks and Languages", TACL 9.
"""

__version__ = "0.1.0"


def load(run, device=None):
    """The fitted posterior of a trained run folder; see :func:`pfpyro.api.load`."""
    from pfpyro.api import load as _load

    return _load(run, device=device)

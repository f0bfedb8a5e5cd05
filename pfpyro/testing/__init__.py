"""Test oracles and synthetic worlds, for pfpyro's own tests and for users testing their own
components.

* :mod:`pfpyro.testing.reference` — the ELBO of the Pyro model and guide in plain PyTorch, to
  check ``Trace_ELBO`` against;
* :mod:`pfpyro.testing.synthetic` — a world drawn from the generative model itself, where the
  truth is known.

It sits above every other layer: nothing in pfpyro imports it.
"""

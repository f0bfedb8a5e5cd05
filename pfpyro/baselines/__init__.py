"""pfpyro.baselines."""

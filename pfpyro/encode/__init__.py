"""pfpyro.encode."""

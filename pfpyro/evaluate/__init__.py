"""pfpyro.evaluate."""

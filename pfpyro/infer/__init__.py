"""pfpyro.infer."""

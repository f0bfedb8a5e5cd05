"""pfpyro.model."""

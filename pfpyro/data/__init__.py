"""pfpyro.data."""

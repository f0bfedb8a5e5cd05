"""pfpyro.report."""

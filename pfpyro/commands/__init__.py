"""Sub-commands of the ``pfpyro`` CLI, one module per verb."""

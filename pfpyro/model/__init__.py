"""pfpyro.model: the generative model, its components and their registries.

:class:`~pfpyro.model.description.ModelDescription` names a model's components (prior,
hypernetwork, head, guide) and builds it; :func:`~pfpyro.model.registry.register` adds a
component of your own.
"""

from pfpyro.model.description import Component, ModelDescription
from pfpyro.model.registry import lookup, register, registered

__all__ = ["Component", "ModelDescription", "lookup", "register", "registered"]

"""pfpyro.model: the generative model, its components and their registries.

:class:`~pfpyro.model.description.ModelDescription` names a model's components (prior,
hypernetwork, head, guide) and builds it; :func:`~pfpyro.model.registry.register` adds a
component of your own.

Parameters live in the modules that own them (Pyro's ``module_local_params`` setting, turned on
here, before any of pfpyro's modules is built): two models in one process never share a tensor,
and a model's parameters, saved and loaded, are its ``named_parameters()``. Pyro's global
parameter store is not used. The setting is process-wide: PyroModules of your own, built in the
same process, keep their parameters in themselves too (train them with
``Trace_ELBO(...)(model, guide)`` and a torch optimiser, as pfpyro does).
"""

import pyro

pyro.settings.set(module_local_params=True)

from pfpyro.model.description import Component, ModelDescription  # noqa: E402
from pfpyro.model.registry import lookup, register, registered  # noqa: E402

__all__ = ["Component", "ModelDescription", "lookup", "register", "registered"]

"""Deprecated: the experiment runner is the package :mod:`pfpyro.pipeline` now.

``pfpyro.experiment`` re-exports the names it had, from :mod:`pfpyro.pipeline.setup`,
:mod:`pfpyro.pipeline.fit` and :mod:`pfpyro.pipeline.grid`; import them from there. The
``pfpyro experiment`` command is unchanged.
"""

from __future__ import annotations

import warnings

from pfpyro.pipeline.fit import (
    Fitted,
    PFFit,
    UnitData,
    catalog_similarity,
    fit_baseline_model,
    fit_pf,
    pf_model_config,
    source_tensors,
    unit_data,
)
from pfpyro.pipeline.fit import with_language_data as with_typology_vectors
from pfpyro.pipeline.grid import (
    FIG4_LANGUAGES,
    UNIT_COLUMNS,
    gather,
    heldout_predictions,
    run_experiment,
    run_unit,
    unit_path,
    units,
    write_reports,
)
from pfpyro.pipeline.setup import (
    Setup,
    build_partitions,
    check_before_work,
    feature_store,
    load_catalog,
    prepare,
    run_record,
    same_config,
    validation_split,
)

warnings.warn(
    "pfpyro.experiment is deprecated: import from pfpyro.pipeline.setup, pfpyro.pipeline.fit "
    "or pfpyro.pipeline.grid",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "FIG4_LANGUAGES",
    "UNIT_COLUMNS",
    "Fitted",
    "PFFit",
    "Setup",
    "UnitData",
    "build_partitions",
    "catalog_similarity",
    "check_before_work",
    "feature_store",
    "fit_baseline_model",
    "fit_pf",
    "gather",
    "heldout_predictions",
    "load_catalog",
    "pf_model_config",
    "prepare",
    "run_experiment",
    "run_record",
    "run_unit",
    "same_config",
    "source_tensors",
    "unit_data",
    "unit_path",
    "units",
    "validation_split",
    "with_typology_vectors",
    "write_reports",
]

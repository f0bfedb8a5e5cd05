"""pfpyro.infer: SVI training, checkpoints and resumption, prediction and model averaging."""

from pfpyro.infer.checkpoint import load_run
from pfpyro.infer.logging import RunLogger, read_log
from pfpyro.infer.predict import PFPredictor
from pfpyro.infer.trainer import (
    NumericalError,
    TrainConfig,
    TrainResult,
    closed_form_kl,
    evaluate_plugin,
    train,
)

__all__ = [
    "NumericalError",
    "PFPredictor",
    "RunLogger",
    "TrainConfig",
    "TrainResult",
    "closed_form_kl",
    "evaluate_plugin",
    "load_run",
    "read_log",
    "train",
]

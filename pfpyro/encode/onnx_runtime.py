"""The encoder on ONNX Runtime (``encoder.runtime: onnx``): a compiled folder in the cache,
loaded and run by ``onnxruntime`` without transformers, and without importing torch here.

Why. A one-sentence ``pfpyro predict`` spent most of its time importing transformers and
building its model (``experiments/bench/predict.py``); the exported graph loads in a fraction
of a second (its weights in an external file) and runs the same arithmetic, so its features
equal the torch encoder's to about 1e-6 before the cache's fp16 rounding.

The compiled folder, ``<cache>/onnx/<source identity>-<precision>``, holds ``model.onnx`` and
``model.onnx.data``, the tokenizer that the torch path runs (the ``tokenizers`` pipeline of
the model's fast tokenizer, saved as ``tokenizer.json``) and ``encoder.json`` (special ids,
sizes, limits). :mod:`pfpyro.encode.onnx_export` builds it from the torch encoder on first
use; it counts as complete only when its stamp names the same source identity, precision and
builder (:mod:`pfpyro.encode.built_folder`).

Start-up. What is left of a one-sentence ``pfpyro predict`` is mostly importing torch (the PF
model needs it) and building the tokenizer (a trie of 250,002 pieces for multilingual-e5-small,
most of a second). Building it in a thread while torch was imported did not help (measured,
the GIL), so it is built in line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pfpyro.encode.built_folder import stamp_matches

#: Bump when a compiled folder's contents would change for the same source and precision.
BUILDER_VERSION = 1

#: How ``precision="int8"`` is quantised here, part of the features' identity and of the
#: compiled folder's stamp (:func:`pfpyro.encode.onnx_export.feed_forward_outputs`).
ONNX_INT8_SCHEME = "onnx-int8/dynamic/per-channel/matmul-weights/ffn-output-fp32"

MODEL_FILE = "model.onnx"
META_FILE = "encoder.json"
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class EncoderMeta:
    """What :class:`~pfpyro.encode.WordEncoder` needs of a model besides its graph."""

    hidden_size: int
    num_layers: int
    limit: int  # the most subwords a sequence may hold (0: no known limit)
    prefix: list[int]
    suffix: list[int]
    unk_id: int
    pad_id: int


def compiled_dir(identity: str, precision: str, cache_dir: str | Path | None = None) -> Path:
    """Where the ONNX export of the model with folder identity ``identity`` lives."""
    from pfpyro.encode.offline import cache_root

    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    return root / "onnx" / f"{identity[:32]}-{precision}"


def compiled_stamp(identity: str, precision: str) -> dict:
    """What a compiled folder's stamp must hold."""
    scheme = ONNX_INT8_SCHEME if precision == "int8" else precision
    return {"source_identity": identity, "scheme": scheme, "builder": BUILDER_VERSION}


def is_compiled(folder: Path, identity: str, precision: str) -> bool:
    """True when ``folder`` is a complete export of this model at this precision."""
    return stamp_matches(folder, compiled_stamp(identity, precision))


class OnnxEncoder:
    """A compiled encoder folder, loaded: its session, tokenizer and :class:`EncoderMeta`."""

    def __init__(self, folder: Path, threads: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        # No busy-waiting between calls: torch runs in the same process after encoding.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        self.folder = folder
        self.session = onnxruntime.InferenceSession(
            str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.backend = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        values = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        values.pop("precision", None)
        self.meta = EncoderMeta(**values)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Last hidden states ``[batch, length, hidden]`` (float32)."""
        feed = {
            "input_ids": np.ascontiguousarray(input_ids, dtype=np.int64),
            "attention_mask": np.ascontiguousarray(attention_mask, dtype=np.int64),
        }
        return self.session.run(None, feed)[0]


__all__ = [
    "ONNX_INT8_SCHEME",
    "EncoderMeta",
    "OnnxEncoder",
    "compiled_dir",
    "compiled_stamp",
    "is_compiled",
]

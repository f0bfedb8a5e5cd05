"""Exporting the encoder for ONNX Runtime, once per model and precision, into the cache
(:mod:`pfpyro.encode.onnx_runtime` loads the result).

The Hugging Face model's last hidden state is exported with ``torch.onnx.export`` (the
``torch.export`` path, batch and length dynamic, the weights in an external file). With
``precision: int8`` the export is then quantised dynamically
(``onnxruntime.quantization.quantize_dynamic``): the weights of its matrix products int8 with
one scale per output channel, their activations quantised per call; the word-embedding table
stays fp32 (a lookup gains nothing from int8). Needs ``onnx``, ``onnxscript`` and
``onnxruntime`` (``pip install 'pfpyro[onnx]'``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import sys
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from pfpyro.encode.built_folder import build_folder
from pfpyro.encode.onnx_runtime import (
    META_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    EncoderMeta,
    compiled_stamp,
)
from pfpyro.errors import ConfigError

if TYPE_CHECKING:
    from tokenizers import Tokenizer


def compile_encoder(
    model: torch.nn.Module,
    backend: Tokenizer,
    meta: EncoderMeta,
    folder: Path,
    identity: str,
    precision: str,
    progress: bool = True,
) -> Path:
    """Export a Hugging Face encoder (``model``, in eval mode on the CPU) and its ``tokenizers``
    pipeline ``backend`` into ``folder``; ``precision="int8"`` quantises the export."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"exporting the encoder for ONNX Runtime needs {module}: pip install 'pfpyro[onnx]'"
            )

    def build(partial: Path) -> None:
        if progress:
            print(f"pfpyro: exporting the encoder to ONNX ({precision}) into {folder}",
                  file=sys.stderr, flush=True)  # fmt: skip
        exported = partial / MODEL_FILE
        if precision == "int8":
            exported = partial / "fp32" / MODEL_FILE
            exported.parent.mkdir()
        with _quiet_logs():
            _export(model, exported, meta.limit)
            if precision == "int8":
                _quantize(exported, partial / MODEL_FILE)
                for path in exported.parent.iterdir():  # the fp32 export, quantised
                    path.unlink()
                exported.parent.rmdir()
        backend.save(str(partial / TOKENIZER_FILE))
        text = json.dumps({**asdict(meta), "precision": precision}, indent=2) + "\n"
        (partial / META_FILE).write_text(text, encoding="utf-8")

    return build_folder(folder, compiled_stamp(identity, precision), build)


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """The exporter's and the quantiser's log lines (skipped torchvision ops, a pre-processing
    tip on the root logger) kept off the user's terminal; errors still show."""
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class _LastHiddenState(torch.nn.Module):
    """The model's forward as the export sees it: ids and mask in, last hidden state out."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]


def _export(model: torch.nn.Module, path: Path, limit: int) -> None:
    """``model``'s last hidden state as an ONNX graph with a dynamic batch and length; the
    weights in ``<path>.data``."""
    batch = torch.export.Dim("batch")
    length = torch.export.Dim("length", max=limit) if limit else torch.export.Dim("length")
    ids = torch.tensor([[0, 5, 6, 2], [0, 7, 2, 1]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.long)
    axes = {0: batch, 1: length}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on renamed axes and opsets
        program = torch.onnx.export(
            _LastHiddenState(model).eval(),
            (ids, mask),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_shapes={"input_ids": axes, "attention_mask": axes},
            dynamo=True,
            verbose=False,
        )
        program.save(str(path), external_data=True)


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 of ``source``'s matrix products (weights per output channel), except the
    feed-forward output projections (:func:`feed_forward_outputs`)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=feed_forward_outputs(source),
            use_external_data_format=True,
        )


def feed_forward_outputs(path: Path) -> list[str]:
    """The matrix products that read a GELU's output: each layer's feed-forward output
    projection. They stay fp32 under int8: their inputs carry the outliers that per-tensor
    activation scales handle worst (Bondarenko et al., EMNLP 2021, on BERT); chosen from
    that paper after quantising every product lost a point of a probe, then measured once
    (docs/offline.md has both schemes' figures)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    gelu_outputs = {out for node in graph.node if node.op_type == "Gelu" for out in node.output}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and node.input and node.input[0] in gelu_outputs
    ]


__all__ = ["compile_encoder", "feed_forward_outputs"]

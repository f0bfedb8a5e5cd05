"""A trainable top of the encoder: its last k layers, run on cached states of the layer below.

The paper fine-tunes mBERT, shared by every task–language pair (§4.2). Here the lower L − k
layers stay frozen and their output is cached once (:meth:`WordEncoder.encode_subwords`); the
top k layers are a module of every model that trains them (PF and each baseline alike), and
turn a mini-batch of those states into word features with gradients. With the pretrained
weights, the top reproduces the frozen encoder's features exactly (``tests/test_encoder_top``).

:class:`~pfpyro.data.subwords.SubwordStates` holds what the top reads for N sentences. A
sentence longer than the encoder's window was encoded in several windows
(:func:`pfpyro.encode.encoder.plan_windows`); its windows are stored one after another in one
row, and ``segments`` numbers them, so the top
lets a subword attend only within its own window, exactly as the frozen encoder did.

The top is deterministic (no dropout, in training too): it is part of the model's deterministic
map from x to θ's inputs, not a random choice.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pfpyro.data.subwords import SentenceSubwords, SubwordStates
from pfpyro.errors import ConfigError


def attention_bias(segments: Tensor, dtype: torch.dtype) -> Tensor:
    """The additive self-attention mask [N, 1, S, S]: 0 where a subword may attend (same window,
    not padding; padding attends to itself), the dtype's minimum elsewhere (finite: no NaN)."""
    same = segments[:, :, None] == segments[:, None, :]
    allowed = same & (segments[:, None, :] >= 0)
    allowed |= torch.eye(segments.shape[1], dtype=torch.bool, device=segments.device)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    return bias.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


class EncoderTop(nn.Module):
    """The encoder's last ``len(layers)`` layers, from the states of layer ``below``'s output
    to word features (see the module notes). ``spec`` is what rebuilds it (:meth:`from_spec`):
    the layer class, the model config, and the layer numbers."""

    def __init__(self, layers: Sequence[nn.Module], spec: Mapping[str, Any]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.spec = dict(spec)
        self.layers.eval()

    @classmethod
    def from_model(cls, model: nn.Module, k: int) -> EncoderTop:
        """A copy of the last ``k`` layers of a Hugging Face encoder (BERT-like: its layers at
        ``model.encoder.layer``), with their pretrained weights."""
        layers = _encoder_layers(model)
        if not 1 <= k <= len(layers):
            raise ConfigError(
                f"encoder train_top must lie in [0, {len(layers)}] for this encoder, got {k}"
            )
        cls_ = type(layers[-1])
        spec = {
            "layers": int(k),
            "below": len(layers) - int(k),
            "layer_class": f"{cls_.__module__}.{cls_.__qualname__}",
            "attention": model.config._attn_implementation or "eager",
            # The architecture as model.json will hold it (JSON's keys and lists); the library
            # version that wrote it is not part of it.
            "config": json.loads(
                json.dumps(
                    {k: v for k, v in model.config.to_dict().items() if k != "transformers_version"}
                )
            ),
        }
        top = cls([copy.deepcopy(layer) for layer in layers[-k:]], spec)
        return top.float().requires_grad_(True)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> EncoderTop:
        """The same architecture, freshly initialised (a checkpoint's weights go in next)."""
        from transformers import AutoConfig

        module, _, name = str(spec["layer_class"]).rpartition(".")
        try:
            layer_class = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            raise ConfigError(
                f"encoder top: cannot import {spec['layer_class']}: {error}"
            ) from None
        settings = dict(spec["config"])
        config = AutoConfig.for_model(settings.pop("model_type"), **settings)
        config._attn_implementation = spec.get("attention", "eager")  # the same kernels
        below = int(spec["below"])
        layers = [layer_class(config, layer_idx=below + i) for i in range(int(spec["layers"]))]
        return cls(layers, spec)

    @property
    def below(self) -> int:
        """The layer whose output the top reads (0: the embeddings)."""
        return int(self.spec["below"])

    def train(self, mode: bool = True) -> EncoderTop:
        super().train(mode)
        self.layers.eval()  # deterministic: dropout stays off
        return self

    def forward(self, subwords: SubwordStates) -> Tensor:
        """Word features [N, T, e]: each word's first subword after the top layers."""
        hidden = subwords.states.to(next(self.parameters()).dtype)
        bias = attention_bias(subwords.segments, hidden.dtype)
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=bias)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        index = subwords.first[..., None].expand(-1, -1, hidden.shape[-1])
        return hidden.gather(1, index)


def _encoder_layers(model: nn.Module) -> nn.ModuleList:
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ConfigError(
            f"a trainable encoder top needs a BERT-like encoder (layers at encoder.layer); "
            f"{type(model).__name__} has none"
        )
    return layers


def word_features(inputs: Tensor | SubwordStates, top: EncoderTop | None) -> Tensor:
    """Word features [N, T, e] of a model's inputs: the features themselves, or ``top`` run on
    subword states. Features of a frozen encoder given to a model that trains its top, or
    subword states to one that does not, are an error (they are not what it was trained on)."""
    if isinstance(inputs, SubwordStates):
        if top is None:
            raise ConfigError("subword states given to a model without a trainable encoder top")
        return top(inputs)
    if top is not None:
        raise ConfigError(
            f"this model trains the encoder's top {len(top.layers)} layer(s): it takes the "
            f"subword states of layer {top.below} (encoder train_top), not word features"
        )
    return inputs


__all__ = ["EncoderTop", "SentenceSubwords", "SubwordStates", "attention_bias", "word_features"]

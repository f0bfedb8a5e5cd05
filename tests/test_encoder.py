"""WordEncoder: one first-subword vector per word, in order, through windows and odd words."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pfpyro.cli import main as cli_main
from pfpyro.data.sentence import Sentence
from pfpyro.encode import (
    OFFLINE_ENCODER,
    FeatureCache,
    WordEncoder,
    folder_identity,
    install_offline_encoder,
    plan_windows,
)
from pfpyro.encode import identity as identity_module
from pfpyro.errors import ConfigError, PfpyroError

SENTENCES = [
    ["The", "encoder", "gives", "each", "word", "one", "vector", "."],
    ["Kısa", "cümle"],
    ["소년은", "아침에", "학교에", "갔다", "."],
    ["Unbelievably", "long-winded", "hyper-tokenised", "antidisestablishmentarianism"],
    ["x"],
]


@pytest.fixture(scope="session")
def offline_dir() -> Path:
    """Installed once ($PFPYRO_CACHE or ~/.cache/pfpyro; a no-op after `make install`)."""
    return install_offline_encoder(progress=False)


@pytest.fixture(scope="module")
def encoder(offline_dir: Path) -> WordEncoder:
    return WordEncoder(OFFLINE_ENCODER, progress=False)


@pytest.fixture
def fresh(encoder: WordEncoder):
    """The shared encoder with its settings restored after the test."""
    saved = (encoder.batch_size, encoder.max_subwords, encoder.cache, encoder.cut_sentences)
    yield encoder
    encoder.batch_size, encoder.max_subwords, encoder.cache, encoder.cut_sentences = saved


def manual_first_subwords(encoder: WordEncoder, words: list[str]) -> np.ndarray:
    """The definition, spelled out with the Hugging Face objects for one sentence."""
    batch = encoder.tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = encoder.model(**batch).last_hidden_state[0]
    word_ids = batch.word_ids(0)
    first = [word_ids.index(i) for i in range(len(words))]
    return hidden[first].numpy()


# --------------------------------------------------------------------------- features


def test_one_first_subword_vector_per_word(encoder: WordEncoder) -> None:
    features = encoder.encode(SENTENCES)
    assert encoder.feature_dim == 384
    assert [f.shape for f in features] == [(len(s), 384) for s in SENTENCES]
    assert all(f.dtype == np.float16 for f in features)
    for words, got in zip(SENTENCES, features, strict=True):
        expected = manual_first_subwords(encoder, words)
        np.testing.assert_allclose(got.astype(np.float32), expected, atol=2e-2, rtol=1e-2)


def test_order_kept_across_sorted_batches(fresh: WordEncoder) -> None:
    alone = [fresh.encode([s])[0] for s in SENTENCES]
    fresh.batch_size = 2  # several batches, each sorted by length
    together = fresh.encode(SENTENCES)
    plan = fresh.plan(SENTENCES)
    assert len(plan.batches) == 3
    lengths = [len(plan.ids[k]) for batch in plan.batches for k in batch]
    assert lengths == sorted(lengths, reverse=True)
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), atol=2e-2)
    # the vectors differ between words, so a mix-up of rows would show
    assert not np.allclose(together[0][0], together[0][1], atol=0.1)


def test_sentence_objects_and_empty_input(encoder: WordEncoder) -> None:
    sentence = Sentence(("Hello", "there"), ("INTJ", "ADV"), "pos", "en", "train", "x", 1)
    from_objects = encoder.encode([sentence, []])
    from_words = encoder.encode([["Hello", "there"], []])
    np.testing.assert_array_equal(from_objects[0], from_words[0])
    assert from_objects[1].shape == (0, 384)
    assert encoder.encode([]) == []


def test_bad_input_is_a_pfpyro_error(encoder: WordEncoder) -> None:
    with pytest.raises(PfpyroError, match="list of sentences"):
        encoder.encode("not a list of sentences")
    with pytest.raises(PfpyroError, match="sentence 0 is a string"):
        encoder.encode(["a sentence as one string"])
    with pytest.raises(PfpyroError, match="sentence 1, word 1"):
        encoder.encode([["ok"], ["fine", 3]])


def test_odd_words_each_get_a_vector(encoder: WordEncoder) -> None:
    odd = ["", "\u200b", "\x01", "🙂", "a" * 300, "<s>", "ünïcödé", "\u200d"]
    words = ["Before", *odd, "after"]
    plan = encoder.plan([words])
    (ids,) = plan.ids
    first = {w: ids[t] for w, t in zip(words, plan.targets[0], strict=True)}
    for blank in ("", "\u200b", "\x01", "\u200d"):  # no subword at all: fed as <unk>
        assert encoder.tokenizer(blank, add_special_tokens=False)["input_ids"] == []
        assert first[blank] == encoder.unk_id
    (features,) = encoder.encode([words])
    assert features.shape == (len(words), 384)
    assert np.isfinite(features.astype(np.float32)).all()


# --------------------------------------------------------------------------- long sentences


def long_sentence(n: int) -> list[str]:
    base = "Sentences past the limit are encoded in windows with left context , not cut"
    base = base.split(" ")
    return [base[i % len(base)] + ("s" if i % 7 == 0 else "") for i in range(n)]


def test_long_sentence_gets_every_word_through_windows(fresh: WordEncoder, caplog) -> None:
    words = long_sentence(400)
    plan = fresh.plan([words])
    assert plan.cut_sentences == 1 and len(plan.ids) >= 2
    assert max(len(ids) for ids in plan.ids) <= fresh.max_subwords
    covered = np.concatenate(plan.rows)
    assert sorted(covered.tolist()) == list(range(len(words)))  # every word exactly once
    with caplog.at_level(logging.WARNING, logger="pfpyro.encode.encoder"):
        (features,) = fresh.encode([words])
    assert features.shape == (400, 384)
    assert fresh.cut_sentences == 1
    assert "1 of 1 sentences are longer than 250 subwords" in caplog.text


def test_windows_match_encoding_their_words_alone(fresh: WordEncoder) -> None:
    fresh.max_subwords = 24  # small windows: fast, and several of them
    words = long_sentence(40)
    counts = [len(fresh.tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words]
    windows = plan_windows(counts, fresh.budget)
    assert len(windows) >= 3
    (features,) = fresh.encode([words])
    fresh.max_subwords = 250
    for ctx, start, end in windows:
        (alone,) = fresh.encode([words[ctx:end]])
        np.testing.assert_allclose(
            features[start:end].astype(np.float32),
            alone[start - ctx :].astype(np.float32),
            atol=2e-2,
        )


def test_transformers_progress_bar_only_on_a_terminal_and_not_quiet(
    offline_dir: Path, capfd, monkeypatch
) -> None:
    """transformers' "Loading weights" bar redraws with carriage returns: it shows on a
    terminal unless quiet, and never in a log (standard error here is captured, no TTY)."""
    from transformers.utils import logging as hf_logging

    from pfpyro.encode import encoder as encoder_module

    before = hf_logging.is_progress_bar_enabled()
    WordEncoder(OFFLINE_ENCODER, progress=True)  # not a terminal
    assert "Loading weights" not in capfd.readouterr().err
    monkeypatch.setattr(encoder_module, "is_terminal", lambda stream=None: True)
    WordEncoder(OFFLINE_ENCODER, progress=False)
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled() == before  # the global setting is restored
    WordEncoder(OFFLINE_ENCODER, progress=True)
    assert "Loading weights" in capfd.readouterr().err


def test_max_subwords_out_of_range_is_a_config_error(offline_dir: Path) -> None:
    from pfpyro.errors import ConfigError

    with pytest.raises(ConfigError, match="max_subwords"):
        WordEncoder(OFFLINE_ENCODER, max_subwords=600, progress=False)


def test_plan_windows_example() -> None:
    assert plan_windows([2, 2, 2], budget=6) == [(0, 0, 3)]
    assert plan_windows([3, 3, 3, 3], budget=6) == [(0, 0, 2), (1, 2, 3), (2, 3, 4)]
    assert plan_windows([], budget=6) == []
    with pytest.raises(ValueError):
        plan_windows([7], budget=6)


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(1, 12), max_size=60),
    budget=st.integers(12, 40),
)
def test_plan_windows_tiles_the_sentence(counts: list[int], budget: int) -> None:
    windows = plan_windows(counts, budget)
    targets = [i for _, start, end in windows for i in range(start, end)]
    assert targets == list(range(len(counts)))  # each word is new in exactly one window
    for ctx, start, end in windows:
        assert ctx <= start < end
        assert sum(counts[ctx:end]) <= budget
        assert sum(counts[ctx:start]) <= budget // 2
    if sum(counts) <= budget:
        assert len(windows) <= 1


# --------------------------------------------------------------------------- cache, identity


def test_encode_uses_the_cache(fresh: WordEncoder, tmp_path: Path) -> None:
    fresh.cache = FeatureCache(tmp_path)
    first = fresh.encode(SENTENCES)
    again = fresh.encode(SENTENCES)
    assert (fresh.cache.misses, fresh.cache.hits) == (1, 1)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    fresh.encode([*SENTENCES[:-1], ["y"]])  # one word changed
    assert (fresh.cache.misses, fresh.cache.hits) == (2, 1)


def test_identity_tracks_file_contents(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 4}')
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "README.md").write_text("not part of the model")
    memo = tmp_path / "memo"
    first = folder_identity(folder, memo)
    hashed = []
    real = identity_module.sha256_file
    monkeypatch.setattr(identity_module, "sha256_file", lambda p: hashed.append(p) or real(p))
    assert folder_identity(folder, memo) == first and hashed == []  # memo, no re-hashing
    (folder / "README.md").write_text("edited")
    assert folder_identity(folder, memo) == first
    (folder / "model.safetensors").write_bytes(b"weightz")
    stat = (folder / "model.safetensors").stat()
    os.utime(folder / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = folder_identity(folder, memo)
    assert changed != first and [p.name for p in hashed] == ["model.safetensors"]
    assert folder_identity(folder, tmp_path / "other-memo") == changed  # memo is only a memo


def test_encoder_identity_is_the_folder_identity(encoder: WordEncoder, offline_dir: Path):
    assert encoder.identity == folder_identity(offline_dir)
    assert len(encoder.identity) == 64


def test_an_int8_encoder_gives_close_features_cached_apart(encoder: WordEncoder) -> None:
    """precision int8 (issue 10, item 2): its linear layers are quantised, its features stay
    close to fp32's (cosine per word) without being the same, and its identity differs, so
    the two are never mixed in the feature cache."""
    from pfpyro.encode.encoder import quantized_int8

    int8 = WordEncoder(OFFLINE_ENCODER, progress=False, precision="int8")
    quantised = [
        m for m in int8.model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)
    ]
    assert len(quantised) >= 12 * 6  # every linear layer of the 12 blocks
    words = SENTENCES[:3]
    for full, small in zip(encoder.encode(words), int8.encode(words), strict=True):
        a, b = torch.as_tensor(full).float(), torch.as_tensor(small).float()
        cosine = torch.nn.functional.cosine_similarity(a, b, dim=-1)
        assert cosine.min() > 0.9 and not torch.equal(a, b)
    assert int8.identity != encoder.identity and len(int8.identity) == 64
    with pytest.raises(ConfigError, match="precision 'int4' is unknown; known: fp32, int8"):
        WordEncoder(OFFLINE_ENCODER, progress=False, precision="int4")
    with pytest.raises(ConfigError, match="int8 runs on the CPU only, not on cuda"):
        quantized_int8(torch.nn.Linear(2, 2), torch.device("cuda"))


# --------------------------------------------------------------------------- CLI


def test_cli_install_and_info(offline_dir: Path, encoder: WordEncoder, capsys) -> None:
    assert cli_main(["encoder", "install", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(offline_dir)
    assert cli_main(["encoder", "info"]) == 0
    out = capsys.readouterr().out
    assert f"path:        {offline_dir}" in out
    assert f"identity:    {encoder.identity}" in out
    assert "feature dim: 384" in out


def test_cli_help_has_an_example(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        cli_main(["encoder", "--help"])
    assert stop.value.code == 0
    assert "pfpyro encoder install" in capsys.readouterr().out
    assert cli_main(["encoder"]) == 2


# --------------------------------------------------------------------------- a trainable top


@pytest.mark.parametrize("k", [1, 2])
def test_the_pretrained_top_on_lower_states_gives_the_frozen_features(
    fresh: WordEncoder, k: int
) -> None:
    """encoder.train_top k at its start is the frozen encoder: the top k layers run on the
    cached states of layer L − k give every word the feature that ``encode`` gives it, cut
    sentences (several windows) included."""
    from pfpyro.data.subwords import SubwordStates

    fresh.max_subwords = 12  # cuts the long sentences into windows
    sentences = [*SENTENCES, long_sentence(30), []]
    features = fresh.encode(sentences)
    layouts = fresh.encode_subwords(sentences, fresh.num_layers - k)
    assert [len(first) for _, _, first in layouts] == [len(s) for s in sentences]
    assert max(int(seg.max(initial=0)) for _, seg, _ in layouts) >= 1  # some are cut
    longest = max(len(s) for s in sentences)
    states = SubwordStates.from_arrays(layouts, longest).batch(slice(None), longest)
    with torch.no_grad():
        out = fresh.top(k)(states)
    for i, expected in enumerate(features):
        got = out[i, : len(expected)].numpy()
        # Both sides went through fp16 once (the cache's precision).
        np.testing.assert_allclose(got, expected.astype(np.float32), atol=5e-3)


def test_subword_states_are_cached_by_layer(fresh: WordEncoder, tmp_path: Path) -> None:
    fresh.cache = FeatureCache(tmp_path)
    below = fresh.num_layers - 1
    first = fresh.encode_subwords(SENTENCES, below)
    again = fresh.encode_subwords(SENTENCES, below)
    assert (fresh.cache.misses, fresh.cache.hits) == (1, 1)
    for (a, seg_a, pos_a), (b, seg_b, pos_b) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(seg_a, seg_b)
        np.testing.assert_array_equal(pos_a, pos_b)
    fresh.encode_subwords(SENTENCES, below - 1)  # another layer: another entry
    fresh.encode(SENTENCES)  # and the word features are apart from both
    assert (fresh.cache.misses, fresh.cache.hits) == (3, 1)
    with pytest.raises(ConfigError, match="layer must lie in"):
        fresh.encode_subwords(SENTENCES, fresh.num_layers)


def test_a_top_needs_the_fp32_encoder_and_a_valid_k(encoder: WordEncoder) -> None:
    with pytest.raises(ConfigError, match=r"train_top must lie in \[0, 12\]"):
        encoder.top(13)
    assert len(encoder.top(1).layers) == 1


def test_encode_flat_streams_into_the_cache_and_equals_encode(
    fresh: WordEncoder, tmp_path: Path
) -> None:
    fresh.cache = FeatureCache(tmp_path)
    flat = fresh.encode_flat(SENTENCES)  # a miss: encoded into the entry, then mapped
    assert isinstance(flat, np.memmap) and fresh.cache.misses == 1
    words = fresh.encode(SENTENCES)  # a hit on the same entry
    assert fresh.cache.hits == 1
    np.testing.assert_array_equal(flat, np.concatenate(words))
    fresh.cache = None
    np.testing.assert_allclose(
        np.concatenate(fresh.encode(SENTENCES)).astype(np.float32),
        np.asarray(flat, dtype=np.float32),
    )

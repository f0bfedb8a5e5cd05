"""The encoder on ONNX Runtime (issue 10, item 2): exported once into the cache, equal to the
torch encoder's features, int8 close to them, and refused where it cannot serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pfpyro.config import load_config
from pfpyro.encode import FeatureCache, WordEncoder, install_offline_encoder, onnx_export
from pfpyro.encode.built_folder import STAMP_NAME
from pfpyro.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]


@pytest.fixture
def tiny_folder(tmp_path: Path, monkeypatch) -> Path:
    """A small random BERT with a word-level fast tokenizer, saved as a Hugging Face folder;
    pfpyro's cache (where the export goes) is a fresh one under ``tmp_path``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    monkeypatch.setenv("PFPYRO_CACHE", str(tmp_path / "cache"))
    vocab = {token: k for k, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=32,
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    folder = tmp_path / "tiny-bert"
    BertModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sentences(n: int = 12, seed: int = 0) -> list[list[str]]:
    generator = np.random.default_rng(seed)
    return [
        [WORDS[k] for k in generator.integers(0, len(WORDS), size=generator.integers(1, 20))]
        for _ in range(n)
    ] + [["unseen", "words", "here"]]


def stacked(features: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(features).astype(np.float32)


def test_onnx_features_equal_the_torch_encoders(tiny_folder: Path) -> None:
    """Same windows, same tokenisation, same arithmetic: the features agree to fp16 rounding
    (long sentences cut into windows included), and the two are cached apart."""
    words = sentences()
    torch_encoder = WordEncoder(str(tiny_folder), max_subwords=8, batch_size=4, progress=False)
    onnx_encoder = WordEncoder(
        str(tiny_folder), max_subwords=8, batch_size=4, progress=False, runtime="onnx"
    )
    assert onnx_encoder.model is None and onnx_encoder.session is not None
    assert onnx_encoder.feature_dim == torch_encoder.feature_dim == 16
    assert onnx_encoder.num_layers == 2
    expected, found = torch_encoder.encode(words), onnx_encoder.encode(words)
    assert [f.shape for f in found] == [f.shape for f in expected]
    np.testing.assert_allclose(stacked(found), stacked(expected), atol=2e-3, rtol=0)
    assert onnx_encoder.cut_sentences > 0  # windows were exercised

    assert onnx_encoder.identity != torch_encoder.identity
    cache = FeatureCache(tiny_folder.parent / "features")
    torch_encoder.cache = onnx_encoder.cache = cache
    torch_encoder.encode(words)
    onnx_encoder.encode(words)
    assert (cache.misses, cache.hits) == (2, 0)


def test_onnx_int8_is_close_to_fp32_and_cached_apart(tiny_folder: Path) -> None:
    words = sentences()
    fp32 = WordEncoder(str(tiny_folder), max_subwords=32, progress=False, runtime="onnx")
    int8 = WordEncoder(
        str(tiny_folder), max_subwords=32, progress=False, runtime="onnx", precision="int8"
    )
    a, b = stacked(fp32.encode(words)), stacked(int8.encode(words))
    assert not np.array_equal(a, b)  # quantised: not the same arithmetic
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.95
    assert len({fp32.identity, int8.identity}) == 2
    assert int8.session.folder != fp32.session.folder


def test_the_export_is_made_once_and_reused(tiny_folder: Path, monkeypatch) -> None:
    first = WordEncoder(str(tiny_folder), max_subwords=32, progress=False, runtime="onnx")
    folder = first.session.folder
    assert (folder / STAMP_NAME).is_file() and (folder / "model.onnx.data").is_file()

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "_export", no_export)
    again = WordEncoder(str(tiny_folder), max_subwords=32, progress=False, runtime="onnx")
    assert again.session.folder == folder


def test_an_interrupted_export_leaves_nothing_and_an_unstamped_folder_is_rebuilt(
    tiny_folder: Path, monkeypatch
) -> None:
    real_export = onnx_export._export

    def interrupted(model, path, limit):
        real_export(model, path, limit)
        raise KeyboardInterrupt  # the graph is written, the stamp is not

    monkeypatch.setattr(onnx_export, "_export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        WordEncoder(str(tiny_folder), max_subwords=32, progress=False, runtime="onnx")
    exports = tiny_folder.parent / "cache" / "onnx"
    assert list(exports.iterdir()) == []  # neither a folder nor a partial sibling

    monkeypatch.setattr(onnx_export, "_export", real_export)
    encoder = WordEncoder(str(tiny_folder), max_subwords=32, progress=False, runtime="onnx")
    folder = encoder.session.folder
    (folder / STAMP_NAME).unlink()  # as if a copy was cut short
    rebuilt = WordEncoder(str(tiny_folder), max_subwords=32, progress=False, runtime="onnx")
    assert (rebuilt.session.folder / STAMP_NAME).is_file()


def test_onnx_refuses_what_needs_torch(tiny_folder: Path) -> None:
    encoder = WordEncoder(str(tiny_folder), max_subwords=32, progress=False, runtime="onnx")
    with pytest.raises(ConfigError, match="runtime torch"):
        encoder.top(1)
    with pytest.raises(ConfigError, match="runtime torch"):
        encoder.encode_subwords([["the", "cat"]], layer=1)
    with pytest.raises(ConfigError, match="CPU only"):
        WordEncoder(
            str(tiny_folder), max_subwords=32, progress=False, runtime="onnx", device="cuda"
        )
    with pytest.raises(ConfigError, match="runtime 'onxx' is unknown"):
        WordEncoder(str(tiny_folder), max_subwords=32, progress=False, runtime="onxx")


def write_config(tmp_path: Path, encoder: dict) -> Path:
    path = tmp_path / "c.yaml"
    values = {"data": {"languages": ["tr", "wo"]}, "encoder": encoder}
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("encoder", "message"),
    [
        ({"runtime": "onxx"}, "did you mean 'onnx'"),
        ({"runtime": "onnx", "train_top": 1}, "needs runtime torch"),
        ({"runtime": "onnx", "device": "cuda"}, "runs on the CPU"),
    ],
)
def test_a_config_with_a_bad_runtime_fails_at_load(tmp_path: Path, encoder, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, encoder))


def test_a_config_asking_for_onnx_without_onnxruntime_says_how_to_install(
    tmp_path: Path, monkeypatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "onnxruntime" else real(name, *args),
    )
    with pytest.raises(ConfigError, match=r"pip install 'pfpyro\[onnx\]'"):
        load_config(write_config(tmp_path, {"runtime": "onnx"}))


def test_the_real_encoder_on_onnx_runs_without_transformers(tmp_path: Path) -> None:
    """multilingual-e5-small through ONNX Runtime in a fresh process: transformers is never
    imported (what makes `pfpyro predict --runtime onnx` start fast), and the features equal
    the torch encoder's to fp16 rounding."""
    install_offline_encoder(progress=False)
    WordEncoder("multilingual-e5-small-offline", progress=False, runtime="onnx")  # exported
    script = (
        "import sys, numpy as np\n"
        "from pfpyro.encode import WordEncoder\n"
        "encoder = WordEncoder('multilingual-e5-small-offline', progress=False, runtime='onnx')\n"
        "features = encoder.encode([['Dëkk', 'bi', 'dafa', 'rafet', '.'], ['Hello', 'world']])\n"
        "assert 'transformers' not in sys.modules, 'transformers was imported'\n"
        "np.save(sys.argv[1], np.concatenate(features))\n"
    )
    out = tmp_path / "features.npy"
    subprocess.run([sys.executable, "-c", script, str(out)], check=True, timeout=300)
    found = np.load(out).astype(np.float32)
    torch_encoder = WordEncoder("multilingual-e5-small-offline", progress=False)
    words = [["Dëkk", "bi", "dafa", "rafet", "."], ["Hello", "world"]]
    expected = stacked(torch_encoder.encode(words))
    np.testing.assert_allclose(found, expected, atol=2e-3, rtol=0)


def test_cli_installs_the_onnx_export_and_info_shows_it(capsys) -> None:
    """`pfpyro encoder install --onnx fp32` prints the offline folder, then its export's
    folder, complete; `pfpyro encoder info` names the exports and whether each is made."""
    from pfpyro.cli import main as cli_main
    from pfpyro.encode import folder_identity
    from pfpyro.encode.onnx_runtime import compiled_dir, is_compiled

    assert cli_main(["encoder", "install", "--onnx", "fp32", "--quiet"]) == 0
    offline, export = capsys.readouterr().out.split()
    identity = folder_identity(offline)
    assert Path(export) == compiled_dir(identity, "fp32")
    assert is_compiled(Path(export), identity, "fp32")
    assert cli_main(["encoder", "info"]) == 0
    assert f"onnx fp32:   {export} (exported)" in capsys.readouterr().out

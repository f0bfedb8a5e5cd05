"""A trainable encoder top (issue 8, item 4): the encoder's last k layers, trained with every
model on cached states of the layer below."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import run_settings

from pfpyro.baselines import fit_baseline
from pfpyro.baselines.linear import LinearTagger
from pfpyro.config import load_config
from pfpyro.data.batch import PairTensors
from pfpyro.data.subwords import SubwordStates
from pfpyro.data.tasks import TaskSpec, add_tasks, forget_task
from pfpyro.encode.top import EncoderTop, word_features
from pfpyro.errors import ConfigError
from pfpyro.infer import PFPredictor, load_run, train
from pfpyro.infer import checkpoint as ckpt
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")

DIM = 8  # the tiny encoder's width, and the synthetic world's feature width


def tiny_encoder(layers: int = 3):
    """A small random BERT: the same layer code as the real encoders, cheap to run."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30,
        hidden_size=DIM,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
    )
    config._attn_implementation = "sdpa"  # as the encoders pfpyro loads
    return BertModel(config).eval()


def with_subwords(tensors: PairTensors, seed: int) -> PairTensors:
    """The pair with subword states: a [CLS] row, one state per word (its feature plus noise),
    a [SEP] row; one window per sentence."""
    generator = np.random.default_rng(seed)
    features, layouts, labels = [], [], []
    for k in range(len(tensors)):
        n = int(tensors.mask[k].sum())
        words = tensors.features[k, :n].float().numpy()
        states = np.concatenate([np.zeros((1, DIM)), words, np.zeros((1, DIM))])
        states = states + 0.1 * generator.standard_normal(states.shape)
        features.append(words)
        layouts.append((states, np.zeros(n + 2, dtype=np.int64), np.arange(1, n + 1)))
        labels.append(tensors.labels[k, :n].tolist())
    return PairTensors.from_arrays(features, labels, layouts)


@pytest.fixture(scope="module", autouse=True)
def synthetic_tasks():
    """The synthetic world's tasks, known to the process while this module runs."""
    names = ("task0", "task1")
    add_tasks([TaskSpec(name, ("a", "b", "c")) for name in names], "test_encoder_top")
    yield
    for name in names:
        forget_task(name)


@pytest.fixture(scope="module")
def world():
    return make_world(2, 3, num_classes=3, feature_dim=DIM, sentences=(12, 6, 6), length=5, seed=3)


@pytest.fixture(scope="module")
def data(world):
    seen = [p for p in world.pairs() if p != ("task0", "lang2")]
    train_data = {p: with_subwords(world.train[p], 1 + i) for i, p in enumerate(seen)}
    dev = {p: with_subwords(world.dev[p], 50 + i) for i, p in enumerate(seen)}
    return train_data, dev


def settings(**changes):
    values = dict(latent_dim=2, batch_size=4, lr=0.05, max_steps=12, eval_every=6,
                  patience=100, log_every=3, progress=False)  # fmt: skip
    values.update(changes)
    return run_settings(**values)


# -- the top itself ------------------------------------------------------------------------


def test_the_top_copies_the_last_k_layers_and_rebuilds_from_its_spec() -> None:
    encoder = tiny_encoder()
    top = EncoderTop.from_model(encoder, 2)
    assert top.below == 1 and len(top.layers) == 2
    for mine, theirs in zip(top.layers, encoder.encoder.layer[1:], strict=True):
        for (name, a), (_, b) in zip(mine.state_dict().items(), theirs.state_dict().items(),
                                     strict=True):  # fmt: skip
            assert torch.equal(a, b), name
    rebuilt = EncoderTop.from_spec(top.spec)
    rebuilt.load_state_dict(top.state_dict())
    states = SubwordStates(torch.randn(2, 5, DIM), torch.tensor([[0] * 5, [0, 0, 0, -1, -1]]),
                           torch.tensor([[1, 2, 3], [1, 0, 0]]))  # fmt: skip
    assert torch.allclose(top(states), rebuilt(states))
    with pytest.raises(ConfigError, match=r"train_top must lie in \[0, 3\]"):
        EncoderTop.from_model(encoder, 4)


def test_the_top_has_no_dropout_even_in_training_mode() -> None:
    top = EncoderTop.from_model(tiny_encoder(), 1).train()
    states = SubwordStates(torch.randn(3, 6, DIM), torch.zeros(3, 6, dtype=torch.long),
                           torch.tensor([[1, 2]] * 3))  # fmt: skip
    assert torch.equal(top(states), top(states))


def test_windows_attend_only_within_themselves() -> None:
    """A sentence stored as two windows gives each window's words what that window alone gives."""
    top = EncoderTop.from_model(tiny_encoder(), 1)
    a, b = torch.randn(4, DIM), torch.randn(3, DIM)
    both = SubwordStates(torch.cat([a, b])[None], torch.tensor([[0, 0, 0, 0, 1, 1, 1]]),
                         torch.tensor([[1, 2, 5]]))  # fmt: skip
    alone_a = SubwordStates(a[None], torch.zeros(1, 4, dtype=torch.long), torch.tensor([[1, 2]]))
    alone_b = SubwordStates(b[None], torch.zeros(1, 3, dtype=torch.long), torch.tensor([[1]]))
    with torch.no_grad():
        out = top(both)[0]
        assert torch.allclose(out[:2], top(alone_a)[0], atol=1e-5)
        assert torch.allclose(out[2:], top(alone_b)[0], atol=1e-5)


def test_inputs_of_the_wrong_kind_are_refused() -> None:
    top = EncoderTop.from_model(tiny_encoder(), 1)
    states = SubwordStates(torch.randn(1, 3, DIM), torch.zeros(1, 3, dtype=torch.long),
                           torch.tensor([[1]]))  # fmt: skip
    with pytest.raises(ConfigError, match="subword states of layer 2"):
        word_features(torch.randn(1, 1, DIM), top)
    with pytest.raises(ConfigError, match="without a trainable encoder top"):
        word_features(states, None)


# -- PF with a trained top -------------------------------------------------------------------


def test_gradients_reach_the_top_layers_and_nothing_below(world, data) -> None:
    encoder = tiny_encoder()
    top = EncoderTop.from_model(encoder, 1)
    before = copy.deepcopy(top.state_dict())
    train_data, dev = data
    result = train(train_data, dev, **settings(max_steps=6), num_classes=world.num_classes,
                   encoder_top=top)  # fmt: skip
    trained = result.factorization.encoder_top
    assert trained is not None and trained is not top and len(trained.layers) == 1
    moved = [n for n, v in trained.state_dict().items() if not torch.equal(v, before[n])]
    assert len(moved) == len(before)  # every parameter of the top layer was trained
    assert all(torch.equal(v, before[n]) for n, v in top.state_dict().items())  # a copy trained
    # Below the top: the lower layers are not part of the model, and the cached states that
    # stand for them carry no gradient.
    names = [n for n, _ in result.factorization.named_parameters() if "encoder_top" in n]
    assert names and all(n.startswith("encoder_top.layers.0.") for n in names)
    assert all(p.grad is None for p in encoder.parameters())
    assert not train_data[("task0", "lang0")].subwords.states.requires_grad


def test_one_gradient_step_touches_exactly_the_top(world, data) -> None:
    """One ELBO gradient: non-zero for every parameter of the top's layer."""
    from pyro.infer import Trace_ELBO

    from pfpyro.model import ModelDescription

    top = EncoderTop.from_model(tiny_encoder(), 1)
    description = ModelDescription.for_sizes(
        ["task0", "task1"], ["lang0", "lang1", "lang2"], {"task0": 3, "task1": 3}, DIM,
        latent_dim=2, encoder_top=top.spec,
    )  # fmt: skip
    factorization, guide = description.build()
    factorization.encoder_top.load_state_dict(top.state_dict())
    batch = data[0][("task1", "lang0")].batch(range(4))
    Trace_ELBO().loss_and_grads(factorization, guide, "task1", "lang0", batch.inputs,
                                batch.mask, batch.labels)  # fmt: skip
    grads = {n: p.grad for n, p in factorization.encoder_top.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values()), [
        n for n, g in grads.items() if g is None or g.abs().sum() == 0
    ]


def test_resume_with_a_trained_top_is_exact(world, data, tmp_path: Path) -> None:
    top = EncoderTop.from_model(tiny_encoder(), 1)
    train_data, dev = data
    straight = tmp_path / "straight"
    train(train_data, dev, **settings(), num_classes=world.num_classes, encoder_top=top,
          out_dir=straight)  # fmt: skip
    cut = tmp_path / "cut"
    train(train_data, dev, **settings(max_steps=6), num_classes=world.num_classes,
          encoder_top=top, out_dir=cut)  # fmt: skip
    train(train_data, dev, **settings(), num_classes=world.num_classes, encoder_top=top,
          out_dir=cut, resume=True)  # fmt: skip
    a, b = ckpt.load_checkpoint(straight), ckpt.load_checkpoint(cut)
    assert a["step"] == b["step"] == 12
    top_names = [n for n in a["params"] if "encoder_top" in n]
    assert top_names
    for name in a["params"]:
        assert torch.equal(a["params"][name], b["params"][name]), name
    for name in a["best_params"]:
        assert torch.equal(a["best_params"][name], b["best_params"][name]), name


def test_a_run_with_a_trained_top_loads_and_predicts_the_same(world, data, tmp_path) -> None:
    top = EncoderTop.from_model(tiny_encoder(), 1)
    train_data, dev = data
    result = train(train_data, dev, **settings(), num_classes=world.num_classes,
                   encoder_top=top, out_dir=tmp_path)  # fmt: skip
    factorization, guide, _ = load_run(tmp_path)
    assert factorization.description.encoder_top == top.spec
    test = dev[("task1", "lang1")]
    for mode in ("plugin", "bma"):
        before = PFPredictor(result.factorization, result.guide, mode=mode, batch_size=3)
        after = PFPredictor(factorization, guide, mode=mode, batch_size=3)
        torch.manual_seed(0)
        p = before.predict_proba("task1", "lang1", test.inputs, test.mask)
        torch.manual_seed(0)
        q = after.predict_proba("task1", "lang1", test.inputs, test.mask)
        assert p.shape == (len(test), test.mask.shape[1], 3)
        assert torch.allclose(p, q, atol=1e-6)
    with pytest.raises(ConfigError, match="subword states"):
        after.predict_proba("task1", "lang1", test.features.float(), test.mask)


def test_a_top_model_needs_its_pretrained_weights(world, data) -> None:
    from pfpyro.model import ModelDescription

    top = EncoderTop.from_model(tiny_encoder(), 1)
    description = ModelDescription.for_sizes(
        ["task0", "task1"], ["lang0", "lang1", "lang2"], {"task0": 3, "task1": 3}, DIM,
        latent_dim=2, encoder_top=top.spec,
    )  # fmt: skip
    kwargs = settings()
    kwargs["model"] = description
    with pytest.raises(ConfigError, match="pretrained weights"):
        train(*data, **kwargs)


# -- baselines with a trained top --------------------------------------------------------------


def test_a_tagger_trains_its_own_top_and_predicts_from_subwords(data) -> None:
    top = EncoderTop.from_model(tiny_encoder(), 1)
    before = copy.deepcopy(top.state_dict())
    train_data, dev = data
    pairs = [t for (task, _), t in sorted(train_data.items()) if task == "task0"]
    tagger = LinearTagger.fit(pairs, [dev[("task0", "lang0")]], num_classes=3, top=top,
                              epochs=3, top_lr=1e-3)  # fmt: skip
    assert tagger.top is not None and tagger.top is not top
    assert any(not torch.equal(v, before[n]) for n, v in tagger.top.state_dict().items())
    assert all(torch.equal(v, before[n]) for n, v in top.state_dict().items())
    assert len(tagger.record.dev_loss) == len(tagger.record.train_loss) >= 1
    test = dev[("task0", "lang1")]
    probs = tagger.predict_proba(test.inputs, test.mask, batch_size=2)
    assert probs.shape == (len(test), test.mask.shape[1], 3)
    assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:2]))
    with pytest.raises(ConfigError, match="subword states"):
        tagger.predict_proba(test.features.float(), test.mask)


@pytest.mark.parametrize("name", ["ns", "ls", "jm", "bea"])
def test_every_baseline_takes_the_top(data, name: str) -> None:
    top = EncoderTop.from_model(tiny_encoder(), 1)
    train_data, dev = data
    extra = {"similarity": lambda a, b: 0.0} if name == "ns" else {}
    english = {t: train_data[(t, "lang0")] for t in ("task0", "task1")}
    predictor = fit_baseline(name, train_data, dev, top=top, epochs=2, english_train=english,
                             **extra)  # fmt: skip
    test = dev[("task1", "lang1")]
    probs = predictor.predict_proba("task1", "lang2", test.inputs, test.mask)
    assert probs.shape == (len(test), test.mask.shape[1], 3)
    assert torch.isfinite(probs).all()


def test_a_tagger_without_subwords_refuses_a_top(world) -> None:
    with pytest.raises(ValueError, match="needs the pairs' subwords"):
        LinearTagger.fit(world.train[("task0", "lang0")], num_classes=3,
                         top=EncoderTop.from_model(tiny_encoder(), 1))  # fmt: skip


# -- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoder", "train_section", "message"),
    [
        ({"train_top": -1}, {}, "integer ≥ 0"),
        ({"train_top": "one"}, {}, "train_top: expected int"),
        ({"train_top": 1, "precision": "int8"}, {}, "needs precision fp32"),
        ({"train_top": 1}, {"pairs_per_step": 4}, "pairs_per_step"),
    ],
)
def test_config_checks_of_train_top(tmp_path, encoder, train_section, message) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"encoder": encoder, "train": train_section}), "utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_the_encoder_top_study_configs_differ_only_in_train_top() -> None:
    """experiments/configs/encoder_top: the frozen and the trained side are one setting but
    for encoder.train_top (the comparison is on equal terms)."""
    folder = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "encoder_top"
    frozen = load_config(folder / "frozen.yaml").to_dict()
    top1 = load_config(folder / "top1.yaml").to_dict()
    assert frozen["encoder"]["train_top"] == 0 and top1["encoder"]["train_top"] == 1
    for config in (frozen, top1):
        for key in ("name", "source"):
            config.pop(key, None)
        config["encoder"].pop("train_top")
    assert frozen == top1
    assert top1["selection"]["mode"] == "zero-shot"

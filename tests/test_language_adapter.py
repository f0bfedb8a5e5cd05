"""The language effect shared by tasks (``adapter``) and PF started at JM (``model.init: jm``)."""

from __future__ import annotations

import pytest
import torch
from conftest import run_settings

from pfpyro.baselines.jm import JointMultilingual
from pfpyro.baselines.linear import LinearTagger
from pfpyro.config import ModelConfig, TrainConfig, load_config
from pfpyro.errors import ConfigError
from pfpyro.infer import PFPredictor, train
from pfpyro.model.adapter import LanguageAdapterHyperNetwork
from pfpyro.model.description import ModelDescription
from pfpyro.pipeline.fit import offset_scale_candidates, standard_error
from pfpyro.testing.synthetic import make_shared_effect_world, make_world

pytestmark = pytest.mark.usefixtures("one_thread")


def random_adapter(e=5, c=(3, 4), h=2, rank=2, scale=0.7):
    torch.manual_seed(0)
    net = LanguageAdapterHyperNetwork(h, [(e + 1) * k for k in c], feature_dim=e, rank=rank,
                                      offset_scale=scale)  # fmt: skip
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape))
    return net


def test_adapter_theta_is_the_classifier_of_the_adapted_features():
    """eq. 5.3: θ's logits on x equal W_iᵀ x' + b_i with x' = x + s (V diag(a) Uᵀ x + c)."""
    net, e, s = random_adapter(), 5, 0.7
    t, l, x = torch.randn(2), torch.randn(2), torch.randn(7, e)
    for task, classes in enumerate((3, 4)):
        theta, variance = net(t, l, task)
        assert theta.shape == variance.shape == ((e + 1) * classes,)
        weight, bias = theta[: e * classes].reshape(e, classes), theta[e * classes :]
        base = net.base[task] + net.task_offset[task](t)
        w_i, b_i = base[: e * classes].reshape(e, classes), base[e * classes :]
        adapted = x + s * ((x @ net.down) * net.gates(l)) @ net.up.T + s * net.shift(l)
        torch.testing.assert_close(x @ weight + bias, adapted @ w_i + b_i, rtol=1e-5, atol=1e-5)


def test_the_language_effect_is_shared_by_the_tasks():
    """Two languages differ in θ through the same adapted features for every task: a task
    that sees neither language still moves with them (what a per-task offset cannot do)."""
    net = random_adapter()
    t = torch.randn(2)
    l_a, l_b = torch.randn(2), torch.randn(2)
    for task in (0, 1):
        assert not torch.allclose(net(t, l_a, task)[0], net(t, l_b, task)[0])
    net.offset_scale = 0.0
    for task in (0, 1):
        torch.testing.assert_close(net(t, l_a, task)[0], net(t, l_b, task)[0])


def test_zero_offsets_leave_the_base_for_every_language():
    net = random_adapter()
    net.zero_offsets()
    for task in (0, 1):
        for _ in range(3):
            theta, _ = net(torch.randn(2), torch.randn(2), task)
            torch.testing.assert_close(theta, net.base[task].detach())


def test_adapter_rejects_widths_of_another_head():
    with pytest.raises(ConfigError, match=r"\(e \+ 1\)·c"):
        LanguageAdapterHyperNetwork(2, [13], feature_dim=5)
    with pytest.raises(ConfigError, match="rank"):
        LanguageAdapterHyperNetwork(2, [12], feature_dim=5, rank=0)


def test_shared_effect_world_is_drawn_by_the_adapter_itself():
    """The synthetic world's θ_ij are the true adapter's, so the layout can express the oracle."""
    world = make_shared_effect_world(num_langs=3, sentences=(4, 2, 2), seed=1)
    truth = world.hypernet
    for (task, lang), theta in world.theta.items():
        i, j = world.tasks.index(task), world.langs.index(lang)
        torch.testing.assert_close(theta, truth(world.t[i], world.l[j], i)[0])
    # and the languages matter: the same task's θ differs across languages
    assert not torch.allclose(world.theta["task1", "lang0"], world.theta["task1", "lang1"])


def jm_of(world, seen):
    taggers = {}
    for task in world.tasks:
        pairs = [world.train[p] for p in seen if p[0] == task]
        taggers[task] = LinearTagger.fit(pairs, num_classes=world.num_classes[task], epochs=5)
    return JointMultilingual(taggers, {task: () for task in world.tasks})


@pytest.mark.parametrize("hypernet", ["adapter", "residual"])
def test_pf_at_step_zero_is_jm(hypernet):
    """model.init: jm with no SVI step: PF's plug-in labels are JM's, probabilities within
    1e-6, although PF standardises with other moments than JM's per-task ones."""
    from pfpyro.model.anchor import start_at_joint_classifier

    world = make_world(2, 3, feature_dim=6, seed=3)
    seen = [p for p in world.pairs() if p != ("task1", "lang0")]
    jm = jm_of(world, seen)
    net = {"name": hypernet, "hidden_dims": []} if hypernet == "residual" else hypernet
    result = train(
        {p: world.train[p] for p in seen},
        {},
        TrainConfig(max_steps=0, progress=False),
        model=ModelConfig(latent_dim=2, guide="d", hypernet=net),
        num_classes=world.num_classes,
        tasks=world.tasks,
        langs=world.langs,
        init=lambda f: start_at_joint_classifier(f, jm.linear_classifiers()),
    )
    plugin = PFPredictor(result.factorization, result.guide, mode="plugin")
    for task, lang in world.pairs():
        data = world.test[task, lang]
        ours = plugin.predict_proba(task, lang, data.features, data.mask)
        theirs = jm.predict_proba(task, lang, data.features, data.mask)
        assert torch.equal(ours.argmax(-1)[data.mask], theirs.argmax(-1)[data.mask])
        torch.testing.assert_close(ours[data.mask], theirs[data.mask], rtol=0, atol=1e-6)


def test_a_given_start_is_scored_at_step_zero_and_may_be_kept():
    from pfpyro.model.anchor import start_at_joint_classifier

    world = make_world(2, 3, feature_dim=6, seed=3)
    seen = [p for p in world.pairs() if p != ("task1", "lang0")]
    jm = jm_of(world, seen)
    settings = run_settings(hypernet="residual", guide="d", max_steps=20, eval_every=10,
                            patience=5, progress=False, lr=0.5)  # fmt: skip
    result = train(
        {p: world.train[p] for p in seen},
        {("task1", "lang0"): world.dev["task1", "lang0"]},
        settings["config"],
        model=settings["model"],
        num_classes=world.num_classes,
        tasks=world.tasks,
        langs=world.langs,
        dev_role="zero-shot",
        init=lambda f: start_at_joint_classifier(f, jm.linear_classifiers()),
    )
    evals = [r for r in result.history if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 10, 20]
    assert result.best_score == max(r["dev_score"] for r in evals)


def test_init_jm_needs_a_base_per_task():
    from pfpyro.model.anchor import start_at_joint_classifier

    description = ModelDescription.for_sizes(["task0"], ["a"], {"task0": 3}, 4,
                                             hypernet="blocked", guide="d")  # fmt: skip
    factorization, _ = description.build()
    with pytest.raises(ConfigError, match="base classifier per task"):
        start_at_joint_classifier(factorization, {})


def test_offset_scale_candidates():
    adapter = ModelConfig(hypernet={"name": "adapter", "rank": 4})
    scales = [s for s, _ in offset_scale_candidates(adapter, [1.0, 0.1, 0.1])]
    assert scales == [0.1, 1.0]
    _, chosen = offset_scale_candidates(adapter, [0.3])[0]
    assert chosen.component("hypernet") == ("adapter", {"rank": 4, "offset_scale": 0.3})
    assert offset_scale_candidates(adapter, []) == [(None, adapter)]
    with pytest.raises(ConfigError, match="base per task"):
        offset_scale_candidates(ModelConfig(hypernet="shared"), [0.1])


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("model: {init: warm}", "model.init"),
        ("selection: {validation_cap: 0}", "validation_cap"),
        ("selection: {validation_cap: most}", "validation_cap"),
        ("selection: {offset_scales: [0, 0.1]}", "offset_scales"),
    ],
)
def test_config_errors_name_the_key(tmp_path, section, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\n{section}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        config = load_config(path)
        config.model.validate()


def test_the_validation_standard_error_is_stratified_by_task():
    assert standard_error({"pos/a": 0.5, "ner/b": 0.1}) is None  # one pair per task
    assert standard_error({"pos/a": 0.2, "pos/b": 0.4}) == pytest.approx(0.1)
    # POS near 0.6, NER near 0.1: the tasks' levels are not noise
    mixed = {"pos/a": 0.6, "pos/b": 0.62, "ner/c": 0.1, "ner/d": 0.12}
    assert standard_error(mixed) == pytest.approx((2 * 0.5**2 * 0.0002 / 2) ** 0.5)


def test_base_lr_zero_keeps_the_jm_anchor_and_moves_the_rest():
    from pfpyro.config import OptimConfig
    from pfpyro.model.anchor import start_at_joint_classifier

    world = make_world(2, 3, feature_dim=6, seed=3)
    seen = [p for p in world.pairs() if p != ("task1", "lang0")]
    jm = jm_of(world, seen)
    starts = {}

    def start(factorization):
        start_at_joint_classifier(factorization, jm.linear_classifiers())
        starts.update({k: v.detach().clone() for k, v in factorization.named_parameters()})

    result = train(
        {p: world.train[p] for p in seen},
        {},
        TrainConfig(max_steps=15, progress=False, optim=OptimConfig(lr=0.05, base_lr=0.0)),
        model=ModelConfig(latent_dim=2, guide="d", hypernet="adapter"),
        num_classes=world.num_classes,
        tasks=world.tasks,
        langs=world.langs,
        init=start,
    )
    after = dict(result.factorization.named_parameters())
    for name, value in starts.items():
        moved = not torch.equal(after[name].detach(), value)
        if name.startswith("hypernet.base."):
            assert not moved, name
    assert not torch.equal(after["hypernet.down"].detach(), starts["hypernet.down"])

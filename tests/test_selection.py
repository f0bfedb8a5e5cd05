"""Zero-shot model selection (issue 8, item 1): validation pairs, a sealed loader, the metric.

Selection carves validation pairs out of the seen pairs (plus selection-only languages) under
the zero-shot constraint, trains without them and scores them zero-shot by each task's headline
metric; the partition's held-out pairs are sealed meanwhile, so reading them raises.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pfpyro.config import ExperimentConfig, ModelConfig, SelectionConfig, load_config
from pfpyro.data.batch import PairTensors
from pfpyro.data.partition import constraint_violations, explicit_partition, validation_split
from pfpyro.encode.store import FeatureStore, PairData, SealedPairError
from pfpyro.errors import ConfigError
from pfpyro.evaluate import headline_score, score_pair
from pfpyro.infer import TrainResult
from pfpyro.pipeline.fit import PFSelection, best_overall, best_per_task, fit_pf
from pfpyro.pipeline.grid import run_unit
from pfpyro.pipeline.setup import Setup
from pfpyro.predictor import TaskRouter
from pfpyro.testing.synthetic import make_world

TASKS = ("pos", "ner", "dep")
LANGS = tuple("abcdefgh")


@st.composite
def pools(draw):
    pairs = draw(
        st.sets(st.tuples(st.sampled_from(TASKS), st.sampled_from(LANGS)), min_size=1, max_size=20)
    )
    extra = draw(st.sets(st.tuples(st.sampled_from(TASKS), st.just("x")), max_size=3))
    return sorted(pairs), sorted(extra), draw(st.integers(1, 4)), draw(st.integers(0, 99))


@settings(max_examples=200, deadline=None)
@given(pools())
def test_validation_pairs_keep_their_task_and_language_seen_elsewhere(pool):
    seen, extra, count, seed = pool
    try:
        split = validation_split(seen, count, seed, extra=extra)
    except ConfigError as error:
        assert "validation pair" in str(error)
        return
    assert len(split.heldout) == count
    assert set(split.heldout) | set(split.seen) == set(seen) | set(extra)
    assert not set(split.heldout) & set(split.seen)
    assert constraint_violations(split.heldout, split.seen) == []
    assert validation_split(seen, count, seed, extra=extra) == split  # seeded


def test_validation_takes_both_tasks_when_it_can():
    seen = [("pos", "a"), ("ner", "b"), ("pos", "c"), ("ner", "c")]
    extra = [("pos", "x"), ("ner", "x"), ("pos", "y"), ("ner", "y")]
    for seed in range(10):
        split = validation_split(seen, 2, seed, extra=extra)
        assert {task for task, _ in split.heldout} == {"pos", "ner"}


def test_a_single_validation_pair_comes_from_either_task_by_seed():
    # the seed decides which task takes the first turn: no task is validated by default
    seen = [("pos", "a"), ("ner", "b")]
    extra = [("pos", "en"), ("ner", "en")]
    tasks = {validation_split(seen, 1, seed, extra=extra).heldout[0][0] for seed in range(10)}
    assert tasks == {"pos", "ner"}


def test_the_paper_layout_needs_extra_languages():
    # one seen task per language: no pair can be validated without losing its language
    seen = [("pos", "a"), ("ner", "b"), ("pos", "c")]
    with pytest.raises(ConfigError, match="extra_languages"):
        validation_split(seen, 1, 0)
    split = validation_split(seen, 1, 0, extra=[("pos", "en"), ("ner", "en")])
    assert split.heldout[0][1] == "en"


def test_only_eligible_pairs_become_validation_pairs():
    seen = [("pos", "a"), ("ner", "a"), ("pos", "b"), ("ner", "b")]
    split = validation_split(seen, 1, 0, eligible=[("ner", "b")])
    assert split.heldout == (("ner", "b"),)


def test_ner_selection_scores_span_f1_not_token_accuracy():
    # O everywhere but one entity: token accuracy is high, span F1 is zero
    labels = torch.tensor([[6, 6, 6, 0, 6, 6, 6, 6]])  # 6 = O, 0 = B-LOC in label_set("ner")
    mask = torch.ones_like(labels, dtype=torch.bool)
    probs = torch.nn.functional.one_hot(torch.full_like(labels, 6), 7).float()
    scores = score_pair("ner", probs, labels, mask)
    assert scores["accuracy"] > 0.8
    assert headline_score("ner", probs, labels, mask) == scores["span_f1"] == 0.0
    pos_probs = torch.nn.functional.one_hot(labels, 17).float()
    assert headline_score("pos", pos_probs, labels, mask) == 1.0


# -- an experiment unit on synthetic data, with a store that records what it is asked --------
class FakeCatalog:
    def __init__(self, pairs, no_dev=()):
        self._pairs, self.no_dev = sorted(pairs), set(no_dev)

    def pairs(self):
        return list(self._pairs)

    def tasks(self):
        return sorted({t for t, _ in self._pairs})

    def files(self, task, lang, split, role):
        return () if (task, lang) in self.no_dev and split == "dev" else (Path("x"),)


class SyntheticStore(FeatureStore):
    """A FeatureStore whose pairs come from a synthetic world (labels fit both tasks)."""

    def __init__(self, catalog, world, names):
        super().__init__(catalog, encoder=None)
        self.world, self.names, self.asked = world, names, []

    def _load(self, task, lang, split, role, cap):
        self.asked.append((task, lang, split, sorted(self._sealed)))
        data = getattr(self.world, split)[self.names[task, lang]]
        return PairData([], PairTensors(data.features, data.labels, data.mask))


def synthetic_unit(tmp_path, model, patience=2, **selection):
    """A zero-shot unit's setup on a synthetic world of 2 tasks x 4 languages ("en" only for
    selection), with a store that records what it is asked; ``selection`` overrides."""
    world = make_world(2, 4, num_classes=4, feature_dim=6, sentences=(16, 8, 8), length=5)
    langs = ["a", "b", "c", "en"]
    names = {
        (task, lang): (world.tasks[i], world.langs[j])
        for i, task in enumerate(("pos", "ner"))
        for j, lang in enumerate(langs)
    }
    catalog = FakeCatalog(names)
    partition = explicit_partition([p for p in names if p[1] != "en"], [("ner", "a"), ("pos", "b")])
    settings = {"validation_pairs": 1, "baseline_epochs": [1, 3], **selection}
    config = ExperimentConfig(
        selection=SelectionConfig(mode="zero-shot", extra_languages=["en"], **settings),
        model=ModelConfig(latent_dim=2, hypernet={"name": "shared", "hidden_dims": []}),
        train={
            "batch_size": 4,
            "max_steps": 20,
            "eval_every": 5,
            "patience": patience,
            "progress": False,
        },
        models=[model],
    )
    config.data = dataclasses.replace(config.data, source_language="en")
    store = SyntheticStore(catalog, world, names)
    setup = Setup(config, tmp_path, catalog, store, langs[:3], [("p", partition)], False)
    return setup, partition, store


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("model", ["pf-d", "jm"])
def test_a_zero_shot_unit_never_reads_heldout_pairs_before_its_test(tmp_path, model):
    setup, partition, store = synthetic_unit(tmp_path, model)
    frame = run_unit(setup, "p", partition, 0, model)
    heldout = set(partition.heldout)
    # held-out pairs were read only for their test split, never while sealed
    reads = [(t, x, split) for t, x, split, _ in store.asked if (t, x) in heldout]
    assert reads and all(split == "test" for _, _, split in reads)
    assert all(not sealed for t, x, _, sealed in store.asked if (t, x) in heldout)
    # selection ran sealed, and read the dev data of a validation pair (of "c" or "en", the
    # languages with two pairs: the only ones that can lend one)
    assert any(
        sealed and lang in ("c", "en") and split == "dev" for _, lang, split, sealed in store.asked
    )
    metrics = dict(zip(frame["metric"], frame["value"], strict=False))
    assert metrics["selected"] >= 1 and metrics["epochs"] > 0
    assert 0.0 <= metrics["validation"] <= 1.0
    with store.sealing(heldout), pytest.raises(SealedPairError, match="held out"):
        store.get("ner", "a", "dev", "seen")


def test_zero_shot_study_configs_load_and_match_their_generator(tmp_path, monkeypatch):
    from conftest import load_script

    from pfpyro.config import load_config

    folder = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "zero_shot"
    module = load_script("experiments/configs/zero_shot/make_variants.py")
    monkeypatch.setattr(module, "HERE", tmp_path)
    module.main()
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.yaml"))
    assert written == sorted(p.relative_to(folder) for p in folder.rglob("*.yaml"))
    assert any(p.parent.name == "grid" for p in written)
    for name in written:
        assert (tmp_path / name).read_text() == (folder / name).read_text()
        config = load_config(folder / name)
        assert config.selection.mode == "zero-shot"
        assert not set(config.selection.extra_languages) & set(config.data.languages or [])


@pytest.mark.parametrize(("task", "classes"), [("pos", 17), ("ner", 7)])
def test_headline_score_is_score_pairs_headline(task, classes):
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(6, 9, classes, generator=generator).softmax(-1)
    labels = torch.randint(classes, (6, 9), generator=generator)
    mask = torch.rand(6, 9, generator=generator) > 0.2
    assert (
        headline_score(task, probs, labels, mask) == score_pair(task, probs, labels, mask)["score"]
    )


# -- stopping per task (issue 26, item 2) ------------------------------------------------------
def _selection_run(records):
    """A selection run's result with the history ``records``: (step, {"task/lang": score})."""
    history = [{"kind": "eval", "step": step, "dev": dev} for step, dev in records]
    best = max(history, key=lambda r: sum(r["dev"].values()) / len(r["dev"]))
    score = sum(best["dev"].values()) / len(best["dev"])
    return TrainResult(None, None, history, best["step"], score)


def test_each_task_takes_its_own_scale_and_length():
    arch = ModelConfig(hypernet={"name": "adapter", "rank": 2})
    small = _selection_run(
        [(0, {"pos/x": 0.50, "ner/y": 0.10}), (10, {"pos/x": 0.70, "ner/y": 0.05})]
    )
    large = _selection_run(
        [(0, {"pos/x": 0.50, "ner/y": 0.10}), (20, {"pos/x": 0.55, "ner/y": 0.40})]
    )
    selection = PFSelection([(0.3, arch, small), (1.0, arch, large)], {2.0: 10, 5.0: 20})
    overall = best_overall(selection)
    assert (overall.offset_scale, overall.step) == (1.0, 20)  # pooled 0.475 beats 0.375
    choices = best_per_task(selection, ["dep", "ner", "pos"])
    assert (choices["pos"].offset_scale, choices["pos"].step) == (0.3, 10)
    assert choices["pos"].pair_scores == {"pos/x": 0.70}
    assert (choices["ner"].offset_scale, choices["ner"].step) == (1.0, 20)
    assert choices["ner"].pair_scores == {"ner/y": 0.40}
    dep = choices["dep"]  # no validation pair of its own: the pooled choice
    assert (dep.offset_scale, dep.step, dep.pair_scores) == (1.0, 20, {})


def test_a_tie_goes_to_the_smaller_scale_and_the_fewer_steps():
    arch = ModelConfig(hypernet={"name": "adapter", "rank": 2})
    flat = _selection_run([(0, {"pos/x": 0.6}), (10, {"pos/x": 0.6})])
    selection = PFSelection([(0.3, arch, flat), (1.0, arch, flat)], {})
    choice = best_per_task(selection, ["pos"])["pos"]
    assert (choice.offset_scale, choice.step) == (0.3, 0)


def _per_task_setup(tmp_path, model):
    setup, partition, _ = synthetic_unit(
        tmp_path, model, patience=4, validation_pairs=2, baseline_epochs=[1, 3, 9], per_task=True
    )
    return setup, partition


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("model", ["pf-d", "jm"])
def test_a_per_task_unit_records_each_tasks_choice_and_scores_both_tasks(tmp_path, model):
    setup, partition = _per_task_setup(tmp_path, model)
    frame = run_unit(setup, "p", partition, 0, model)
    metrics = dict(zip(frame["metric"], frame["value"], strict=False))
    candidates = {1.0, 3.0, 9.0} if model == "jm" else {0.0, 5.0, 10.0, 15.0, 20.0}
    for task in ("pos", "ner"):
        assert metrics[f"selected:{task}"] in candidates
    assert 0.0 <= metrics["validation"] <= 1.0
    scored = frame[(frame.task != "all") & (frame.metric == "score")]
    assert set(scored.task) == {"pos", "ner"}  # the router sent each task to its own model


def test_per_task_selection_needs_zero_shot_selection(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("selection: {mode: seen-dev, per_task: true}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"per_task needs selection\.mode: zero-shot"):
        load_config(path)


def test_a_one_model_command_refuses_per_task_selection(tmp_path):
    setup, partition = _per_task_setup(tmp_path, "pf-d")
    with pytest.raises(ConfigError, match="chooses a model per task"):
        fit_pf(setup, "p", partition, setup.config.model, setup.config.train_config(0),
               tmp_path / "run", tmp_path / "select")  # fmt: skip


def test_the_task_router_names_the_tasks_it_has():
    with pytest.raises(KeyError, match="chosen for: pos"):
        TaskRouter({"pos": None}).predict_proba("ner", "a", torch.zeros(1, 1, 2), torch.ones(1, 1))

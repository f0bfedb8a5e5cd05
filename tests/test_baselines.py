"""The linear tagger and the four baselines on a synthetic multilingual world.

The world: word features are Gaussian; each (task, language) labels them by its own linear
map, ``W = shared_task_map + language_offset``, so languages share structure and a
classifier transfers best to a language whose offset is close to its own.
"""

from __future__ import annotations

import math

import pytest
import torch

from pfpyro.baselines import (
    BASELINES,
    BayesianEnsemble,
    JointMultilingual,
    LargestSource,
    LinearConfig,
    LinearTagger,
    NearestSource,
    fit_baseline,
)
from pfpyro.baselines.ls import cap_source
from pfpyro.baselines.ns import pair_seed
from pfpyro.data.batch import PairTensors
from pfpyro.data.tasks import label_set
from pfpyro.errors import ConfigError
from pfpyro.evaluate import token_accuracy
from pfpyro.predictor import TokenPredictor

E = 10
CONFIG = LinearConfig(epochs=12, lr=0.05, batch_size=16, patience=3)


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensor ops: one thread avoids oversubscription on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def labelled(weights: torch.Tensor, n: int, seed: int, noise: float = 0.3) -> PairTensors:
    """``n`` sentences of 3-12 words; labels are argmax of ``h W`` plus a little Gumbel noise."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 13, (n,), generator=g)
    h = torch.randn(int(lengths.sum()), E, generator=g)
    u = torch.rand(len(h), weights.shape[1], generator=g).clamp(1e-9, 1 - 1e-9)
    labels = (h @ weights - noise * torch.log(-torch.log(u))).argmax(-1)
    sizes = lengths.tolist()
    return PairTensors.from_arrays(list(h.split(sizes)), [y.tolist() for y in labels.split(sizes)])


class World:
    """Task maps and language offsets; ``near`` gives a language almost the same offset."""

    def __init__(self, seed: int = 0):
        self.g = torch.Generator().manual_seed(seed)
        self.shared = {
            t: 2.0 * torch.randn(E, len(label_set(t)), generator=self.g) for t in ("pos", "ner")
        }
        self.offset: dict[str, torch.Tensor] = {}

    def language(self, lang: str, scale: float = 1.5, near: str | None = None) -> None:
        base = self.offset[near] if near else torch.zeros(E, 17)
        self.offset[lang] = base + scale * torch.randn(E, 17, generator=self.g)

    def weights(self, task: str, lang: str) -> torch.Tensor:
        return self.shared[task] + self.offset[lang][:, : len(label_set(task))]

    def pair(self, task: str, lang: str, n: int, split: str) -> PairTensors:
        return labelled(self.weights(task, lang), n, seed=pair_seed(7, task, lang, split))


@pytest.fixture(scope="module")
def world():
    """Seen: aa, bb, cc (both tasks); held out: tt, a near twin of bb; English for LS."""
    w = World()
    for lang in ("aa", "bb", "cc", "en"):
        w.language(lang)
    w.language("tt", scale=0.15, near="bb")
    train = {(t, l): w.pair(t, l, 60, "train") for t in ("pos", "ner") for l in ("aa", "bb", "cc")}
    dev = {(t, l): w.pair(t, l, 20, "dev") for t in ("pos", "ner") for l in ("aa", "bb", "cc")}
    english = {"pos": w.pair("pos", "en", 400, "train"), "ner": w.pair("ner", "en", 400, "train")}
    test = {t: w.pair(t, "tt", 80, "test") for t in ("pos", "ner")}
    return w, train, dev, english, test


def accuracy(predictor, task: str, lang: str, data: PairTensors) -> float:
    probs = predictor.predict_proba(task, lang, data.features.float(), data.mask)
    return token_accuracy(data.labels, probs.argmax(-1), data.mask)


def majority_rate(data: PairTensors) -> float:
    labels = data.labels[data.mask]
    return float(torch.bincount(labels).max()) / labels.numel()


# --- the linear tagger -------------------------------------------------------------------


def test_linear_tagger_learns_a_language(world):
    w, train, dev, _, _ = world
    tagger = LinearTagger.fit(
        train[("pos", "aa")], dev[("pos", "aa")], num_classes=17, config=CONFIG
    )
    held = w.pair("pos", "aa", 60, "test")
    probs = tagger.predict_proba(held.features.float(), held.mask)
    assert probs.shape == (*held.mask.shape, 17)
    assert torch.allclose(probs.sum(-1), torch.ones(held.mask.shape))
    acc = token_accuracy(held.labels, probs.argmax(-1), held.mask)
    assert acc > 0.6 and acc > majority_rate(held) + 0.3


def test_zero_weights_give_ln_c_per_word_whatever_the_batch():
    # The loss is a mean over real words, divided once: an untrained tagger scores ln c.
    data = labelled(torch.randn(E, 7), 30, seed=1)
    tagger = LinearTagger(E, 7)
    assert tagger.mean_loss(data) == pytest.approx(math.log(7), rel=1e-6)
    record = LinearTagger.fit(data, num_classes=7, config=CONFIG, batch_size=4, max_steps=1).record
    # one step of batch 4: its loss, before the update, was exactly ln 7
    assert record.steps == 1 and record.train_loss[0] == pytest.approx(math.log(7), rel=1e-5)


def test_padding_does_not_change_training():
    data = labelled(torch.randn(E, 5), 40, seed=2)
    padded = PairTensors(
        torch.cat([data.features, torch.randn(len(data), 4, E).half()], dim=1),
        torch.cat([data.labels, torch.full((len(data), 4), 3)], dim=1),
        torch.cat([data.mask, torch.zeros(len(data), 4, dtype=torch.bool)], dim=1),
    )
    a = LinearTagger.fit(data, num_classes=5, config=CONFIG, seed=3)
    b = LinearTagger.fit(padded, num_classes=5, config=CONFIG, seed=3)
    assert torch.allclose(a.linear.weight, b.linear.weight, atol=1e-6)


def test_linear_tagger_is_seeded_and_stops_early():
    data = labelled(torch.randn(E, 5), 40, seed=4)
    dev = labelled(torch.randn(E, 5), 20, seed=5)  # another map: dev loss soon rises
    a = LinearTagger.fit(data, dev, num_classes=5, config=CONFIG, seed=1, epochs=30, patience=2)
    b = LinearTagger.fit(data, dev, num_classes=5, config=CONFIG, seed=1, epochs=30, patience=2)
    c = LinearTagger.fit(data, dev, num_classes=5, config=CONFIG, seed=2, epochs=30, patience=2)
    assert torch.equal(a.linear.weight, b.linear.weight)
    assert not torch.equal(a.linear.weight, c.linear.weight)
    rec = a.record
    assert len(rec.dev_loss) < 30  # stopped early
    assert rec.best_epoch == min(range(len(rec.dev_loss)), key=rec.dev_loss.__getitem__)
    assert len(rec.dev_loss) == rec.best_epoch + 1 + 2  # patience epochs after the best
    assert a.mean_loss(dev) == pytest.approx(rec.dev_loss[rec.best_epoch], rel=1e-5)


def test_linear_tagger_refuses_bad_labels():
    data = labelled(torch.randn(E, 5), 5, seed=6)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        LinearTagger.fit(data, num_classes=3, config=CONFIG)


# --- NS ------------------------------------------------------------------------------------


def test_ns_picks_the_most_similar_language_and_transfers_best(world):
    _, train, dev, _, test = world
    stub = {"aa": 0.2, "bb": 0.9, "cc": 0.5}
    ns = NearestSource.fit(train, dev, similarity=lambda t, s: stub[s], config=CONFIG)
    assert ns.nearest_source("pos", "tt") == "bb"
    good = accuracy(ns, "pos", "tt", test["pos"])
    assert ns.classifiers.trained == (("pos", "bb"),)  # trained on demand only
    wrong = NearestSource(ns.classifiers, similarity=lambda t, s: {"aa": 1.0}.get(s, 0.0))
    assert wrong.nearest_source("pos", "tt") == "aa"
    assert good > accuracy(wrong, "pos", "tt", test["pos"]) + 0.1
    assert good > majority_rate(test["pos"]) + 0.3
    assert ns.classifiers.get("pos", "bb") is ns.classifiers.get("pos", "bb")  # memoised


def test_ns_never_picks_the_target_itself_and_breaks_ties_alphabetically(world):
    _, train, dev, _, _ = world
    ns = NearestSource.fit(train, dev, similarity=lambda t, s: 1.0, config=CONFIG)
    assert ns.nearest_source("ner", "bb") == "aa"
    assert ns.nearest_source("ner", "aa") == "bb"
    with pytest.raises(ConfigError, match="not a seen pair"):
        ns.classifiers.get("ner", "tt")


def test_ns_with_uriel_prefers_a_relative():
    # Real URIEL similarity: of the seen {hu, tr, ko, en}, Estonian's nearest is Hungarian.
    data = labelled(torch.randn(E, 17), 5, seed=8)
    train = {("pos", lang): data for lang in ("hu", "tr", "ko", "en")}
    ns = NearestSource.fit(train, config=CONFIG)
    assert ns.nearest_source("pos", "et") == "hu"
    with pytest.raises(ConfigError, match="xx"):
        ns.nearest_source("pos", "xx")


# --- LS ------------------------------------------------------------------------------------


def test_ls_uses_english_capped_for_ner_only(world):
    _, train, dev, english, test = world
    ls = LargestSource.fit(train, dev, english_train=english, config=CONFIG, seed=0)
    seen_ner = sum(len(t) for (task, _), t in train.items() if task == "ner")
    assert seen_ner == 180 < len(english["ner"])
    assert ls.sizes == {"ner": seen_ner, "pos": len(english["pos"])}
    # The NER classifier is exactly the one trained on the seeded cap of the English data.
    capped = cap_source(english["ner"], seen_ner, seed=pair_seed(0, "cap", "ner"))
    again = LinearTagger.fit(capped, num_classes=7, config=CONFIG, seed=pair_seed(0, "ner", "en"))
    assert torch.equal(ls.classifiers["ner"].linear.weight, again.linear.weight)
    # It is English's: same predictions whatever the target is called.
    x, m = test["pos"].features.float(), test["pos"].mask
    assert torch.equal(ls.predict_proba("pos", "tt", x, m), ls.predict_proba("pos", "zz", x, m))
    assert accuracy(ls, "pos", "tt", test["pos"]) > majority_rate(test["pos"]) + 0.1


def test_cap_source_by_sentences_and_words(world):
    _, _, _, english, _ = world
    data = english["pos"]
    a = cap_source(data, 50, seed=1)
    assert len(a) == 50 and torch.equal(a.features, cap_source(data, 50, seed=1).features)
    assert not torch.equal(a.features, cap_source(data, 50, seed=2).features)
    b = cap_source(data, 300, unit="words", seed=1)
    assert 300 - 12 < b.num_words <= 300
    assert len(cap_source(data, 10**6, seed=1)) == len(data)
    with pytest.raises(ConfigError, match="leaves no English"):
        cap_source(data, 0, seed=1)


def test_ls_needs_english():
    with pytest.raises(ConfigError, match="English"):
        LargestSource.fit({("pos", "aa"): labelled(torch.randn(E, 17), 3, 0)}, english_train=None)


# --- JM ------------------------------------------------------------------------------------


def test_jm_pools_the_seen_languages(world):
    _, train, dev, _, test = world
    jm = JointMultilingual.fit(train, dev, config=CONFIG, seed=0)
    assert jm.languages == {"ner": ("aa", "bb", "cc"), "pos": ("aa", "bb", "cc")}
    keys = [("pos", lang) for lang in ("aa", "bb", "cc")]
    pooled = LinearTagger.fit(
        [train[k] for k in keys],
        [dev[k] for k in keys],
        num_classes=17,
        config=CONFIG,
        seed=pair_seed(0, "pos", "joint"),
    )
    assert torch.equal(jm.classifiers["pos"].linear.weight, pooled.linear.weight)
    # at least one epoch over all 180 pooled sentences
    assert jm.classifiers["pos"].record.steps >= math.ceil(180 / CONFIG.batch_size)
    assert accuracy(jm, "pos", "tt", test["pos"]) > majority_rate(test["pos"]) + 0.2


# --- BEA -----------------------------------------------------------------------------------


def test_bea_ensembles_the_sources_on_the_target(world):
    _, train, dev, _, test = world
    bea = BayesianEnsemble.fit(train, dev, config=CONFIG, steps=150)
    data = test["ner"]
    probs = bea.predict_proba("ner", "tt", data.features.float(), data.mask)
    assert probs.shape == (*data.mask.shape, 7)
    assert torch.allclose(probs.sum(-1), torch.ones(data.mask.shape), atol=1e-5)
    fit = bea.fits[("ner", "tt")]
    assert fit.sources == ("aa", "bb", "cc") and fit.accuracy.shape == (3,)
    # The fitted reliabilities rank the sources as their true accuracies on the target do.
    votes = bea.votes("ner", "tt", data.features.float(), data.mask)
    truth = data.labels[data.mask]
    true_acc = (votes == truth.unsqueeze(-1)).float().mean(0)
    assert fit.accuracy.argmax() == true_acc.argmax()
    bea_acc = token_accuracy(data.labels, probs.argmax(-1), data.mask)
    assert bea_acc > majority_rate(data) and bea_acc >= float(true_acc.mean())


# --- the registry --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_fit_baseline_builds_every_baseline_with_one_call(world, name):
    _, train, dev, english, test = world
    kw = {"similarity": lambda t, s: {"bb": 1.0}.get(s, 0.0)} if name == "ns" else {}
    if name == "bea":
        kw["steps"] = 60
    model = fit_baseline(name, train, dev, english_train=english, seed=0, config=CONFIG, **kw)
    assert isinstance(model, TokenPredictor)
    data = test["pos"]
    probs = model.predict_proba("pos", "tt", data.features.float(), data.mask)
    assert probs.shape == (*data.mask.shape, 17)
    assert torch.allclose(probs[data.mask].sum(-1), torch.ones(data.num_words), atol=1e-5)
    assert accuracy(model, "pos", "tt", data) > majority_rate(data) + 0.1


def test_fit_baseline_takes_flat_classifier_settings_and_pair_keys(world):
    _, train, dev, english, _ = world
    keyed = {(task, "en"): tensors for task, tensors in english.items()}
    ls = fit_baseline("ls", train, dev, english_train=keyed, epochs=1, batch_size=1000)
    # one epoch of one batch per task: the flat fields reached the classifiers
    assert {t: c.record.steps for t, c in ls.classifiers.items()} == {"ner": 1, "pos": 1}
    assert ls.sources == {"ner": "en", "pos": "en"}
    with pytest.raises(ConfigError, match="takes no setting 'steps'"):
        fit_baseline("jm", train, dev, steps=5)
    with pytest.raises(ConfigError, match="epochs"):
        fit_baseline("jm", train, dev, epochs=0)


def test_fit_baseline_refuses_unknown_names(world):
    _, train, dev, _, _ = world
    with pytest.raises(ConfigError, match="unknown baseline 'xyz'; known: bea, jm, ls, ns"):
        fit_baseline("xyz", train, dev)

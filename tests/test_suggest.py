"""What to label next (issue 24): acquisition scores, `pfpyro suggest`, `--pairs`."""

from __future__ import annotations

import math

import pytest
import torch

import pfpyro
from pfpyro.api import FittedPosterior
from pfpyro.cli import main as pfpyro_cli
from pfpyro.data.readers import read_pool
from pfpyro.errors import DataFormatError
from pfpyro.infer import PFPredictor
from pfpyro.infer.acquisition import (
    expected_gain,
    fixed_samples,
    pool_information,
    ranking,
    score_pool,
    word_information,
)
from pfpyro.infer.pair_posterior import FewShotSettings, fit_pair
from pfpyro.testing.synthetic import HashEncoder, make_world, train_run_folder

pytestmark = pytest.mark.usefixtures("one_thread")

HELD = [("task1", "lang2"), ("task0", "lang3")]
FEATURE_DIM = 6


@pytest.fixture(scope="module")
def world():
    return make_world(2, 4, num_classes=4, feature_dim=FEATURE_DIM, latent_dim=3,
                      sentences=(40, 10, 30), length=8, seed=7)  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(world, tmp_path_factory):
    """A tiny PF-lr run folder (checkpoint, model.json, run.json) without the HELD pairs."""
    out = tmp_path_factory.mktemp("run")
    seen = [p for p in world.pairs() if p not in HELD]
    return train_run_folder(world, seen, out, max_steps=60, eval_every=30)


@pytest.fixture
def fake_encoder(monkeypatch):
    """The CLI's path without a real encoder: word features from each word's hash."""
    monkeypatch.setattr(FittedPosterior, "encoder", lambda self: HashEncoder(FEATURE_DIM))


def pool_sentences(world, pair, n=12):
    test = world.test[pair]
    words = [tuple(f"w{k}_{i}" for i in range(int(test.mask[k].sum()))) for k in range(n)]
    return words, test.features[:n].float()


# -- the scores ----------------------------------------------------------------------------------
def test_bald_is_zero_for_one_repeated_sample_and_lies_between_zero_and_entropy():
    torch.manual_seed(0)
    probs = torch.randn(7, 3, 5, 4).mul(2).softmax(-1)
    entropy, bald = word_information(probs)
    assert bool((bald >= 0).all()) and bool((bald <= entropy + 1e-12).all())
    assert float(bald.max()) > 0.01  # samples that disagree carry information
    repeated = probs[:1].expand(7, -1, -1, -1)
    h, zero = word_information(repeated)
    assert float(zero.abs().max()) < 1e-12
    assert torch.allclose(h, word_information(probs[:1])[0])
    # two confident samples that disagree: H[mean] = ln 2, mean H = 0, so BALD = ln 2
    opposite = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]])
    assert word_information(opposite)[1].item() == pytest.approx(math.log(2))


def test_expected_gain_sums_the_k_best_sentences():
    bald = torch.tensor([0.1, 0.5, 0.3, 0.0], dtype=torch.float64)
    assert expected_gain(bald, bald, 2)[0] == pytest.approx(0.8)
    assert expected_gain(bald, bald, 10)[0] == pytest.approx(0.9)
    with pytest.raises(pfpyro.errors.ConfigError, match="k must be at least 1"):
        expected_gain(bald, bald, 0)


def test_pool_scores_on_a_trained_run_rank_in_score_order(world, run_dir):
    posterior = pfpyro.load(run_dir)
    words, features = pool_sentences(world, HELD[0])
    entropy, bald = posterior.pool_information(*HELD[0], words, num_samples=20, features=features)
    assert bool((bald >= 0).all()) and bool((bald <= entropy + 1e-9).all())
    assert float(bald.min()) > 0  # a wide posterior: every sentence tells it something
    frame = posterior.suggest(*HELD[0], words, budget=5, num_samples=20, features=features)
    assert list(frame["rank"]) == [1, 2, 3, 4, 5]
    assert list(frame["index"]) == ranking(bald)[:5].tolist()
    assert list(frame["score"]) == sorted(frame["score"], reverse=True)
    assert frame["score"].iloc[0] == pytest.approx(float(bald.max()))
    assert [words[k] for k in frame["index"]] == list(frame["words"])
    by_entropy = posterior.suggest(*HELD[0], words, strategy="entropy", num_samples=20,
                                   features=features)  # fmt: skip
    assert list(by_entropy["index"]) == ranking(entropy).tolist()


def test_the_same_samples_score_every_chunk(world, run_dir):
    posterior = pfpyro.load(run_dir)
    _, features = pool_sentences(world, HELD[0])
    mask = world.test[HELD[0]].mask[:12]
    predictor = PFPredictor(posterior.factorization, posterior.guide, mode="bma")
    results = []
    for size in (3, 64):
        torch.manual_seed(5)
        sampler = fixed_samples(predictor, *HELD[0], 10)
        results.append(pool_information(sampler, features, mask, batch_size=size))
    assert torch.allclose(results[0][1], results[1][1], atol=1e-10)
    assert torch.allclose(results[0][0], results[1][0], atol=1e-10)


def test_random_is_seeded_and_differs_from_bald(world, run_dir):
    posterior = pfpyro.load(run_dir)
    words, features = pool_sentences(world, HELD[0])
    a = posterior.suggest(*HELD[0], words, strategy="random", seed=1)
    b = posterior.suggest(*HELD[0], words, strategy="random", seed=1)
    c = posterior.suggest(*HELD[0], words, strategy="random", seed=2)
    bald = posterior.suggest(*HELD[0], words, num_samples=20, features=features)
    assert list(a["index"]) == list(b["index"])
    assert list(a["index"]) != list(c["index"])
    assert list(a["index"]) != list(bald["index"])
    assert sorted(a["index"]) == list(range(len(words)))
    assert torch.equal(score_pool(None, None, torch.zeros(4, 1), "random", seed=3),
                       score_pool(None, None, torch.zeros(4, 1), "random", seed=3))  # fmt: skip


def test_a_few_shot_posterior_samples_its_own_classifier(world, run_dir):
    posterior = pfpyro.load(run_dir)
    data = world.train[HELD[0]].batch(torch.arange(10))
    pair = fit_pair(posterior.factorization, posterior.guide, *HELD[0], data,
                    FewShotSettings(steps=30))  # fmt: skip
    features = world.test[HELD[0]].features[:4].float()
    at_mean = pair.theta_loc.expand(3, 1, 1, -1)
    assert torch.allclose(pair.sample_probs(features, at_mean)[0], pair.probs(features))
    theta = pair.theta_samples(8)
    assert theta.shape == (8, 1, 1, pair.theta_loc.shape[-1])
    _, bald = word_information(pair.sample_probs(features, theta))
    assert float(bald.max()) > 0


# -- the command -----------------------------------------------------------------------------
def test_suggest_writes_the_ranked_pool_with_its_line_numbers(run_dir, tmp_path, fake_encoder):
    pool = tmp_path / "pool.txt"
    sentences = ["a b c", "", "d e", "f g h i", "j", "k l m"]
    pool.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    out = tmp_path / "todo.tsv"
    args = ["suggest", str(run_dir), str(pool), "--task", "task1", "--lang", "lang2"]
    options = ["--budget", "3", "--samples", "10", "--quiet"]
    assert pfpyro_cli([*args, *options, "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "rank\tline\tscore\tsentence"
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    scores = [float(r[2]) for r in rows]
    assert scores == sorted(scores, reverse=True) and scores[-1] >= 0
    for _, line, _, sentence in rows:  # each row points at its own line of the pool
        assert sentences[int(line) - 1] == sentence
    # the same pool as CoNLL-U with unlabelled words ranks the same sentences
    conllu = tmp_path / "pool.conllu"
    word = "{}\t{}" + "\t_" * 8 + "\n"
    blocks = [
        "# sent\n" + "".join(word.format(i, w) for i, w in enumerate(s.split(), 1))
        for s in sentences
        if s
    ]
    conllu.write_text("\n".join(blocks) + "\n", encoding="utf-8")
    again = tmp_path / "again.tsv"
    code = pfpyro_cli([*args[:2], str(conllu), *args[3:], *options, "--out", str(again)])
    assert code == 0
    ranked = [line.split("\t")[3] for line in again.read_text().splitlines()[1:]]
    assert ranked == [r[3] for r in rows]


def test_suggest_errors_are_one_line_and_name_what_is_wrong(run_dir, tmp_path, capsys):
    pool = tmp_path / "pool.txt"
    pool.write_text("a b\n", encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tword\t_\n", encoding="utf-8")
    base = ["suggest", str(run_dir), "--task", "task1", "--lang"]
    cases = [
        ([*base, "xx", str(pool)], "unknown language 'xx'"),
        ([*base, "lang2", str(empty)], f"{empty}: expected at least one sentence"),
        ([*base, "lang2", str(bad)], f"{bad}:1: expected 10 tab-separated CoNLL-U columns"),
        ([*base, "lang2", str(pool), "--budget", "0"], "--budget must be a positive"),
        ([*base, "lang2", str(pool), "--samples", "1"], "need at least 2"),
        (["suggest", str(tmp_path), str(pool), "--task", "task1", "--lang", "lang2"],
         "no posterior samples to draw"),
    ]  # fmt: skip
    for args, message in cases:
        assert pfpyro_cli(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_read_pool_ignores_labels_and_skips_multiword_ranges(tmp_path):
    iob = tmp_path / "pool.iob"
    iob.write_text("Dakar B-LOC\nla O\n\nyow O\n", encoding="utf-8")
    assert read_pool(iob) == [(1, ("Dakar", "la")), (4, ("yow",))]
    conllu = tmp_path / "p.conllu"
    conllu.write_text("1-2\tau\t_\t_\t_\t_\t_\t_\t_\t_\n1\tà\t_\t_\t_\t_\t_\t_\t_\t_\n"
                      "2\tle\tDET\t_\t_\t_\t_\t_\t_\t_\n", encoding="utf-8")  # fmt: skip
    assert read_pool(conllu) == [(1, ("à", "le"))]
    with pytest.raises(DataFormatError, match="a token in the first column"):
        (tmp_path / "x.iob").write_text(" O\n", encoding="utf-8")
        read_pool(tmp_path / "x.iob")


def test_pairs_ranks_every_unseen_pair(run_dir, tmp_path, capsys, fake_encoder):
    pools = []
    for lang in ("lang2", "lang3"):
        path = tmp_path / f"{lang}.txt"
        path.write_text("".join(f"{lang} s{k} t{k} u\n" for k in range(6)), encoding="utf-8")
        pools.append(f"{lang}={path}")
    out = tmp_path / "pairs.tsv"
    args = ["suggest", str(run_dir), "--pairs", *pools, "--k", "3", "--samples", "10"]
    assert pfpyro_cli([*args, "--out", str(out), "--quiet"]) == 0
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    assert lines[0] == ["rank", "task", "lang", "gain", "pool_entropy", "pool_size"]
    assert {(r[1], r[2]) for r in lines[1:]} == set(HELD) and len(lines) == 3
    gains = [float(r[3]) for r in lines[1:]]
    assert gains == sorted(gains, reverse=True) and gains[-1] > 0
    assert all(r[5] == "6" for r in lines[1:])
    capsys.readouterr()
    assert pfpyro_cli(["suggest", str(run_dir), "--pairs", pools[0], "--quiet"]) == 2
    assert "no pool for the unseen pairs task0/lang3" in capsys.readouterr().err

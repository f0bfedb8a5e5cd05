"""The annotation loop's update (issue 24, item 4): `pfpyro update` fits an unseen pair's
few-shot posterior on a file of one's own labels, and predict and suggest use it."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import zlib

import pytest
import torch

import pfpyro
from pfpyro.api import FittedPosterior
from pfpyro.cli import main as pfpyro_cli
from pfpyro.data.batch import PairTensors
from pfpyro.data.tasks import TaskSpec, add_tasks, forget_task
from pfpyro.errors import ConfigError
from pfpyro.infer import PFPredictor
from pfpyro.infer.acquisition import fixed_samples, pool_information
from pfpyro.infer.pair_posterior import FewShotPredictor, FewShotSettings, fit_pair
from pfpyro.infer.pair_store import load_pair
from pfpyro.testing.synthetic import HashEncoder, make_world, train_run_folder

pytestmark = pytest.mark.usefixtures("one_thread", "fake_encoder")

FEATURE_DIM = 6
SPANS = TaskSpec("task0", ("O", "B-X", "I-X", "B-Y"), outside="O")  # read from IOB files
TAGS = TaskSpec("task1", ("A", "B", "C", "D"), conllu="upos")  # read from CoNLL-U files
NER, POS = ("task0", "lang3"), ("task1", "lang2")  # the run's unseen pairs
STEPS = ["--steps", "40", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def synthetic_tasks():
    """Label sets for the synthetic tasks, so that the readers can check a file's labels."""
    add_tasks([SPANS, TAGS], "test_update")
    yield
    for spec in (SPANS, TAGS):
        forget_task(spec.task)


@pytest.fixture(scope="module")
def world(synthetic_tasks):
    return make_world(2, 4, num_classes=4, feature_dim=FEATURE_DIM, latent_dim=3,
                      sentences=(40, 10, 10), length=8, seed=7)  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(world, tmp_path_factory):
    """A tiny PF-lr run folder (checkpoint, model.json, run.json) without NER and POS."""
    out = tmp_path_factory.mktemp("run")
    seen = [p for p in world.pairs() if p not in (NER, POS)]
    return train_run_folder(world, seen, out, max_steps=60, eval_every=30)


@pytest.fixture
def fake_encoder(monkeypatch):
    monkeypatch.setattr(FittedPosterior, "encoder", lambda self: HashEncoder(FEATURE_DIM))


@pytest.fixture
def run_copy(run_dir, tmp_path):
    """A fresh copy of the run for each test, so that no test sees another's pairs/."""
    return shutil.copytree(run_dir, tmp_path / "run")


def sentences(n: int, lang: str, first: int = 0) -> list[tuple[str, ...]]:
    return [tuple(f"{lang}_{k}_{i}" for i in range(3 + k % 4)) for k in range(first, first + n)]


def labels_of(words: list[tuple[str, ...]], spec: TaskSpec) -> list[list[str]]:
    """A label per word, fixed by the word (so a fit has something to learn)."""
    return [[spec.labels[zlib.crc32(w.encode()) % 4] for w in s] for s in words]


def write_iob(path, words, labels) -> None:
    blocks = [
        "".join(f"{w} {t}\n" for w, t in zip(s, y, strict=True))
        for s, y in zip(words, labels, strict=True)
    ]
    path.write_text("\n".join(blocks), encoding="utf-8")


def write_conllu(path, words, labels) -> None:
    line = "{}\t{}\t_\t{}" + "\t_" * 6 + "\n"
    blocks = [
        "".join(line.format(i, w, t) for i, (w, t) in enumerate(zip(s, y, strict=True), 1))
        for s, y in zip(words, labels, strict=True)
    ]
    path.write_text("\n".join(blocks), encoding="utf-8")


def direct(run_dir, pair, words, labels, steps=40):
    """fit_pair and FewShotPredictor by hand, on the words as the (fake) encoder gives them."""
    run = pfpyro.load(run_dir)
    names = run.label_names(pair[0])
    ids = [[names.index(t) for t in y] for y in labels]
    data = PairTensors.from_arrays(HashEncoder(FEATURE_DIM).encode(words), ids)
    posterior = fit_pair(run.factorization, run.guide, *pair, data, FewShotSettings(steps=steps))
    return run, posterior


def encoded(words):
    tensors = PairTensors.from_arrays(HashEncoder(FEATURE_DIM).encode(words))
    return tensors.features.float(), tensors.mask


def read_tagged(path) -> tuple[list[str], list[float]]:
    """Labels and probabilities of `pfpyro predict`'s output."""
    rows = [line.split("\t") for line in path.read_text().splitlines() if "\t" in line]
    return [r[1] for r in rows], [float(r[2]) for r in rows]


# -- the command ------------------------------------------------------------------------------
def test_update_saves_the_pair_and_predict_uses_it(run_copy, tmp_path, capsys):
    words = sentences(12, "lang3")
    labels = labels_of(words, SPANS)
    path = tmp_path / "mine.iob"
    write_iob(path, words, labels)
    args = ["update", str(run_copy), str(path), "--task", "task0", "--lang", "lang3"]
    assert pfpyro_cli([*args, *STEPS]) == 0
    saved = run_copy / "pairs" / "task0.lang3.pt"
    assert f"wrote {saved}" in capsys.readouterr().out
    record = json.loads(saved.with_suffix(".json").read_text(encoding="utf-8"))
    assert record["labels"] == str(path) and record["format"] == "iob"
    assert record["labels_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["k"] == 12 and record["words"] == sum(map(len, words))
    assert (record["steps"], record["lr"], record["seed"]) == (40, 0.01, 0)
    assert sorted(p.name for p in saved.parent.iterdir()) == ["task0.lang3.json", "task0.lang3.pt"]

    # predictions: those of fit_pair and FewShotPredictor by hand, not the zero-shot ones
    test = sentences(6, "lang3", first=50)
    features, mask = encoded(test)
    run, posterior = direct(run_copy, NER, words, labels)
    expected = FewShotPredictor(run.factorization, run.guide, {NER: posterior})
    expected = expected.predict_proba(*NER, features, mask)
    zero_shot = PFPredictor(run.factorization, run.guide).predict_proba(*NER, features, mask)
    assert not torch.allclose(expected, zero_shot, atol=1e-3)
    loaded = pfpyro.load(run_copy)
    assert torch.equal(loaded.few_shot(*NER).posterior.theta_loc, posterior.theta_loc)
    assert torch.equal(loaded.predict(*NER, test).probs, expected)
    assert torch.equal(loaded.predict(*NER, test, zero_shot=True).probs, zero_shot)
    # BMA draws θ from the pair's own q(θ_ij)
    torch.manual_seed(3)
    bma = loaded.predict(*NER, test, bma=20).probs
    torch.manual_seed(3)
    draws = posterior.sample_probs(features, posterior.theta_samples(20)).mean(0)
    assert torch.allclose(bma, draws, atol=1e-6)

    # the command: the updated pair with a note, --zero-shot without
    text = tmp_path / "test.txt"
    text.write_text("".join(" ".join(s) + "\n" for s in test), encoding="utf-8")
    names = run.label_names("task0")
    for flags, probs in (([], expected), (["--zero-shot"], zero_shot)):
        out = tmp_path / f"out{len(flags)}.tsv"
        predict = ["predict", str(run_copy), str(text), "--task", "task0", "--lang", "lang3"]
        assert pfpyro_cli([*predict, *flags, "--out", str(out), "--quiet"]) == 0
        err = capsys.readouterr().err
        note = f"using the few-shot posterior of {saved}, k = 12"
        assert (note in err) == (not flags), err
        tags, confidence = read_tagged(out)
        best = probs.max(-1)
        assert tags == [names[int(i)] for i in best.indices[mask]]
        assert confidence == pytest.approx(best.values[mask].tolist(), abs=1e-4)


def test_a_second_update_replaces_the_first(run_copy, tmp_path):
    words = sentences(10, "lang2")
    labels = labels_of(words, TAGS)
    first, second = tmp_path / "a.conllu", tmp_path / "b.conllu"
    write_conllu(first, words[:4], labels[:4])
    write_conllu(second, words, labels)  # all the labels so far
    args = ["update", str(run_copy), "--task", "task1", "--lang", "lang2", *STEPS]
    assert pfpyro_cli([*args, str(first)]) == 0
    after_first = pfpyro.load(run_copy).few_shot(*POS).posterior.theta_loc
    assert pfpyro_cli([*args, str(second)]) == 0
    record = json.loads((run_copy / "pairs" / "task1.lang2.json").read_text(encoding="utf-8"))
    assert record["k"] == 10 and record["labels"] == str(second) and record["format"] == "conllu"
    loaded = pfpyro.load(run_copy).few_shot(*POS)
    _, posterior = direct(run_copy, POS, words, labels)  # from the run's posterior, not the last
    assert torch.equal(loaded.posterior.theta_loc, posterior.theta_loc)
    assert not torch.equal(loaded.posterior.theta_loc, after_first)
    assert len(list((run_copy / "pairs").iterdir())) == 2


def test_update_errors_are_one_line_and_leave_no_file(run_copy, tmp_path, capsys):
    words = sentences(4, "lang3")
    labels = labels_of(words, SPANS)
    good = tmp_path / "good.iob"
    write_iob(good, words, labels)
    labels[1][2] = "B-Z"  # sentence 2 (lines 5-8), word 3: line 7
    bad = tmp_path / "bad.iob"
    write_iob(bad, words, labels)
    bad_pos = tmp_path / "bad.conllu"
    write_conllu(bad_pos, [("x", "y")], [["A", "NOUN"]])
    empty = tmp_path / "empty.iob"
    empty.write_text("\n", encoding="utf-8")
    text = tmp_path / "labels.txt"
    text.write_text("a b\n", encoding="utf-8")
    base = ["update", str(run_copy), "--task", "task0", *STEPS]
    cases = [
        ([*base, "--lang", "lang3", str(bad)],
         f"{bad}:7: expected a task0 tag (O B-X I-X B-Y), found 'B-Z'"),
        (["update", str(run_copy), "--task", "task1", "--lang", "lang2", str(bad_pos), *STEPS],
         f"{bad_pos}:2: expected a UPOS tag (A B C D), found 'NOUN'"),
        ([*base, "--lang", "lang0", str(good)],
         "task0/lang0 is a seen pair of the run (it trained on its data): the few-shot update "
         "is for the run's unseen pairs"),
        ([*base, "--lang", "xx", str(good)], "unknown language 'xx'"),
        (["update", str(run_copy), "--task", "nope", "--lang", "lang3", str(good)],
         "unknown task 'nope'"),
        ([*base, "--lang", "lang3", str(empty)], f"{empty}: expected at least one sentence"),
        ([*base, "--lang", "lang3", str(text)], "labels are read from conllu or iob files"),
        ([*base, "--lang", "lang3", str(tmp_path / "none.iob")], "no such file"),
        ([*base, "--lang", "lang3", str(good), "--steps", "0"], "steps and batch_size"),
        (["update", str(tmp_path), str(good), "--task", "task0", "--lang", "lang3"],
         "no posterior to update"),
    ]  # fmt: skip
    for args, message in cases:
        assert pfpyro_cli(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (run_copy / "pairs").exists() or not any((run_copy / "pairs").iterdir())


# -- suggest, the API, a stale file -------------------------------------------------------------
def test_suggest_ranks_with_the_updated_posterior(run_copy, tmp_path, capsys):
    words = sentences(10, "lang3")
    path = tmp_path / "mine.iob"
    write_iob(path, words, labels_of(words, SPANS))
    assert pfpyro_cli(["update", str(run_copy), str(path), "--task", "task0", "--lang", "lang3",
                       *STEPS]) == 0  # fmt: skip
    pool = sentences(8, "lang3", first=30)
    features, mask = encoded(pool)
    run = pfpyro.load(run_copy)
    update = run.few_shot(*NER)
    predictor = FewShotPredictor(run.factorization, run.guide, {NER: update.posterior}, mode="bma")
    torch.manual_seed(0)
    _, bald = pool_information(fixed_samples(predictor, *NER, 20), features, mask)
    frame = run.suggest(*NER, pool, num_samples=20)
    assert frame["score"].tolist() == pytest.approx(sorted(bald.tolist(), reverse=True))
    zero = run.suggest(*NER, pool, num_samples=20, zero_shot=True)
    assert zero["score"].tolist() != pytest.approx(frame["score"].tolist())
    file = tmp_path / "pool.txt"
    file.write_text("".join(" ".join(s) + "\n" for s in pool), encoding="utf-8")
    capsys.readouterr()
    args = ["suggest", str(run_copy), str(file), "--task", "task0", "--lang", "lang3"]
    assert pfpyro_cli([*args, "--samples", "20", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert f"task0/lang3: using the few-shot posterior of {update.path}, k = 10" in err
    scores = [float(line.split("\t")[2]) for line in out.splitlines()[1:]]
    assert scores == pytest.approx(frame["score"].tolist(), abs=1e-6)


def test_the_api_updates_in_memory_and_refuses_a_seen_pair(run_copy):
    run = pfpyro.load(run_copy)
    words = sentences(6, "lang2")
    labels = labels_of(words, TAGS)
    test = sentences(4, "lang2", first=40)
    before = run.predict(*POS, test).probs
    update = run.update(*POS, words, labels, FewShotSettings(steps=40))
    assert update.path is None and update.k == 6 and run.few_shot(*POS) is update
    assert not torch.allclose(run.predict(*POS, test).probs, before, atol=1e-3)
    assert not (run_copy / "pairs").exists()  # nothing saved
    with pytest.raises(ConfigError, match="task1/lang0 is a seen pair"):
        run.update("task1", "lang0", words, labels)
    with pytest.raises(ConfigError, match=r"sentence 2, word 1: 'Z' is not a task1 label"):
        run.update(*POS, words[:2], [labels[0], ["Z"] * len(words[1])])


def test_a_pair_fitted_at_another_step_of_the_run_is_ignored(run_copy, tmp_path, caplog):
    words = sentences(4, "lang3")
    path = tmp_path / "mine.iob"
    write_iob(path, words, labels_of(words, SPANS))
    assert pfpyro_cli(["update", str(run_copy), str(path), "--task", "task0", "--lang", "lang3",
                       *STEPS]) == 0  # fmt: skip
    run = pfpyro.load(run_copy)
    step = run.meta["step"]
    found = load_pair(run_copy, run.factorization, run.guide, *NER, step)
    assert found is not None and found.k == 4
    with caplog.at_level(logging.WARNING):
        assert load_pair(run_copy, run.factorization, run.guide, *NER, step + 1) is None
    assert f"fitted at step {step} of the run, which is now at step {step + 1}" in caplog.text

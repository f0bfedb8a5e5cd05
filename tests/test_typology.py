"""The typology prior (issue 9, item 3): l_j ~ N(A z_j + b, σ² I) from URIEL vectors, which
gives a language with no labelled data at all a posterior predictive for every task."""

from __future__ import annotations

import pyro
import pytest
import torch

import pfpyro
from pfpyro.config import ModelConfig, OptimConfig, TrainConfig
from pfpyro.errors import ConfigError
from pfpyro.evaluate import token_accuracy
from pfpyro.infer import PFPredictor, train
from pfpyro.model import Component, ModelDescription
from pfpyro.model.typology import TypologyPrior, principal_scores
from pfpyro.testing.synthetic import make_world

pytestmark = pytest.mark.usefixtures("one_thread")

NO_DATA = "lang5"  # both of its tasks held out: no labelled sentence of it is trained on


@pytest.fixture(scope="module")
def world():
    return make_world(2, 6, num_classes=4, feature_dim=6, latent_dim=3, sentences=(40, 10, 40),
                      length=8, seed=11)  # fmt: skip


def informative_vectors(world) -> dict[str, list[float]]:
    """A stand-in for URIEL: each language's true l_j, plus two features of pure noise."""
    noise = torch.randn(len(world.langs), 2, generator=torch.Generator().manual_seed(0))
    table = torch.cat([world.l, noise], 1)
    return {lang: table[j].tolist() for j, lang in enumerate(world.langs)}


def fit(world, prior, out_dir=None):
    seen = [p for p in world.pairs() if p[1] != NO_DATA]
    return train(
        {p: world.train[p] for p in seen},
        {p: world.dev[p] for p in seen},
        TrainConfig(
            max_steps=600,
            eval_every=100,
            patience=100,
            batch_size=10,
            seed=0,
            progress=False,
            optim=OptimConfig(lr=0.02),
        ),
        model=ModelConfig(
            latent_dim=3, prior=prior, guide="d", hypernet={"name": "shared", "hidden_dims": []}
        ),
        tasks=world.tasks,
        langs=world.langs,
        num_classes=world.num_classes,
        out_dir=out_dir,
    )


def no_data_accuracy(result, world) -> float:
    predictor = PFPredictor(result.factorization, result.guide)
    scores = []
    for task in world.tasks:
        test = world.test[task, NO_DATA]
        probs = predictor.predict_proba(task, NO_DATA, test.features.float(), test.mask)
        scores.append(token_accuracy(test.labels, probs.argmax(-1), test.mask))
    return sum(scores) / len(scores)


def test_principal_scores_are_unit_variance_and_sign_fixed():
    vectors = torch.randn(7, 12, generator=torch.Generator().manual_seed(1))
    scores = principal_scores(vectors, 3)
    assert scores.shape == (7, 3)
    assert torch.allclose(scores.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(scores.std(0, unbiased=False), torch.ones(3), atol=1e-5)
    # the same scores for the negated table: the signs depend on the data, not on the SVD
    flipped = principal_scores(-vectors, 3)
    assert torch.allclose(flipped.abs(), scores.abs(), atol=1e-5)
    assert principal_scores(vectors[:3], 8).shape == (3, 2)  # at most rank(centred) = m - 1


def test_the_prior_starts_at_the_papers_and_names_a_missing_vector(world):
    vectors = informative_vectors(world)
    prior = TypologyPrior(world.tasks, world.langs, 3, vectors=vectors, components=4)
    p_l = prior.language_prior()
    assert p_l.batch_shape == (6,) and p_l.event_shape == (3,)
    assert torch.equal(p_l.mean, torch.zeros(6, 3)) and torch.allclose(
        p_l.variance, torch.ones(6, 3)
    )
    assert prior.task_prior().batch_shape == (2,)
    del vectors["lang3"]
    with pytest.raises(ConfigError, match="no URIEL vector for lang3"):
        TypologyPrior(world.tasks, world.langs, 3, vectors=vectors)


def test_a_language_with_no_data_gets_a_posterior_predictive_from_its_typology(world, tmp_path):
    typology = fit(world, {"name": "typology", "vectors": informative_vectors(world),
                           "components": 3}, tmp_path / "typology")  # fmt: skip
    standard = fit(world, "standard-normal")
    prior = typology.factorization.prior
    assert float(prior.weight.detach().abs().max()) > 0.05  # A was learned
    j = world.langs.index(NO_DATA)
    centre = prior.language_centres().detach()[j]
    _, l_mean = typology.guide.posterior_means()
    # no data: q(l_j) is drawn to p(l_j | u_j), whose centre the prior moved away from 0
    assert centre.norm() > 0.5 and (l_mean[j] - centre).norm() < 0.25 * centre.norm()
    with_typology, without = no_data_accuracy(typology, world), no_data_accuracy(standard, world)
    assert with_typology > without + 0.05, (with_typology, without)
    # model.json carries the vectors: the run rebuilds and predicts the same without them
    run = pfpyro.load(tmp_path / "typology")
    assert run.factorization.description.prior.name == "typology"
    test = world.test["task0", NO_DATA]
    pyro.set_rng_seed(0)
    got = PFPredictor(run.factorization, run.guide).predict_proba(
        "task0", NO_DATA, test.features.float(), test.mask
    )
    expected = PFPredictor(typology.factorization, typology.guide).predict_proba(
        "task0", NO_DATA, test.features.float(), test.mask
    )
    assert torch.allclose(got, expected, atol=1e-6)


def test_the_experiment_fills_in_the_catalogs_uriel_vectors(catalog):
    from pfpyro.data.uriel import uriel_vector
    from pfpyro.pipeline.fit import with_language_data

    model = ModelConfig(prior={"name": "typology", "components": 4})
    filled = with_language_data(model, ["wo", "yo"], catalog)
    name, args = filled.component("prior")
    assert name == "typology" and args["components"] == 4
    assert args["vectors"]["wo"] == uriel_vector("wo", args["feature_set"]).tolist()
    assert len(args["vectors"]["yo"]) == 289
    assert with_language_data(filled, ["wo"], catalog) is filled  # given vectors are kept
    plain = ModelConfig()
    assert with_language_data(plain, ["wo"], catalog) is plain
    description = ModelDescription.for_sizes(["pos"], ["wo", "yo"], {"pos": 17}, 4, latent_dim=2,
                                             prior=Component(name, args))  # fmt: skip
    factorization, _ = description.build()
    assert factorization.prior.scores.shape == (2, 1)


def test_the_study_configs_are_paper_yaml_but_for_what_they_name():
    """experiments/configs/typology: each config is paper.yaml with only the sections its
    header names CHANGED (nothing tuned on the side)."""
    from pathlib import Path

    from pfpyro.config import load_config

    folder = Path(__file__).resolve().parents[1] / "experiments" / "configs"
    paper = load_config(folder / "paper-v1.yaml").to_dict()
    changed = {
        "nodata_typology": {"partition", "model", "models", "seeds"},
        "nodata_standard": {"partition", "models", "seeds"},
        "paper_typology": {"model", "models"},
        "paper_standard": {"models"},
    }
    for name, sections in changed.items():
        config = load_config(folder / "typology" / f"{name}.yaml").to_dict()
        differ = {
            key for key in paper if key not in ("name", "source") and paper[key] != config[key]
        }
        assert differ == sections, name
        if "model" in sections:
            model = dict(config["model"])
            assert model.pop("prior") == {"name": "typology", "components": 8}
            assert model == {k: v for k, v in paper["model"].items() if k != "prior"}

"""The Python API over a trained run: ``pfpyro.load(RUN)`` and what the posterior offers.

    >>> run = pfpyro.load("runs/pf-lr")                     # doctest: +SKIP
    >>> run.language_samples(500)["wo"].shape               # draws of l_wo from q(l)
    (500, 100)
    >>> W, b = run.classifier("ner", "wo")                  # θ at f_psi(E[t], E[l])
    >>> run.predict("ner", "wo", [["Dakar", "la", "dëkk"]], bma=100)
    >>> run.language_similarity().loc["wo"].nlargest(4)
    >>> run.update("ner", "wo", sentences, labels)            # few-shot: k labelled sentences

Everything works for every pair of the model, seen in training or not. An unseen pair with a
few-shot posterior of its own (:meth:`FittedPosterior.update`, or saved in the run folder by
``pfpyro update``) is predicted and ranked with it, unless ``zero_shot=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    import pandas as pd

    from pfpyro.data.subwords import SubwordStates

from pfpyro.data.batch import PairTensors
from pfpyro.errors import ConfigError
from pfpyro.infer import PFPredictor, load_run
from pfpyro.infer.pair_posterior import FewShotPredictor, FewShotSettings, fit_pair
from pfpyro.infer.pair_store import PairUpdate, load_pair, pair_record, save_pair
from pfpyro.model.factorization import ParameterFactorization
from pfpyro.model.guides import FactorizationGuide
from pfpyro.run_record import encoder_section, seen_pairs

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """Tagged sentences: per word the label, its probability and the predictive entropy."""

    words: list[tuple[str, ...]]
    labels: list[list[str]]
    confidence: list[list[float]]
    entropy: list[list[float]]
    probs: Tensor  # [N, T, c], padding rows included

    def to_frame(self) -> pd.DataFrame:
        rows = [
            (k, w, word, label, conf, ent)
            for k, sentence in enumerate(self.words)
            for w, (word, label, conf, ent) in enumerate(
                zip(sentence, self.labels[k], self.confidence[k], self.entropy[k], strict=True)
            )
        ]
        import pandas as pd  # here, not at import: pandas costs start-up of every command

        return pd.DataFrame(
            rows, columns=["sentence", "word", "text", "label", "probability", "entropy"]
        )


class FittedPosterior:
    """A trained factorization and its guide: samples, classifiers, predictions, similarity,
    and the few-shot posteriors of unseen pairs. ``run_dir``: the run folder it was loaded
    from (:func:`load`), where its seen pairs are recorded and its pair updates saved."""

    def __init__(
        self,
        factorization: ParameterFactorization,
        guide: FactorizationGuide,
        meta: dict[str, Any] | None = None,
        encoder_config: dict[str, Any] | None = None,
        run_dir: str | Path | None = None,
    ) -> None:
        self.factorization = factorization
        self.guide = guide
        self.meta = meta or {}
        self.encoder_config = encoder_config
        self.run_dir = None if run_dir is None else Path(run_dir)
        self._encoder = None
        self._pairs: dict[tuple[str, str], PairUpdate | None] = {}

    def __repr__(self) -> str:
        """A short summary: sizes, guide, hypernetwork, training, and how far each latent
        moved from its prior (the mean posterior standard deviation; the prior's is 1)."""
        config = self.meta.get("config", {})
        with torch.no_grad():
            t_std = self.guide.task_posterior().variance.sqrt().mean().item()
            l_std = self.guide.language_posterior().variance.sqrt().mean().item()
        step, best = self.meta.get("step"), self.meta.get("best_step")
        lines = [
            f"FittedPosterior: {len(self.tasks)} tasks × {len(self.langs)} languages, "
            f"h = {self.factorization.latent_dim}, guide {type(self.guide).__name__}, "
            f"hypernetwork {self.hypernet_name}",
            f"  tasks: {', '.join(self.tasks)}",
            f"  languages: {', '.join(self.langs)}",
            f"  posterior std (mean over coordinates; prior 1): t {t_std:.3f}, l {l_std:.3f}",
        ]
        if step is not None:
            trained = f"  trained {step} steps"
            if best is not None:
                trained += f", best at step {best}"
            if config.get("seed") is not None:
                trained += f", seed {config['seed']}"
            lines.append(trained)
        return "\n".join(lines)

    def to_arviz(self, num_samples: int = 1000, seed: int | None = 0):
        """The posterior of t and l as an ``arviz.InferenceData`` (``pip install
        pfpyro[arviz]``), drawn from the guide: one chain of ``num_samples`` draws, variables
        ``t`` (dims task, latent) and ``l`` (dims language, latent) with the names as
        coordinates, so that ``az.summary`` and ``az.plot_forest`` work as on MCMC output."""
        try:
            import arviz as az
        except ImportError:
            raise ConfigError("to_arviz() needs ArviZ: pip install 'pfpyro[arviz]'") from None
        tasks = self.task_samples(num_samples, seed)
        langs = self.language_samples(num_samples, None if seed is None else seed + 1)
        t = np.stack([tasks[name] for name in self.tasks], axis=1)[None]  # [chain, draw, n, h]
        l = np.stack([langs[name] for name in self.langs], axis=1)[None]
        return az.from_dict(
            posterior={"t": t, "l": l},
            coords={
                "task": list(self.tasks),
                "language": list(self.langs),
                "latent": list(range(self.factorization.latent_dim)),
            },
            dims={"t": ["task", "latent"], "l": ["language", "latent"]},
            attrs={"inference_library": "pyro (SVI)", "guide": type(self.guide).__name__},
        )

    @property
    def hypernet_name(self) -> str:
        """The hypernetwork's registered name (its class name for a model built by hand)."""
        description = self.factorization.description
        return (
            description.hypernet.name if description else type(self.factorization.hypernet).__name__
        )

    def label_names(self, task: str) -> tuple[str, ...]:
        """The task's labels in id order, as the model was trained on them."""
        description = self.factorization.description
        if description is not None:
            return tuple(description.labels[task])
        return tuple(str(k) for k in range(self.factorization.num_classes[task]))

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.factorization.tasks

    @property
    def langs(self) -> tuple[str, ...]:
        return self.factorization.langs

    # -- the latent vectors ------------------------------------------------------------------
    @torch.no_grad()
    def task_samples(
        self, num_samples: int = 100, seed: int | None = None
    ) -> dict[str, np.ndarray]:
        """Draws of every t_i from q(t): {task: [S, h]}."""
        return self._draw(self.guide.task_posterior(), self.tasks, num_samples, seed)

    @torch.no_grad()
    def language_samples(
        self, num_samples: int = 100, seed: int | None = None
    ) -> dict[str, np.ndarray]:
        """Draws of every l_j from q(l): {language: [S, h]} (the paper's Fig. 4 uses these)."""
        return self._draw(self.guide.language_posterior(), self.langs, num_samples, seed)

    def posterior_means(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """E_q[t_i] per task and E_q[l_j] per language."""
        t_mean, l_mean = self.guide.posterior_means()
        return (
            {task: t_mean[i].cpu().numpy() for i, task in enumerate(self.tasks)},
            {lang: l_mean[j].cpu().numpy() for j, lang in enumerate(self.langs)},
        )

    def _draw(self, posterior, names, num_samples: int, seed: int | None) -> dict[str, np.ndarray]:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            draws = posterior.sample((num_samples,)).cpu().numpy()  # [S, k, h]
        return {name: draws[:, k, :] for k, name in enumerate(names)}

    # -- the generated classifier ------------------------------------------------------------
    @torch.no_grad()
    def classifier(
        self, task: str, lang: str, num_samples: int | None = None, seed: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """W [e, c] and b [c] of pair (task, lang): at the posterior mean (θ = f_psi(E[t], E[l]))
        or, with ``num_samples``, S draws of θ_ij from the posterior ([S, e, c], [S, c]); the
        run's own (zero-shot) classifier, also for a pair with a few-shot update.

        They act on standardised features, ``factorization.standardize(x)``, as in the model.
        """
        f = self.factorization
        i, j = f.task_index(task), f.lang_index(lang)
        c = f.num_classes[task]
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            if num_samples is None:
                t_mean, l_mean = self.guide.posterior_means()
                theta, _ = f.hypernet(t_mean[i], l_mean[j], i)
            else:
                samples = PFPredictor(f, self.guide).posterior_samples(num_samples)
                t_i = samples["t"][..., i : i + 1, :]
                l_j = samples["l"][..., j : j + 1, :]
                theta = f.sample_theta(t_i, l_j, i).reshape(num_samples, -1)  # θ ~ p(θ | t, l)
            weight, bias = f.head.unpack(theta)
        return weight[..., :c].cpu().numpy(), bias[..., :c].cpu().numpy()

    # -- prediction ----------------------------------------------------------------------------
    def predict(
        self,
        task: str,
        lang: str,
        sentences: list[list[str]] | list[tuple[str, ...]],
        bma: int | None = None,
        features: Tensor | SubwordStates | None = None,
        zero_shot: bool = False,
    ) -> Prediction:
        """Tag pre-split sentences: plug-in, or model averaging over ``bma`` posterior samples.

        ``features`` ([N, T, e]) skips the encoder, e.g. for features computed elsewhere. A
        model that trained the encoder's top layers reads the subword states of the layer
        below them, which the encoder gives here. A pair with a few-shot posterior
        (:meth:`few_shot`) is predicted with it, unless ``zero_shot``.
        """
        words = [tuple(s) for s in sentences]
        features, mask = self.inputs(words, features)
        mode = "bma" if bma else "plugin"
        predictor = self.predictor(task, lang, mode, bma or 100, zero_shot)
        probs, entropy = predictor.predict_with_entropy(task, lang, features, mask)
        names = self.label_names(task)
        confidence, best = probs.max(-1)
        labels, conf, ent = [], [], []
        for k, sentence in enumerate(words):
            n = len(sentence)
            ids = best[k, :n].tolist()
            labels.append([names[x] for x in ids])
            conf.append(confidence[k, :n].tolist())
            ent.append(entropy[k, :n].tolist())
        return Prediction(words, labels, conf, ent, probs)

    def inputs(
        self, words: list[tuple[str, ...]], features: Tensor | SubwordStates | None = None
    ) -> tuple[Tensor | SubwordStates, Tensor]:
        """(features, mask [N, T]) of pre-split sentences: encoded by the run's encoder, or the
        ``features`` given (then only the mask is built)."""
        if features is None:
            tensors = self.encode(words)
            return tensors.inputs, tensors.mask
        given = getattr(features, "first", features)  # subword states: their positions
        mask = torch.zeros(given.shape[:2], dtype=torch.bool)
        for k, sentence in enumerate(words):
            mask[k, : len(sentence)] = True
        return features, mask

    def encode(
        self, words: Sequence[Sequence[str]], label_ids: Sequence[Sequence[int]] | None = None
    ) -> PairTensors:
        """Pre-split sentences (and their label ids) as the run's encoder gives them: word
        features, and the subword states below a trained encoder top."""
        words = [tuple(s) for s in words]
        encoder = self.encoder()
        top = self.factorization.encoder_top
        subwords = None if top is None else encoder.encode_subwords(words, top.below)
        return PairTensors.from_arrays(encoder.encode(words), label_ids, subwords=subwords)

    def predictor(
        self,
        task: str,
        lang: str,
        mode: str = "plugin",
        num_samples: int = 100,
        zero_shot: bool = False,
    ) -> FewShotPredictor:
        """The predictor of pair (task, lang): the run's posterior, or the pair's few-shot
        posterior when it has one (:meth:`few_shot`) and ``zero_shot`` is False."""
        update = None if zero_shot else self.few_shot(task, lang)
        pairs = {} if update is None else {(task, lang): update.posterior}
        return FewShotPredictor(
            self.factorization, self.guide, pairs, mode=mode, num_samples=num_samples
        )

    # -- what to label next (pfpyro.infer.acquisition) ------------------------------------------
    def pool_information(
        self,
        task: str,
        lang: str,
        sentences: Sequence[Sequence[str]],
        num_samples: int = 100,
        seed: int = 0,
        features: Tensor | SubwordStates | None = None,
        progress: bool = False,
        zero_shot: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """(predictive entropy [N], BALD [N]) of each pool sentence of pair (task, lang), in
        nats summed over its words, under ``num_samples`` posterior draws (seeded): of the
        pair's few-shot posterior when it has one (:meth:`few_shot`), unless ``zero_shot``."""
        from pfpyro.infer.acquisition import fixed_samples, pool_information

        words = [tuple(s) for s in sentences]
        features, mask = self.inputs(words, features)
        predictor = self.predictor(task, lang, "bma", num_samples, zero_shot)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sampler = fixed_samples(predictor, task, lang, num_samples)
            return pool_information(sampler, features, mask, progress=progress)

    def suggest(
        self,
        task: str,
        lang: str,
        sentences: Sequence[Sequence[str]],
        budget: int | None = None,
        strategy: str = "bald",
        num_samples: int = 100,
        seed: int = 0,
        features: Tensor | SubwordStates | None = None,
        progress: bool = False,
        zero_shot: bool = False,
    ) -> pd.DataFrame:
        """The pool's ``budget`` (default: all) sentences most worth labelling for pair
        (task, lang), best first: columns rank (1-based), index (0-based, in the pool),
        score and words. ``strategy``: bald, entropy or random (seeded; reads no model).
        Scored under the pair's few-shot posterior when it has one, unless ``zero_shot``."""
        from pfpyro.infer.acquisition import check_strategy, ranking, score_pool

        check_strategy(strategy)
        self.factorization.task_index(task)  # a clear error naming the known tasks
        self.factorization.lang_index(lang)
        words = [tuple(s) for s in sentences]
        if budget is not None and budget < 1:
            raise ConfigError(f"budget must be a positive number of sentences, got {budget}")
        if strategy == "random":
            scores = score_pool(None, None, torch.zeros(len(words), 1), "random", seed=seed)
        else:
            entropy, bald = self.pool_information(
                task, lang, words, num_samples, seed, features, progress, zero_shot
            )
            scores = bald if strategy == "bald" else entropy
        order = ranking(scores)[:budget].tolist()
        import pandas as pd

        return pd.DataFrame(
            {
                "rank": range(1, len(order) + 1),
                "index": order,
                "score": [float(scores[k]) for k in order],
                "words": [words[k] for k in order],
            }
        )

    def rank_pairs(
        self,
        pools: Mapping[tuple[str, str], Sequence[Sequence[str]]],
        k: int = 100,
        num_samples: int = 100,
        seed: int = 0,
        features: Mapping[tuple[str, str], Tensor | SubwordStates] | None = None,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Pairs by the expected gain of ``k`` labelled sentences of their pool, highest
        first (:func:`pfpyro.infer.acquisition.expected_gain`): columns rank, task, lang,
        gain (nats), pool_entropy (mean per sentence) and pool_size."""
        from dataclasses import asdict

        from pfpyro.infer.acquisition import expected_gain, rank_pairs

        expected_gain(torch.zeros(1), torch.zeros(1), k)  # a bad k fails before any work
        scores = {}
        for pair, sentences in pools.items():
            given = None if features is None else features.get(pair)
            entropy, bald = self.pool_information(
                *pair, sentences, num_samples, seed, given, progress
            )
            scores[pair] = (bald, entropy)
        import pandas as pd

        frame = pd.DataFrame([asdict(g) for g in rank_pairs(scores, k)])
        frame.insert(0, "rank", range(1, len(frame) + 1))
        return frame

    # -- few-shot: labelled sentences of an unseen pair (pfpyro.infer.pair_posterior) -----------
    def few_shot(self, task: str, lang: str) -> PairUpdate | None:
        """The few-shot posterior of pair (task, lang): the one :meth:`update` fitted in this
        process, else the one ``pfpyro update`` saved in the run folder (``RUN/pairs``, read
        on first use and logged); None when the pair has none (it is predicted zero-shot)."""
        key = (task, lang)
        if key not in self._pairs:
            found = None
            if self.run_dir is not None:
                found = load_pair(
                    self.run_dir, self.factorization, self.guide, task, lang, self.meta.get("step")
                )
                if found is not None:
                    logger.info(found.note())
            self._pairs[key] = found
        return self._pairs[key]

    def seen_pairs(self) -> list[tuple[str, str]] | None:
        """The pairs the run trained on, from its run.json; None when none records them."""
        return None if self.run_dir is None else seen_pairs(self.run_dir)

    def update(
        self,
        task: str,
        lang: str,
        sentences: Sequence[Sequence[str]],
        labels: Sequence[Sequence[str]],
        settings: FewShotSettings | None = None,
        features: Tensor | None = None,
        progress: bool = False,
    ) -> PairUpdate:
        """Fit the few-shot posterior of the unseen pair (task, lang) on labelled sentences,
        one label name per word (:func:`~pfpyro.infer.pair_posterior.fit_pair`; the run
        itself is not changed); :meth:`predict` and :meth:`suggest` then use it for the pair.

        Each call starts from the run's posterior again, so pass every sentence labelled so
        far: the new fit replaces the last. It is kept in memory; :meth:`update_from_file`
        (``pfpyro update``) saves one in the run folder. ``features`` ([N, T, e]) skips the
        encoder; ``settings`` default to :class:`FewShotSettings` (300 Adam steps at 0.01).
        A pair the run was trained on is refused (when the run records them): the update is
        the few-shot posterior of an unseen pair (docs/model.md), the run's posterior its prior.
        """
        self._check_unseen(task, lang)
        words = [tuple(s) for s in sentences]
        ids = self._label_ids(task, words, labels)
        if features is None:
            data = self.encode(words, ids)
        elif isinstance(features, Tensor) and features.dim() == 3:
            data = PairTensors.from_arrays(
                [features[k, : len(s)] for k, s in enumerate(words)], ids
            )
        else:
            raise ConfigError("update(features=...) takes word features [N, T, e]")
        settings = settings or FewShotSettings()
        posterior = fit_pair(self.factorization, self.guide, task, lang, data, settings, progress)
        update = PairUpdate(posterior, pair_record(data, settings, self.meta.get("step")))
        self._pairs[task, lang] = update
        return update

    def update_from_file(
        self,
        task: str,
        lang: str,
        path: str | Path,
        fmt: str | None = None,
        settings: FewShotSettings | None = None,
        progress: bool = False,
    ) -> PairUpdate:
        """:meth:`update` on a file of one's own labels of pair (task, lang), saved in the run
        folder as ``RUN/pairs/<task>.<lang>.pt`` and ``.json`` (the labels file and its
        sha256, k, words, settings, date): what ``pfpyro update`` runs. ``fmt``: conllu or
        iob (:func:`pfpyro.data.readers.read_labelled`; default by extension). Every check
        (the pair unseen, each label in the task's set, naming the file and line) comes
        before anything is written."""
        from pfpyro.data.readers import pool_format, read_labelled
        from pfpyro.data.tasks import find_task
        from pfpyro.encode.offline import sha256_file

        if self.run_dir is None:
            raise ConfigError("no run folder to save the update in: load the run with pfpyro.load")
        self._check_unseen(task, lang)  # before the file is read
        if self.seen_pairs() is None:
            raise ConfigError(
                f"{self.run_dir}: no run.json records the pairs this run was trained on, so "
                f"{task}/{lang} cannot be told unseen"
            )
        names, known = self.label_names(task), find_task(task)
        if known is not None and known.labels != names:
            raise ConfigError(
                f"task {task!r}: the run's labels ({' '.join(names)}) are not those pfpyro "
                f"knows for it ({' '.join(known.labels)})"
            )
        read = read_labelled(path, task, lang, fmt)
        update = self.update(
            task, lang, [s.words for s in read], [s.labels for s in read], settings,
            progress=progress,
        )  # fmt: skip
        source = {
            "labels": str(path),
            "labels_sha256": sha256_file(path),
            "format": fmt or pool_format(path),
            "task": task,
            "lang": lang,
        }
        saved = save_pair(self.run_dir, PairUpdate(update.posterior, {**source, **update.record}))
        self._pairs[task, lang] = saved
        return saved

    def _check_unseen(self, task: str, lang: str) -> None:
        """ConfigError for a task or language the run does not know, or a seen pair."""
        self.factorization.task_index(task)  # a clear error naming the known tasks
        self.factorization.lang_index(lang)
        seen = self.seen_pairs()
        if seen is not None and (task, lang) in seen:
            raise ConfigError(
                f"{task}/{lang} is a seen pair of the run (it trained on its data): the "
                "few-shot update is for the run's unseen pairs; retrain with the new labels "
                "to improve a seen pair"
            )

    def _label_ids(
        self, task: str, words: list[tuple[str, ...]], labels: Sequence[Sequence[str]]
    ) -> list[list[int]]:
        """The label ids of ``labels`` (names, one per word); ConfigError naming the sentence
        and word of the first that does not fit."""
        names = self.label_names(task)
        index = {name: k for k, name in enumerate(names)}
        if not words or len(labels) != len(words):
            raise ConfigError(
                f"expected one label list per sentence, at least one: got {len(words)} "
                f"sentences and {len(labels)} label lists"
            )
        ids = []
        for k, (sentence, tags) in enumerate(zip(words, labels, strict=True), 1):
            if not sentence or len(tags) != len(sentence):
                raise ConfigError(
                    f"sentence {k}: expected one label per word, got {len(sentence)} words and "
                    f"{len(tags)} labels"
                )
            for w, tag in enumerate(tags, 1):
                if tag not in index:
                    raise ConfigError(
                        f"sentence {k}, word {w}: {tag!r} is not a {task} label ({' '.join(names)})"
                    )
            ids.append([index[tag] for tag in tags])
        return ids

    def encoder(self):
        """The run's encoder (the one its features were made with), loaded on first use."""
        if self._encoder is None:
            from pfpyro.encode import WordEncoder

            if self.encoder_config is None:
                raise ConfigError("this run records no encoder; pass features= to predict()")
            cfg = self.encoder_config
            self._encoder = WordEncoder.from_config(cfg, progress=cfg.get("progress", False))
        return self._encoder

    # -- similarity of languages -----------------------------------------------------------------
    def language_similarity(self) -> pd.DataFrame:
        """Cosine similarity of the languages' posterior means (a heat map's matrix)."""
        _, means = self.posterior_means()
        matrix = np.stack([means[lang] for lang in self.langs])
        unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True).clip(min=1e-12)
        import pandas as pd

        return pd.DataFrame(unit @ unit.T, index=self.langs, columns=self.langs)

    def nearest_languages(self, lang: str, k: int = 5) -> pd.Series:
        """The ``k`` languages most similar to ``lang`` under the posterior (cosine of means)."""
        self.factorization.lang_index(lang)
        row = self.language_similarity().loc[lang].drop(lang)
        return row.sort_values(ascending=False).head(k)


def load(run: str | Path, device: str | None = None) -> FittedPosterior:
    """The fitted posterior of a run folder written by ``pfpyro train`` or ``pfpyro
    experiment`` (its ``train/<unit>`` folders)."""
    run = Path(run)
    factorization, guide, meta = load_run(run, device=device)
    return FittedPosterior(factorization, guide, meta, encoder_section(run), run)

"""JM: one joint multilingual classifier per task (paper §4.3, fourth baseline).

After Wu and Dredze (2019), "Beto, Bentz, Becas: The Surprising Cross-Lingual Effectiveness of
BERT": a single classifier per task, trained on the pooled training data of all seen
languages of that task, tags every language. Early stopping uses the pooled dev data of the
seen pairs.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from pfpyro.baselines.linear import LinearConfig, LinearTagger
from pfpyro.baselines.ns import pair_seed
from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair
from pfpyro.data.tasks import label_set
from pfpyro.encode.top import EncoderTop
from pfpyro.errors import ConfigError
from pfpyro.model.anchor import LinearClassifier


class JointMultilingual:
    """JM: the task's classifier trained on all its seen languages at once."""

    name = "jm"

    def __init__(self, classifiers: Mapping[str, LinearTagger], languages: Mapping[str, tuple]):
        self.classifiers = dict(classifiers)
        self.languages = dict(languages)  # the pooled languages, per task

    @classmethod
    def fit(
        cls,
        train: Mapping[Pair, PairTensors],
        dev: Mapping[Pair, PairTensors] | None = None,
        *,
        config: LinearConfig | None = None,
        seed: int = 0,
        top: EncoderTop | None = None,
    ) -> JointMultilingual:
        """Train one classifier per task present in ``train`` on its pooled pairs."""
        if not train:
            raise ConfigError("no seen pairs: JM needs training data")
        dev = dev or {}
        classifiers, languages = {}, {}
        for task in sorted({t for t, _ in train}):
            keys = sorted(k for k in train if k[0] == task)
            dev_pairs = [dev[k] for k in keys if k in dev]
            classifiers[task] = LinearTagger.fit(
                [train[k] for k in keys],
                dev_pairs or None,
                num_classes=len(label_set(task)),
                config=config,
                seed=pair_seed(seed, task, "joint"),
                top=top,
            )
            languages[task] = tuple(lang for _, lang in keys)
        return cls(classifiers, languages)

    def predict_proba(self, task: str, lang: str, features: Tensor, mask: Tensor) -> Tensor:
        if task not in self.classifiers:
            raise ConfigError(f"JM has no {task} classifier: no seen {task} pair")
        return self.classifiers[task].predict_proba(features, mask)

    def linear_classifiers(self) -> dict[str, LinearClassifier]:
        """Each task's classifier as weights on raw encoder states: where PF starts under
        ``model.init: jm`` (:func:`pfpyro.model.anchor.start_at_joint_classifier`)."""
        out = {}
        for task, tagger in self.classifiers.items():
            if tagger.top is not None:
                raise ConfigError("model.init: jm does not take a trained encoder top")
            out[task] = LinearClassifier(
                *(v.detach().cpu() for v in (tagger.linear.weight, tagger.linear.bias)),
                tagger.mean.detach().cpu(),
                tagger.scale.detach().cpu(),
            )
        return out

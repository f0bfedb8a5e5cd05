"""LS: transfer from the largest source language, English (paper §4.3, second baseline).

Every held-out pair of a task is tagged by one English classifier of that task. English is
not among the PF model's seen languages; the caller passes its tensors separately. For NER the
English training data is cut, by a seeded random draw, to the total size of the seen
languages' NER training data, so that LS sees no more NER data than the PF model does (paper
footnote 12). The paper counts "training examples"; we cap sentences by default, and words on
request (``cap_unit="words"``). Another source language can be named by keying its tensors
``(task, lang)``. The experiment runner fetches the source data already capped this way
(:func:`pfpyro.pipeline.fit.source_tensors`, reading :func:`source_capped`) and passes
``capped_tasks=()``, so the cap is drawn once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from torch import Tensor

from pfpyro.baselines.linear import LinearConfig, LinearTagger
from pfpyro.baselines.ns import pair_seed
from pfpyro.data.batch import PairTensors
from pfpyro.data.pairs import Pair
from pfpyro.data.sampling import cap_sentences
from pfpyro.data.tasks import label_set, task_spec
from pfpyro.encode.top import EncoderTop
from pfpyro.errors import ConfigError

CapUnit = Literal["sentences", "words"]


def source_capped(task: str) -> bool:
    """Whether ``task``'s source data is cut to the seen languages' total (its description's
    ``source_cap``; paper, footnote 12: NER)."""
    return task_spec(task).source_cap


def english_by_task(
    english: Mapping[str, PairTensors] | Mapping[Pair, PairTensors] | None,
) -> dict[str, tuple[str, PairTensors]]:
    """The source data keyed by task, as (language, tensors).

    Keys may be tasks (``"pos"``, language taken to be English) or ``(task, lang)`` pairs, so
    a catalog whose largest source is not English works the same way.
    """
    out: dict[str, tuple[str, PairTensors]] = {}
    for key, tensors in (english or {}).items():
        task, lang = key if isinstance(key, tuple) else (key, "en")
        if task in out:
            raise ConfigError(f"LS takes one source language per task; {task} has several")
        out[task] = (lang, tensors)
    return out


def cap_source(
    tensors: PairTensors, limit: int, *, unit: CapUnit = "sentences", seed: int = 0
) -> PairTensors:
    """A seeded random subset of ``tensors`` with at most ``limit`` sentences (or words), in
    their original order: :func:`pfpyro.data.sampling.cap_sentences` over the sentences."""
    if unit not in ("sentences", "words"):
        raise ConfigError(f"cap unit must be 'sentences' or 'words', got {unit!r}")
    sizes = tensors.mask.sum(-1).tolist() if unit == "words" else None
    keep = cap_sentences(range(len(tensors)), max(limit, 0), seed, sizes=sizes)
    if not keep:
        raise ConfigError(f"a cap of {limit} {unit} leaves no English training sentence")
    return tensors.select(keep)


def seen_size(train: Mapping[Pair, PairTensors], task: str, unit: CapUnit) -> int:
    """Sentences (or words) of training data over the seen languages of ``task``."""
    pairs = [t for (k, _), t in train.items() if k == task]
    return sum(len(t) if unit == "sentences" else t.num_words for t in pairs)


class LargestSource:
    """LS: one English classifier per task tags every held-out language of that task."""

    #: Trains on the source language's data (``english_train``), which the pipeline reads
    #: with the source cap applied (then ``capped_tasks=()``); skips validation pairs in it.
    needs_source_data = True

    name = "ls"

    def __init__(
        self,
        classifiers: Mapping[str, LinearTagger],
        sizes: Mapping[str, int],
        sources: Mapping[str, str] | None = None,
    ):
        self.classifiers = dict(classifiers)
        self.sizes = dict(sizes)  # source training sentences actually used, per task
        self.sources = dict(sources or dict.fromkeys(self.classifiers, "en"))

    @classmethod
    def fit(
        cls,
        train: Mapping[Pair, PairTensors],
        dev: Mapping[Pair, PairTensors] | None = None,
        *,
        english_train: Mapping[str, PairTensors] | Mapping[Pair, PairTensors] | None,
        english_dev: Mapping[str, PairTensors] | Mapping[Pair, PairTensors] | None = None,
        capped_tasks: Sequence[str] | None = None,
        cap_unit: CapUnit = "sentences",
        config: LinearConfig | None = None,
        seed: int = 0,
        top: EncoderTop | None = None,
    ) -> LargestSource:
        """Train the English classifier of every task in ``english_train``.

        For the tasks in ``capped_tasks`` (None: those :func:`source_capped`) the English data
        is first capped to the seen languages' total (``train``); ``dev`` is unused (English
        dev serves early stopping).
        """
        english = english_by_task(english_train)
        if not english:
            raise ConfigError("LS needs English training data (english_train)")
        english_dev_by_task = english_by_task(english_dev)
        classifiers, sizes, sources = {}, {}, {}
        for task, (lang, tensors) in sorted(english.items()):
            if source_capped(task) if capped_tasks is None else task in capped_tasks:
                limit = seen_size(train, task, cap_unit)
                if limit == 0:
                    raise ConfigError(f"no seen {task} data to cap the English data to")
                tensors = cap_source(
                    tensors, limit, unit=cap_unit, seed=pair_seed(seed, "cap", task)
                )
            dev_source = english_dev_by_task.get(task)
            classifiers[task] = LinearTagger.fit(
                tensors,
                dev_source[1] if dev_source else None,
                num_classes=len(label_set(task)),
                config=config,
                seed=pair_seed(seed, task, lang),
                top=top,
            )
            sizes[task], sources[task] = len(tensors), lang
        return cls(classifiers, sizes, sources)

    def predict_proba(self, task: str, lang: str, features: Tensor, mask: Tensor) -> Tensor:
        if task not in self.classifiers:
            raise ConfigError(f"LS has no English {task} classifier (no English {task} data)")
        return self.classifiers[task].predict_proba(features, mask)

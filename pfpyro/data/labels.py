"""The label sets of the two tasks, in a fixed order shared by every model and metric."""

from __future__ import annotations

# The 17 universal POS tags of UD v2 (universaldependencies.org/u/pos).
UPOS: tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip

# WikiANN's IOB2 tags (Pan et al., 2017). "O" first so that index 0 is "outside".
NER_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

LABEL_SETS: dict[str, tuple[str, ...]] = {"pos": UPOS, "ner": NER_TAGS}

TASKS: tuple[str, ...] = tuple(sorted(LABEL_SETS))


def label_set(task: str) -> tuple[str, ...]:
    """The ordered labels of ``task``; a ``KeyError`` names the known tasks."""
    try:
        return LABEL_SETS[task]
    except KeyError:
        raise KeyError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}") from None


def max_classes(tasks: tuple[str, ...] | list[str] = TASKS) -> int:
    """c in the paper: the largest label set over ``tasks`` (the classifier's width)."""
    return max(len(label_set(t)) for t in tasks)

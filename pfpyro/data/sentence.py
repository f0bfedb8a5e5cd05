"""One sentence of a labelled corpus, whatever file format it came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sentence:
    """Pre-split words with one label each, and where they came from.

    ``line`` is the 1-based line of the sentence's first word in ``source``, so an error or a
    prediction can always be traced back to the file.
    """

    words: tuple[str, ...]
    labels: tuple[str, ...]
    task: str
    lang: str
    split: str
    source: str
    line: int

    def __len__(self) -> int:
        return len(self.words)

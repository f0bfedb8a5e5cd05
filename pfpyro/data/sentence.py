"""One sentence of a labelled corpus, whatever file format it came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sentence:
    """Pre-split words with one label each, and where they came from.

    ``line`` is the 1-based line of the sentence's first word in ``source``, so an error or a
    prediction can always be traced back to the file. ``surface_words`` counts the words that
    a CoNLL-U file gives with FORM ``_`` inside a multiword token, read as that token's
    surface form (:func:`pfpyro.data.readers.read_sentences`).
    """

    words: tuple[str, ...]
    labels: tuple[str, ...]
    task: str
    lang: str
    split: str
    source: str
    line: int
    surface_words: int = 0

    def __len__(self) -> int:
        return len(self.words)

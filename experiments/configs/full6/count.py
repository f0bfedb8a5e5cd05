"""Sentences and words a full-data config reads, and its padded feature slots.

    python experiments/configs/full6/count.py experiments/configs/full6/full6.yaml

Prints, per partition, the seen training sentences and words, and over every split of the
config's languages and English (LS's source): sentences, words, and the word slots of the
features padded per pair and split to the longest sentence (what the feature store holds in
memory today: slots × 384 × 2 bytes).
"""

from __future__ import annotations

import sys

from pfpyro.config import load_config
from pfpyro.pipeline.setup import build_partitions, load_catalog


def main(path: str) -> None:
    config = load_config(path)
    catalog = load_catalog(config)
    langs = config.data.languages or list(catalog.target_languages())
    pairs = [p for p in catalog.pairs() if p[1] in langs]
    for name, partition in build_partitions(config, pairs, langs):
        seen = [catalog.sentences(t, lang, "train", "seen") for t, lang in partition.seen]
        sentences = sum(len(s) for s in seen)
        words = sum(len(x.words) for s in seen for x in s)
        print(f"{name}: {len(partition.seen)} seen pairs, {len(partition.heldout)} held out; "
              f"seen training sentences {sentences}, words {words}")  # fmt: skip
    total = words = slots = 0
    source = config.data.source_language
    for task, lang in sorted(set(pairs) | {(t, source) for t, _ in pairs}):
        for split in ("train", "dev", "test"):
            found = catalog.sentences(task, lang, split, "seen")
            lengths = [len(s.words) for s in found]
            total, words = total + len(found), words + sum(lengths)
            slots += len(found) * max(lengths, default=0)
    print(f"all splits with {source}: sentences {total}, words {words}, padded slots {slots} "
          f"(≈ {slots * 768 / 1e9:.1f} GB of fp16 features)")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])

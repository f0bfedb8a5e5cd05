"""Memory of the feature store on a config's data: anonymous (in RAM) against file-backed
(memory-mapped from the feature cache), after every pair's splits are loaded.

    python experiments/bench/store_memory.py experiments/configs/full6/full6.yaml
    python experiments/bench/store_memory.py experiments/configs/full6/full6.yaml --languages wo,yo

Loads (encoding first what is not cached) every pair's train, dev and test split as the
experiment runner does, then prints the words and padded slots held, and the process's
RssAnon and RssFile (/proc/self/status, Linux) before and after, and once more after one
pass over every feature (what training and prediction touch): the features are pages of
the cache's files, so they add to RssFile, which the kernel can drop and read again, and
not to RssAnon, which grows only with the labels and masks.
"""

from __future__ import annotations

import sys
import time


def rss() -> dict[str, int]:
    """RssAnon and RssFile of this process, in MB."""
    out = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) // 1024
    return out


def main(args: list[str] | None = None) -> None:
    import argparse

    from pfpyro.config import load_config
    from pfpyro.pipeline.setup import feature_store, load_catalog

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--languages", help="comma-separated (default: the config's)")
    opts = parser.parse_args(args)
    config = load_config(opts.config)
    catalog = load_catalog(config)
    store = feature_store(config, catalog, progress=False)
    langs = config.data.languages or list(catalog.target_languages())
    if opts.languages:
        langs = opts.languages.split(",")
    before = rss()
    started = time.perf_counter()
    words = slots = 0
    loaded = []
    for task, lang in catalog.pairs():
        if lang not in langs:
            continue
        for split in ("train", "dev", "test"):
            data = store.get(task, lang, split, "seen")
            if data is not None:
                loaded.append(data.tensors)
                words += data.tensors.num_words
                slots += data.tensors.mask.numel()
    seconds = time.perf_counter() - started
    after = rss()
    total = sum(float(t.words().float().sum()) for t in loaded)  # touch every feature
    touched = rss()
    print(f"{len(loaded)} pair splits, {words} words, {slots} padded slots, {seconds:.1f} s")
    print(f"features by word: {words * 768 / 1e9:.2f} GB; padded they would be "
          f"{slots * 768 / 1e9:.2f} GB")  # fmt: skip
    for name, value in (("start", before), ("loaded", after), ("every feature read", touched)):
        print(f"{name:>20}: RssAnon {value['RssAnon']:6d} MB   RssFile {value['RssFile']:6d} MB")
    print(f"(checksum {total:.3e})")


if __name__ == "__main__":
    main(sys.argv[1:])

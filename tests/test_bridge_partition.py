"""Bridge languages (``partition.bridge_languages``): every pair of theirs is seen in every
partition, by every model, and never held out; and the selection over the other bridges."""

from __future__ import annotations

import pytest

from pfpyro.config import DataConfig, ExperimentConfig, PartitionConfig, SelectionConfig
from pfpyro.errors import ConfigError
from pfpyro.pipeline.setup import build_partitions, load_catalog, validation_split, with_bridges

LANGS = ["eu", "fi", "ta", "tr", "vi", "wo", "yo"]


def config(bridges, extra=()):
    return ExperimentConfig(
        data=DataConfig(languages=LANGS),
        partition=PartitionConfig(scheme="paper", indices=[0, 1], bridge_languages=list(bridges)),
        selection=SelectionConfig(
            mode="zero-shot", validation_pairs=3, extra_languages=list(extra)
        ),
    )


def partitions_of(cfg, data_root):
    catalog = load_catalog(cfg, str(data_root))
    pairs = [p for p in catalog.pairs() if p[1] in LANGS]
    built = build_partitions(cfg, pairs, LANGS)
    return catalog, built, with_bridges(cfg, catalog, LANGS, built)


def test_bridge_pairs_are_seen_in_every_partition(data_root):
    cfg = config(["bg", "el", "fa"], extra=["de", "ja", "ro"])
    catalog, plain, bridged = partitions_of(cfg, data_root)
    bridge_pairs = {p for p in catalog.pairs() if p[1] in ("bg", "el", "fa")}
    assert len(bridge_pairs) == 6  # both tasks of each
    for (name, before), (same, after) in zip(plain, bridged, strict=True):
        assert name == same
        assert set(after.seen) == set(before.seen) | bridge_pairs
        assert after.heldout == before.heldout
        # the other bridges validate, one task each, their other task trains selection
        split = validation_split(cfg, catalog, name, after)
        assert {lang for _, lang in split.heldout} == {"de", "ja", "ro"}
        assert bridge_pairs <= set(split.seen)


@pytest.mark.parametrize(
    ("bridges", "extra", "message"),
    [
        (["xx"], [], "xx \\(not in the catalog\\)"),
        (["eu"], [], "eu \\(one of data.languages\\)"),
        (["bg"], ["bg"], "bg \\(also a selection-only language\\)"),
    ],
)
def test_bad_bridge_languages_are_named(data_root, bridges, extra, message):
    with pytest.raises(ConfigError, match=message):
        partitions_of(config(bridges, extra), data_root)

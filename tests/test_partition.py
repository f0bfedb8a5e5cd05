"""Partitions: the paper's two, seeded random ones, explicit ones, and the constraint."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfpyro.data.partition import (
    Partition,
    constraint_violations,
    explicit_partition,
    format_pair,
    no_data_partition,
    paper_partition,
    parse_pair,
    random_partition,
)
from pfpyro.errors import ConfigError


def grid(tasks, langs):
    return list(itertools.product(tasks, langs))


def eligible(pairs):
    """Pairs that may be held out: their language has another present task."""
    tasks_of = {}
    for task, lang in pairs:
        tasks_of.setdefault(lang, set()).add(task)
    return {(t, lang) for t, lang in pairs if len(tasks_of[lang]) > 1}


# ---------------------------------------------------------------------------------------------
# The paper's partitions


def test_paper_partitions_on_a_full_grid_hold_out_one_task_per_language():
    langs = [f"l{i:02d}" for i in range(33)]
    pairs = grid(["ner", "pos"], langs)
    parts = [paper_partition(pairs, langs, i) for i in (0, 1)]
    for part in parts:
        assert len(part.heldout) == len(part.seen) == 33  # the paper's counts
        assert sorted(lang for _, lang in part.heldout) == langs
    assert set(parts[0].heldout) == set(parts[1].seen)
    assert ("ner", "l00") in parts[0].heldout  # position 0 of the sorted product


def test_paper_partitions_of_our_catalog(catalog):
    langs = catalog.target_languages()
    pairs = [p for p in catalog.pairs() if p[1] in langs]
    parts = [paper_partition(catalog.pairs(), langs, i) for i in (0, 1)]
    for part in parts:
        part.validate()
        assert set(part.pairs) == set(pairs)  # English is left out
    # Complementary on every pair that can be held out; the rest is seen in both.
    assert not set(parts[0].heldout) & set(parts[1].heldout)
    assert set(parts[0].heldout) | set(parts[1].heldout) == eligible(pairs)
    assert set(parts[0].seen) & set(parts[1].seen) == {
        ("pos", "th"),
        ("pos", "myv"),
        ("pos", "sme"),
    }
    # The counts documented in paper_partition's docstring.
    assert [len(p.heldout) for p in parts] == [30, 30]
    assert [len(p.seen) for p in parts] == [33, 33]
    assert parts[0].counts() == {
        "ner": {"seen": 14, "heldout": 16},
        "pos": {"seen": 19, "heldout": 14},
    }
    assert parts[1].counts() == {
        "ner": {"seen": 16, "heldout": 14},
        "pos": {"seen": 17, "heldout": 16},
    }


def test_paper_partition_rejects_bad_requests():
    pairs = grid(["ner", "pos"], ["a", "b", "c"])
    with pytest.raises(ConfigError, match="0 or 1"):
        paper_partition(pairs, ["a", "b", "c"], 2)
    with pytest.raises(ConfigError, match=r"no present pairs for language.*zz"):
        paper_partition(pairs, ["a", "b", "zz"], 0)
    with pytest.raises(ConfigError, match="listed twice"):
        paper_partition(pairs, ["a", "a", "b"], 0)
    # An even number of languages puts all tasks of a language on the same parity.
    with pytest.raises(ConfigError, match="odd number of languages, not 2"):
        paper_partition(pairs, ["a", "b"], 0)


# ---------------------------------------------------------------------------------------------
# Validation and explicit partitions


def test_validate_names_the_pair_and_the_reason():
    with pytest.raises(ConfigError, match="ner/a cannot be held out: task ner is seen in no other"):
        Partition(seen=(("pos", "a"), ("pos", "b")), heldout=(("ner", "a"),)).validate()
    with pytest.raises(ConfigError, match="pos/b cannot be held out: language b is seen in no"):
        Partition(seen=(("pos", "a"), ("ner", "a")), heldout=(("pos", "b"),)).validate()
    with pytest.raises(ConfigError, match="pos/a both seen and held out"):
        Partition(seen=(("pos", "a"),), heldout=(("pos", "a"),)).validate()
    with pytest.raises(ConfigError, match="listed twice"):
        Partition(seen=(("pos", "a"), ("pos", "a")), heldout=()).validate()


def test_explicit_partition(catalog):
    part = explicit_partition(catalog.pairs(), [("pos", "fi"), ("ner", "tr")])
    assert part.heldout == (("ner", "tr"), ("pos", "fi"))
    assert part.role(("pos", "fi")) == "heldout" and part.role(("pos", "tr")) == "seen"
    assert len(part.seen) == len(catalog.pairs()) - 2
    with pytest.raises(ConfigError, match="pos/th cannot be held out: language th is seen in no"):
        explicit_partition(catalog.pairs(), [("pos", "th")])
    with pytest.raises(ConfigError, match="cannot hold out ner/th: not among the present pairs"):
        explicit_partition(catalog.pairs(), [("ner", "th")])
    with pytest.raises(ConfigError, match="not in the partition"):
        part.role(("ner", "th"))


def test_no_data_partition_holds_out_a_whole_language(catalog):
    part = no_data_partition(catalog.pairs(), "wo")
    assert part.heldout == (("ner", "wo"), ("pos", "wo"))
    assert not any(lang == "wo" for _, lang in part.seen)
    assert len(part.seen) == len(catalog.pairs()) - 2
    # the language breaks the usual constraint on purpose; the tasks still hold it
    assert constraint_violations(part.heldout, part.seen, unseen_languages=True) == []
    with pytest.raises(ConfigError, match="language wo is seen in no other task"):
        part.validate()
    with pytest.raises(ConfigError, match="cannot leave out 'zz'"):
        no_data_partition(catalog.pairs(), "zz")
    only_pos = [p for p in catalog.pairs() if p[0] == "pos" or p[1] != "wo"]
    only_pos = [p for p in only_pos if p[0] == "pos" or p[1] == "fi"]  # ner seen in fi only
    with pytest.raises(ConfigError, match="task ner is seen in no other language"):
        no_data_partition(only_pos, "fi")


def test_pair_text():
    assert parse_pair(" pos/fi ") == ("pos", "fi") and format_pair(("pos", "fi")) == "pos/fi"
    for bad in ("pos", "pos/", "/fi", "pos/fi/x"):
        with pytest.raises(ConfigError, match="TASK/LANG"):
            parse_pair(bad)


# ---------------------------------------------------------------------------------------------
# Random partitions


def test_random_partition_of_our_catalog_is_seeded_and_about_half(catalog):
    pairs = [p for p in catalog.pairs() if p[1] != "en"]
    part = random_partition(pairs, seed=3)
    assert part == random_partition(list(reversed(pairs)), seed=3)  # order does not matter
    assert part != random_partition(pairs, seed=4)
    assert set(part.pairs) == set(pairs)
    assert len(pairs) // 2 - 3 <= len(part.heldout) <= len(pairs) // 2
    assert not constraint_violations(part.heldout, part.seen)


def test_random_partition_rejects_a_bad_fraction():
    with pytest.raises(ConfigError, match="heldout_fraction"):
        random_partition(grid(["ner", "pos"], ["a", "b"]), seed=0, heldout_fraction=1.5)


pair_sets = st.sets(
    st.tuples(st.sampled_from(["ner", "pos", "dep"]), st.sampled_from(list("abcdefghij"))),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(pairs=pair_sets, seed=st.integers(0, 2**32 - 1), fraction=st.floats(0.0, 1.0))
def test_random_partitions_always_satisfy_the_constraint(pairs, seed, fraction):
    part = random_partition(pairs, seed, fraction)
    assert not constraint_violations(part.heldout, part.seen)
    assert not set(part.seen) & set(part.heldout)
    assert set(part.pairs) == pairs
    assert len(part.heldout) <= int(fraction * len(pairs))
    assert part == random_partition(sorted(pairs, reverse=True), seed, fraction)

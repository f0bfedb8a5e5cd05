"""pfpyro.pipeline: a config's run, stage by stage (docs/design.md §8).

- :mod:`~pfpyro.pipeline.setup`: catalog, feature store, partitions, the whole-config checks,
  the run record;
- :mod:`~pfpyro.pipeline.fit`: the PF and baseline fits, their length selection, what the
  components need from the run (typology vectors, source data);
- :mod:`~pfpyro.pipeline.grid`: ``pfpyro experiment``: the units, held-out predictions, reports;
- :mod:`~pfpyro.pipeline.fewshot`: ``pfpyro fewshot``: the k-shot study.

The modules are imported where used (the commands import them lazily, for start-up time).
"""

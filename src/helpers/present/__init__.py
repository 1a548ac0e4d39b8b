"""present — what the report shows: the one formatter of numbers, p-values and points (``format``),
words (``design``, ``findings``, ``trends``, ``repeats``, ``overview``, ``discussion``), figures
(``figures``, ``diagnostics``), HTML markup and references (``markup``), tables, the composite
ranking's view, ``section`` (what every study notebook calls after training) and one module per
kind with a section of its own (``views``).

May import: helpers.analysis, helpers.config (and helpers.run.crossval's fold scores). Never trains.
"""

"""analysis — numbers from run records, never HTML or words: reading records (``records``),
statistics (CIs, paired tests, Holm, rank correlation), repeats over seeds, cross-validation
comparisons, the composite ranking and the summary across studies.

May import: helpers.config (the record's type and the kinds registry), helpers.run.crossval (fold
scores and the selected configuration), helpers.data. Never trains.
"""

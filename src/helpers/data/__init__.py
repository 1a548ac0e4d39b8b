"""data — the datasets: the registry (where each dataset's raw files live, fetching, fingerprints),
readers of the Keras cache formats, splits into train/validation/test and cross-validation folds,
and feeding Keras batch by batch.

The lowest layer: imports nothing else from helpers.
"""

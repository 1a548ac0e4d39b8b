"""run — training: Keras models from specs, training and measuring one run, the run cache and its
keys, cross-validation refits, Keras Tuner searches, and the training cell of a study notebook
(``trainer``). Every module under helpers.data and helpers.run is part of every run's cache key.

May import: helpers.data, helpers.config.
"""

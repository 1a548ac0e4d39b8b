"""studybook's helpers, in layers; each imports only the layers below it (tests/test_layers.py):

    data      datasets: registry, readers, splits and folds, feeding Keras
    config    parameters: specs, the registry of study kinds, loading, plans, the run record's type
    run       training: models, one run, the run cache, cv refits, searches
    analysis  numbers from records: statistics, repeats, cross-validation, ranking
    present   what the report shows: formatting, words, figures, markup, per-kind views
    build     executing notebooks, the report, PDF
"""

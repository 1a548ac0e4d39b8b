"""config — the parameters: specs and their constraints (pydantic), the registry of study kinds,
loading and layering YAML, one-line errors with one shared "did you mean", and expanding a report
into a plan of run specs (the run record's shape lives here too, in ``record``).

May import: helpers.data (the dataset registry's names). Nothing above it.
"""

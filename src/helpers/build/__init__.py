"""build — the build: executing study notebooks with papermill (``execute``), generating the
notebooks from the kinds registry (``notebooks``), assembling and rendering the report
(``report``, ``render``) and printing it to PDF (``pdf``).

May import every layer below: helpers.present, helpers.analysis, helpers.run, helpers.config,
helpers.data. Nothing imports it.
"""

"""The study notebooks, generated from the kinds registry (helpers.config.kinds) so that every
notebook has the same skeleton: a header, a tagged ``parameters`` cell, the imports, one training
cell, then one call per cell that shows what the runs produced.

``python -m helpers.build.notebooks`` (``make notebooks``) writes ``notebooks/<kind>.ipynb``;
``--check`` only says which committed notebooks differ from what it would write (exit 1).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers.config.kinds import KINDS, REFERENCES, Kind
from helpers.config.load import NOTEBOOKS, examples

# After training, unless a kind has a body of its own: design, results, learning curves, the
# kind's figures, the reference study's figures beside ours (only where the parameters give them),
# then the findings (comparisons: the paired tests behind them, shown only when configurations have
# several seeds).
COMMON = ((None, "section.design(records)"), ("Results", "section.table(records)"),
          (None, "section.failures(records)"), ("Learning curves", "section.curves(records)"),
          (None, "section.diagnostics(records)"))
FINDINGS = (("Findings", "section.comparisons(records)"), (None, "section.findings(records)"))


def header(name: str, kind: Kind, example: bool) -> str:
    """The notebook's first cell: what it studies, what it trains when run by hand (``example``: a
    built-in example, helpers.config.load.by_hand) and how to run it with other parameters."""
    source = (f"**a small built-in example**, the study `{name}` of `params/examples.yaml` (scikit-learn's 8×8 "
              "digits, a few short runs): it shows what the notebook does and its numbers answer nothing; "
              f"where `params/report.yaml` has a study `{name}`, that one instead, in the smoke profile" if example else
              f"the study `{name}` of the default report, `params/report.yaml`, in the smoke profile (small data, "
              "few epochs)")
    return (f"# {kind.title}\n\n"
            f"A **studybook** study notebook. It varies {kind.varies} and holds everything else at the report's "
            "base configuration. `build_report.py` executes it with papermill, injecting the runs below.\n\n"
            f"Run by hand (Jupyter's *Run All*, or `papermill` without parameters), it trains {source}. It shares "
            "`build_report.py`'s run cache, `reports/.cache`: a run a build trained in the same profile "
            "(`--profile smoke`) is taken from it, not trained again. Nothing is written beside this notebook.\n\n"
            "With your own parameters: `python build_report.py params/<yours>.yaml --studies <name>` builds this "
            "study as a section of that report; or set `params_file`, `study` and `profile` in the parameters "
            f"cell below (`papermill notebooks/{name}.ipynb out.ipynb -p params_file params/<yours>.yaml -p study <name>`).")


def notebook(name: str, kind: Kind, examples: Iterable[str]) -> nbformat.NotebookNode:
    """The notebook of one study kind; ``examples``: the built-in examples' studies (load.examples())."""
    imports = "from helpers.present import section\n" + (f"from helpers.present.views import {kind.view}\n"
                                                         if kind.view else "") + "from helpers.run import trainer"
    cells = [
        new_markdown_cell(header(name, kind, name in examples), metadata={"tags": ["header"]}),
        new_code_cell(
            f'study = "{name}"  # the study\'s name (by hand: in params_file); its report section has the id study-<name>\n'
            f'title = "{kind.title}"\n'
            'question = ""\n'
            "runs = []  # run specs injected by build_report.py (docs/records.md); empty: run by hand, from params_file\n"
            "params_file = None  # by hand: the study's parameter file; None: params/report.yaml, else params/examples.yaml\n"
            'profile = "smoke"  # by hand: the profile (smoke, quick or full)\n'
            "results_path = None  # the records as JSON, read by build_report.py; None: not written\n"
            "events_path = None  # progress events (JSON lines) read by build_report.py\n"
            "threads = None  # TensorFlow threads; None: every core\n"
            "cache_dir = None  # run cache (build_report.py: <out>/.cache); None by hand: reports/.cache\n"
            "force = False  # True: train again even where the cache has the run",
            metadata={"tags": ["parameters"]}),
        new_code_cell(imports),
        # The report leaves this cell's code out (paths and threads of one build); Appendix C lists
        # the parameters it trained.
        new_code_cell("records = trainer.train(study, runs, params_file=params_file, profile=profile, results_path=results_path,\n"
                      "                        events_path=events_path, threads=threads, cache_dir=cache_dir, force=force)",
                      metadata={"tags": ["remove-input"]}),
    ]
    shown = kind.body if kind.body is not None else COMMON + kind.figures + (REFERENCES,) + FINDINGS
    for heading, call in shown:
        cells += ([new_markdown_cell(f"### {heading}")] if heading else []) + [new_code_cell(call)]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    for i, c in enumerate(nb.cells):
        c.id = f"{name.replace('_', '-')}-{i}"
    return nb


def text(nb: nbformat.NotebookNode) -> str:
    """A notebook as nbformat writes it to disk."""
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None, folder: Path = NOTEBOOKS) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.build.notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    stale, built_in = [], examples()
    for name, kind in KINDS.items():
        path = folder / f"{name}.ipynb"
        want = text(notebook(name, kind, built_in))
        if not path.exists() or path.read_text(encoding="utf-8") != want:
            stale.append(path)
            if not args.check:
                path.write_text(want, encoding="utf-8")
    if args.check:
        print("\n".join(f"out of date: {p}" for p in stale) or "all notebooks up to date")
        return 1 if stale else 0
    print(f"wrote {len(stale)} of {len(KINDS)} notebooks" + (" (the others were up to date)" if len(stale) < len(KINDS) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

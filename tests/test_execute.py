"""Execution and stitching without the CLI: a study notebook that raises, and event tailing."""
from __future__ import annotations

import json

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers.build import execute, report
from helpers.config import load

pytestmark = pytest.mark.e2e


def _broken_notebooks(tmp_path):
    """A copy of the notebook set in which depth's notebook raises after its parameters."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for nb_path in load.NOTEBOOKS.glob("*.ipynb"):
        (folder / nb_path.name).write_text(nb_path.read_text())
    nb = new_notebook(cells=[
        new_markdown_cell("# Broken", metadata={"tags": ["header"]}),
        new_code_cell('study = "depth"\ntitle = ""\nquestion = ""\nruns = []\nresults_path = "x.json"\n'
                      'events_path = None\nthreads = None', metadata={"tags": ["parameters"]}),
        new_code_cell('raise RuntimeError("the plotting step broke")'),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, folder / "depth.ipynb")
    return folder


def test_a_notebook_that_raises_becomes_an_error_section(tmp_path):
    notebooks = _broken_notebooks(tmp_path)
    plan = load.load(profile="smoke", studies=["depth"], notebooks=notebooks)
    outcome = execute.run_study(plan.studies["depth"], tmp_path / "out", threads=1, notebooks=notebooks)
    assert outcome.status == "failed"
    assert "RuntimeError" in outcome.error and "the plotting step broke" in outcome.error
    assert "the plotting step broke" in outcome.traceback
    assert outcome.notebook.exists()  # papermill keeps the executed notebook, error included

    report.build(plan, [outcome], tmp_path / "r.html", tmp_path / "r.json")
    soup = BeautifulSoup((tmp_path / "r.html").read_text(), "html.parser")
    box = soup.find(class_="study-error")
    assert box is not None and "the plotting step broke" in box.get_text()
    assert soup.find(id="study-depth") is not None
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["studies"][0]["status"] == "failed"


def test_event_watcher_waits_for_whole_lines(tmp_path):
    path = tmp_path / "s.events.jsonl"
    seen = []
    watcher = execute.EventWatcher([path], seen.append)
    watcher.poll()  # no file yet: nothing, no error
    path.write_text(json.dumps({"event": "start", "index": 1}) + "\n" + '{"event": "do')
    watcher.poll()
    assert seen == [{"event": "start", "index": 1}]
    with open(path, "a") as f:
        f.write('ne", "index": 1}\n')
    watcher.poll()
    assert seen[-1] == {"event": "done", "index": 1} and len(seen) == 2

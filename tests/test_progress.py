"""The build's progress lines (build_report.Progress), one per finished run when not on a terminal."""
from __future__ import annotations

import importlib.util
import io

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("build_report", ROOT / "build_report.py")
build_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_report)

DONE = {"event": "done", "study": "lr", "index": 1, "total": 3, "label": "learning rate 0.1", "cached": False,
        "val_accuracy": 0.1, "test_accuracy": 0.1, "seconds": 2.5, "error": None, "reason": None}


@pytest.mark.parametrize("event, expected", [
    ({"status": "ok"}, "lr 1/3 learning rate 0.1: val 0.1000  test 0.1000  2.5 s"),
    ({"status": "ok", "cached": True}, "val 0.1000  test 0.1000  reused from cache"),
    ({"status": "ok", "test_accuracy": None}, "val 0.1000  2.5 s"),  # a cv fold: no test score
    ({"status": "diverged", "reason": "loss became NaN at epoch 2"},
     "test 0.1000  2.5 s  DIVERGED: loss became NaN at epoch 2"),
    ({"status": "failed", "error": "ValueError: bad"}, "learning rate 0.1: FAILED: ValueError: bad"),
])
def test_a_finished_run_gets_one_line(event, expected):
    out = io.StringIO()
    progress = build_report.Progress(3, stream=out)
    progress.event(DONE | event)
    assert expected in out.getvalue() and out.getvalue().startswith("  [1/3] ")
    assert "None" not in out.getvalue()

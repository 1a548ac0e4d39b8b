"""What each build keeps (reports/NAME.history/) and what the next build says changed: the
comparison on hand-made records, pruning, --gc on a fake cache, and one rebuild of the session's
digits report with one changed value."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from conftest import ROOT, make_record, run_build
from helpers.analysis import noise
from helpers.build import history
from helpers.build.execute import Outcome
from helpers.present import changes, findings as finding_words

WIDTH = {"units": [8, 32, 128], "layers": 2}


def runs(study: str, vals: dict[str, float]) -> list[dict]:
    return [make_record(label, val, study=study) | {"key": f"{study}-{label}"} for label, val in vals.items()]


def executed(folder: Path, name: str, records: list[dict]) -> Path:
    """A study notebook as executed: its findings (words from the records) under the Findings heading."""
    words = new_code_cell("section.findings(records)")
    words.outputs = [new_output("execute_result", data={"text/markdown": finding_words.findings(records)},
                                execution_count=1)]
    path = folder / f"{name}.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("### Results"), new_code_cell("x"),
                                       new_markdown_cell(history.HEADING), words]), path)
    return path


def entry(width=WIDTH, depth_vals=None, width_vals=None, epochs=5) -> dict:
    """A build's entry from its records and executed notebooks, as history.entry makes it."""
    depth = runs("depth", depth_vals or {"1 layer": 0.90, "2 layers": 0.92})
    wide = runs("width", width_vals or {"8 units": 0.80, "32 units": 0.90, "128 units": 0.93})
    plan = SimpleNamespace(source="params/digits.yaml", studies={"depth": None, "width": None},
                           merged={"profile": "smoke", "base": {"training": {"epochs": epochs}},
                                   "studies": {"depth": {"layers": [1, 2]}, "width": dict(width),
                                               "loss": {"losses": ["mse"]}}})
    with tempfile.TemporaryDirectory() as tmp:
        return history.entry(plan, [Outcome(name, records=rs, notebook=executed(Path(tmp), name, rs))
                                    for name, rs in (("depth", depth), ("width", wide))])


def test_an_entry_holds_parameters_of_its_studies_keys_metrics_floor_and_findings():
    e = entry()
    assert list(e["parameters"]["studies"]) == ["depth", "width"]  # loss: not built, not a parameter of it
    assert {r["id"]: r["key"] for r in e["runs"]}["32 units"] == "width-32 units"
    assert e["runs"][0]["metrics"] == {"val_accuracy": 0.90, "test_accuracy": pytest.approx(0.895)}
    records = runs("depth", {"1 layer": 0.90, "2 layers": 0.92}) + runs(
        "width", {"8 units": 0.80, "32 units": 0.90, "128 units": 0.93})
    assert e["noise_floor"] == noise.floor(records)  # the report's own floor, not a second one
    assert set(e["findings"]) == {"depth", "width"}
    assert e["findings"]["width"] == finding_words.findings(records[2:])  # the words under the heading only
    assert "width-8 units" in e["cache"]["runs"]


def test_changed_parameters_are_set_paths():
    d = history.diff(entry(), entry(width={"units": [8, 16, 32], "layers": 2}, epochs=7))
    assert ("width.units", [8, 32, 128], [8, 16, 32]) in d["parameters"]
    assert ("base.training.epochs", 5, 7) in d["parameters"]
    assert len(d["parameters"]) == 2


def test_runs_added_and_removed():
    new = entry(width={"units": [8, 16, 32], "layers": 2},
                width_vals={"8 units": 0.80, "16 units": 0.85, "32 units": 0.90})
    d = history.diff(entry(), new)
    assert d["added"] == [("width", "16 units", 0.85)]
    assert d["removed"] == [("width", "128 units", 0.93)]
    assert not d["moves"] and not d["studies_added"]


def test_only_moves_beyond_the_noise_floor_are_moves():
    old = entry()
    new = entry(depth_vals={"1 layer": 0.905, "2 layers": 0.95})  # +0.5 and +3 points; floor 1 point
    assert new["noise_floor"] == pytest.approx(noise.FALLBACK)
    d = history.diff(old, new)
    assert d["moves"] == [("depth", "2 layers", 0.92, 0.95)]
    assert d["compared"] == 5
    html = changes.box(d)
    assert "more than the noise floor (1.0 points) for 1 of the 5 configurations" in html
    assert "depth: 2 layers: 0.9200 → 0.9500 (+3.0 points)" in html and "depth: 1 layer" not in html


def test_no_move_is_said_so_with_the_floor():
    d = history.diff(entry(), entry(depth_vals={"1 layer": 0.905, "2 layers": 0.92}))
    assert not d["moves"]
    assert ("No configuration's validation accuracy moved by more than the noise floor (1.0 points)"
            in changes.box(d))


def test_reworded_findings_are_named_with_their_previous_wording():
    old, new = entry(), entry(width_vals={"8 units": 0.80, "32 units": 0.95, "128 units": 0.93})
    d = history.diff(old, new)
    assert [s for s, _, _ in d["findings"]] == ["width"]
    assert d["findings"][0][1] == old["findings"]["width"]
    assert "Findings reworded: <em>width</em>" in changes.box(d)


def test_a_study_added_is_no_parameter_change():
    old = entry()
    new = json.loads(json.dumps(old))
    new["parameters"]["studies"]["loss"] = {"losses": ["mse"]}
    d = history.diff(old, new)
    assert d["studies_added"] == ["loss"] and not d["parameters"]


def test_the_text_table_has_a_row_per_change():
    new = entry(width={"units": [8, 16, 32], "layers": 2},
                width_vals={"8 units": 0.80, "16 units": 0.85, "32 units": 0.90})
    text = changes.text_table(history.diff(entry(), new) | {"previous": "a", "current": "b"})
    assert re.search(r"parameter\s+width\.units\s+\[8, 32, 128\]\s+\[8, 16, 32\]", text)
    assert re.search(r"run added\s+width: 16 units\s+—\s+0\.8500", text)
    assert re.search(r"run removed\s+width: 128 units\s+0\.9300\s+—", text)


def test_pruning_keeps_the_newest(tmp_path):
    folder = tmp_path / "r.history"
    for i in range(5):
        history.record(folder, {"i": i}, keep=3)
    kept = history.kept(folder)
    assert [json.loads(p.read_text())["i"] for p in kept] == [2, 3, 4]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_compare_picks_kept_builds_or_says_which_are_kept(tmp_path):
    folder = tmp_path / "r.history"
    with pytest.raises(history.HistoryError, match="two kept builds"):
        history.pick(folder)
    for i in range(3):
        history.record(folder, {"i": i})
    names = [p.stem for p in history.kept(folder)]
    assert [e["i"] for e in history.pick(folder)] == [1, 2]
    assert [e["i"] for e in history.pick(folder, "1")] == [0, 2]
    assert [e["i"] for e in history.pick(folder, names[1], "1")] == [1, 0]
    with pytest.raises(history.HistoryError, match="no such kept build"):
        history.pick(folder, "nope")


def fake_entry(cache: Path, part: str, name: str, size: int = 100) -> Path:
    folder = cache / part / name
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text("x" * size)
    return folder


def test_gc_deletes_exactly_what_no_kept_build_refers_to(tmp_path):
    out, cache = tmp_path, tmp_path / ".cache"
    in_history, in_report, other_report, orphan = (fake_entry(cache, "runs", k) for k in ("h", "r", "o", "gone"))
    kept_search, lost_search = fake_entry(cache, "search", "s1"), fake_entry(cache, "search", "s2", 50)
    history.record(out / "a.history", {"cache": {"runs": ["h"], "search": []}})
    (out / "a.json").write_text(json.dumps({"runs": [{"key": "r", "search": {"directory": "s1"}}]}))
    (out / "b.json").write_text(json.dumps({"runs": [{"key": "o"}]}))  # another report sharing the cache
    freed = history.gc(out, cache)
    assert freed == {"runs": 1, "search": 1, "bytes": 150}
    assert all(p.exists() for p in (in_history, in_report, other_report, kept_search))
    assert not orphan.exists() and not lost_search.exists()


def test_gc_and_compare_on_the_command_line(tmp_path):
    out = tmp_path / "out"
    fake_entry(out / ".cache", "runs", "orphan")
    gc = run_build(ROOT / "params" / "digits.yaml", "--out", out, "--gc")
    assert gc.returncode == 0 and "1 cached runs" in gc.stderr
    bad = run_build(ROOT / "params" / "digits.yaml", "--out", out, "--compare")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "two kept builds" in bad.stderr


def test_a_rebuild_with_one_changed_value_says_what_changed(digits_report, tmp_path):
    first = history.kept(digits_report.out / "digits.history")
    assert len(first) == 1 and 'id="changes"' not in digits_report.html  # a first build: nothing to compare
    out = tmp_path / "out"
    shutil.copytree(digits_report.out, out)
    (out / ".build.lock").unlink(missing_ok=True)
    b = run_build(ROOT / "params" / "digits.yaml", "--profile", "smoke", "--out", out,
                  "--set", "width.units=[8,16,32]")
    assert b.returncode == 0, b.stderr[-3000:]
    assert len(history.kept(out / "digits.history")) == 2
    page = (out / "digits.html").read_text()
    box = page[page.index('id="changes"'):]
    box = box[:box.index("</div>")]
    assert page.index('id="Abstract"') < page.index('id="changes"') < page.index('id="contents"')
    assert "<code>width.units</code>: [8, 32, 128] → [8, 16, 32]" in box
    assert "Runs added (1): width: 16 units" in box and "Runs removed (1): width: 128 units" in box
    again = run_build(ROOT / "params" / "digits.yaml", "--profile", "smoke", "--out", out,
                      "--set", "width.units=[8,16,32]")
    assert "(nothing changed)" in again.stderr and len(history.kept(out / "digits.history")) == 2
    table = run_build(ROOT / "params" / "digits.yaml", "--out", out, "--compare")
    assert table.returncode == 0, table.stderr
    assert re.search(r"parameter\s+width\.units\s+\[8, 32, 128\]\s+\[8, 16, 32\]", table.stdout)
    assert re.search(r"run added\s+width: 16 units", table.stdout)
    assert re.search(r"run removed\s+width: 128 units", table.stdout)


def test_the_box_sits_after_the_abstract_and_leaves_the_sections_as_they_were(tmp_path):
    from bs4 import BeautifulSoup
    from helpers.build import render, report
    from helpers.config.load import load
    from test_report import fake_records
    params = tmp_path / "box.yaml"
    params.write_text("title: Box\ndataset: digits\nstudies:\n  depth: {layers: [1, 2]}\n")
    plan = load(params, profile="smoke")
    d = history.diff(entry(), entry(width={"units": [8, 16, 32], "layers": 2}))
    page = BeautifulSoup(render.render(report.combined(plan, fake_records(plan), "2024-01-01", d)), "html.parser")
    ids = [t["id"] for t in page.find_all(id=True)]
    assert ids.index("Abstract") < ids.index("changes") < ids.index("contents")
    assert "width.units" in page.find(id="changes").get_text()
    entries = [a["href"] for a in page.select("nav.contents a")]
    assert entries == ["#methodology", "#study-depth", "#summary", "#discussion", "#conclusions", "#appendix"]

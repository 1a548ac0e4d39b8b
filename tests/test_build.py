"""End to end, as a user runs it: build_report.py in the smoke profile, in a subprocess."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ["depth", "width", "loss", "activation", "regularization", "optimizer", "batch_size",
           "cnn_vs_baseline"]
pytestmark = pytest.mark.e2e


def build(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "build_report.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    proc = build("--profile", "smoke", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (out / "report.html").read_text()
    return out, proc, html, json.loads((out / "report.json").read_text())


def test_every_study_has_its_section(smoke):
    _, _, html, data = smoke
    soup = BeautifulSoup(html, "html.parser")
    for name in STUDIES:
        section = soup.find(id=f"study-{name}")
        assert section is not None, name
        assert soup.find("table", id=f"results-{name}") is not None, name
    assert [s["name"] for s in data["studies"]] == STUDIES
    assert all(s["status"] == "ok" for s in data["studies"])


def test_figures_are_embedded_and_nothing_is_fetched(smoke):
    _, _, html, _ = smoke
    soup = BeautifulSoup(html, "html.parser")
    imgs = soup.find_all("img")
    # learning curves + at least one study-specific figure per study
    assert len(imgs) >= 2 * len(STUDIES)
    assert all(img["src"].startswith("data:image/png;base64,") for img in imgs)
    for tag in soup.find_all(src=True):
        assert not re.match(r"(https?:)?//", tag["src"]), tag["src"][:80]
    for tag in soup.find_all("link", href=True):
        assert not re.match(r"(https?:)?//", tag["href"]), tag["href"]
    css = " ".join(s.get_text() for s in soup.find_all("style"))
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css)
    assert not re.search(r"@import\s+(url\()?\s*['\"]?(https?:)?//", css)


def test_numbers_in_the_html_are_those_in_the_json(smoke):
    _, _, html, data = smoke
    soup = BeautifulSoup(html, "html.parser")
    runs = {(r["study"], r["label"]): r for r in data["runs"]}
    assert len(runs) == sum(s["runs"] for s in data["studies"]) == 32
    checked = 0
    for name in STUDIES:
        table = soup.find("table", id=f"results-{name}")
        head = [th.get_text(strip=True) for th in table.find("thead").find_all("tr")[0].find_all("th")]
        for tr in table.find("tbody").find_all("tr"):
            cells = [c.get_text(strip=True) for c in tr.find_all(["th", "td"])]
            row = dict(zip(head[1:], cells[1:]))
            metrics = runs[(name, cells[0])]["metrics"]
            for col, key in (("test acc", "test_accuracy"), ("val acc", "val_accuracy"),
                             ("F1 (macro)", "f1_macro")):
                assert float(row[col]) == pytest.approx(round(metrics[key], 4), abs=1e-9), (name, col)
                checked += 1
            assert int(row["parameters"]) == metrics["params"]
    assert checked == 3 * 32
    # The abstract's headline number comes from the same records.
    best = max((r for r in data["runs"] if r["status"] == "ok"),
               key=lambda r: (r["metrics"]["val_accuracy"], -r["metrics"]["params"]))
    abstract = soup.find(id="Abstract").find_parent("div").get_text(" ")
    assert f"{best['metrics']['test_accuracy']:.4f}" in abstract


def test_report_has_the_coursework_parts(smoke):
    _, _, html, data = smoke
    soup = BeautifulSoup(html, "html.parser")
    for anchor in ("contents", "methodology", "summary", "conclusions", "appendix"):
        assert soup.find(id=anchor) is not None, anchor
    for a in soup.select("nav.contents a"):
        assert soup.find(id=a["href"][1:]) is not None, a["href"]
    assert soup.find("table", id="appendix-runs").find("tbody").find_all("tr").__len__() == 32
    versions = soup.find("table", id="versions").get_text(" ")
    for pkg in ("python", "tensorflow", "keras"):
        assert pkg in versions
    assert data["title"] in soup.title.get_text()
    assert not soup.select(".jp-CodeCell .jp-InputArea"), "code cells must be hidden"
    assert "section.train(" not in html


def test_progress_and_summary_on_a_non_terminal(smoke):
    out, proc, _, _ = smoke
    done_lines = [ln for ln in proc.stderr.splitlines() if re.match(r"\s+\[\d+/32\] ", ln)]
    assert len(done_lines) == 32
    assert re.search(r"^study\s+runs\s+seconds\s+status\s+trained\s+reused\s+why$", proc.stderr, re.M)
    for name in STUDIES:
        assert re.search(rf"^{name}\s+\d+\s+[\d.]+\s+ok\s+\d+\s+\d+\s+first build$", proc.stderr, re.M), name
    assert "absl" not in proc.stderr and "IPKernelApp" not in proc.stderr  # kernel noise stays in logs
    assert sorted(p.stem for p in (out / "report").glob("*.ipynb")) == sorted(STUDIES)


def test_bad_input_exits_2_and_leaves_the_report_alone(smoke):
    out, _, _, _ = smoke
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
    proc = build("--profile", "smoke", "--out", str(out), "--set", "width.units=[8,-1]")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--set" in lines[0] and "width.units[1]" in lines[0] and "-1" in lines[0]
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_a_failing_study_is_shown_and_the_others_still_run(tmp_path):
    # Six 2x2 poolings cannot fit a 28x28 image: a real runtime failure from valid-looking input.
    proc = build("--profile", "smoke", "--out", str(tmp_path), "--studies", "depth,cnn_vs_baseline",
                 "--set", "depth.layers=[1]", "--set", "cnn_vs_baseline.variants.CNN.filters=[4,4,4,4,4,4]")
    assert proc.returncode == 1, proc.stderr[-2000:]
    soup = BeautifulSoup((tmp_path / "report.html").read_text(), "html.parser")
    data = json.loads((tmp_path / "report.json").read_text())
    status = {s["name"]: s["status"] for s in data["studies"]}
    assert status == {"depth": "ok", "cnn_vs_baseline": "failed"}
    failed = soup.find(id="study-cnn_vs_baseline").find_parent("div", class_="jp-Cell")
    box = None
    for sib in [failed, *failed.find_next_siblings("div")]:
        box = sib.find(class_="study-error")
        if box:
            break
    assert box is not None and "CNN" in box.get_text()
    assert soup.find("table", id="results-depth") is not None
    assert re.search(r"^cnn_vs_baseline\s+2\s+[\d.]+\s+failed\s+2\s+0\s", proc.stderr, re.M)

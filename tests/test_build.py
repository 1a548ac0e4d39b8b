"""End to end, as a user runs it: build_report.py in the smoke profile, in a subprocess, on the
digits report (offline, no data files needed); one Fashion-MNIST build of the default report,
skipped where its files are missing; and the README's profiles table against the plans."""
from __future__ import annotations

import gzip
import hashlib
import json
import re

import pytest
from bs4 import BeautifulSoup
from conftest import ROOT, run_build

from helpers.config import load

DIGITS = ROOT / "params" / "digits.yaml"
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def plan():
    return load.load(DIGITS, profile="smoke")


@pytest.fixture(scope="module")
def studies(plan) -> list[str]:
    return list(plan.studies)


@pytest.fixture(scope="module")
def n_runs(plan) -> int:
    return sum(len(p.runs) for p in plan.studies.values())


@pytest.fixture(scope="module")
def smoke(digits_report):
    return digits_report.out, digits_report.proc, digits_report.html, digits_report.data


@pytest.mark.e2e
def test_every_study_has_its_section(smoke, studies):
    _, _, html, data = smoke
    soup = BeautifulSoup(html, "html.parser")
    for name in studies:
        section = soup.find(id=f"study-{name}")
        assert section is not None, name
        assert soup.find("table", id=f"results-{name}") is not None, name
    assert [s["name"] for s in data["studies"]] == studies
    assert all(s["status"] == "ok" for s in data["studies"])


@pytest.mark.e2e
def test_figures_are_embedded_and_nothing_is_fetched(smoke, studies):
    _, _, html, _ = smoke
    soup = BeautifulSoup(html, "html.parser")
    imgs = soup.find_all("img")
    # learning curves + at least one study-specific figure per study
    assert len(imgs) >= 2 * len(studies)
    assert all(img["src"].startswith("data:image/png;base64,") for img in imgs)
    for tag in soup.find_all(src=True):
        assert not re.match(r"(https?:)?//", tag["src"]), tag["src"][:80]
    for tag in soup.find_all("link", href=True):
        assert not re.match(r"(https?:)?//", tag["href"]), tag["href"]
    css = " ".join(s.get_text() for s in soup.find_all("style"))
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css)
    assert not re.search(r"@import\s+(url\()?\s*['\"]?(https?:)?//", css)


@pytest.mark.e2e
def test_numbers_in_the_html_are_those_in_the_json(smoke, studies, n_runs):
    _, _, html, data = smoke
    soup = BeautifulSoup(html, "html.parser")
    runs = {(r["study"], r["label"]): r for r in data["runs"]}
    assert len(runs) == sum(s["runs"] for s in data["studies"]) == n_runs
    checked = 0
    for name in studies:
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
    assert checked == 3 * n_runs
    # The abstract's headline number comes from the same records.
    best = max((r for r in data["runs"] if r["status"] == "ok"),
               key=lambda r: (r["metrics"]["val_accuracy"], -r["metrics"]["params"]))
    abstract = soup.find(id="Abstract").find_parent("div").get_text(" ")
    assert f"{best['metrics']['test_accuracy']:.4f}" in abstract


@pytest.mark.e2e
def test_report_has_the_coursework_parts(smoke, n_runs):
    _, _, html, data = smoke
    soup = BeautifulSoup(html, "html.parser")
    for anchor in ("contents", "methodology", "summary", "conclusions", "appendix"):
        assert soup.find(id=anchor) is not None, anchor
    for a in soup.select("nav.contents a"):
        assert soup.find(id=a["href"][1:]) is not None, a["href"]
    assert soup.find("table", id="appendix-runs").find("tbody").find_all("tr").__len__() == n_runs
    versions = soup.find("table", id="versions").get_text(" ")
    for pkg in ("python", "tensorflow", "keras"):
        assert pkg in versions
    assert data["title"] in soup.title.get_text()
    assert not soup.select(".jp-CodeCell .jp-InputArea"), "code cells must be hidden"
    assert "trainer.train(" not in html  # the notebooks' training call (helpers.run.trainer)


@pytest.mark.e2e
def test_progress_and_summary_on_a_non_terminal(smoke, studies, n_runs):
    out, proc, _, _ = smoke
    done_lines = [ln for ln in proc.stderr.splitlines() if re.match(rf"\s+\[\d+/{n_runs}\] ", ln)]
    assert len(done_lines) == n_runs
    assert re.search(r"^study\s+runs\s+seconds\s+status\s+trained\s+reused\s+why$", proc.stderr, re.M)
    for name in studies:
        assert re.search(rf"^{name}\s+\d+\s+[\d.]+\s+ok\s+\d+\s+\d+\s+first build$", proc.stderr, re.M), name
    assert "absl" not in proc.stderr and "IPKernelApp" not in proc.stderr  # kernel noise stays in logs
    assert sorted(p.stem for p in (out / "digits").glob("*.ipynb")) == sorted(studies)


@pytest.mark.e2e
def test_bad_input_exits_2_and_leaves_the_report_alone(smoke):
    out, _, _, _ = smoke
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
    proc = run_build(DIGITS, "--profile", "smoke", "--out", out, "--set", "width.units=[8,-1]")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--set" in lines[0] and "width.units[1]" in lines[0] and "-1" in lines[0]
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.e2e
def test_a_failing_study_is_shown_and_the_others_still_run(tmp_path):
    # Six 2x2 poolings cannot fit an 8x8 image: a real runtime failure from valid-looking input.
    proc = run_build(DIGITS, "--profile", "smoke", "--out", tmp_path, "--studies", "depth,cnn_vs_baseline",
                     "--set", "depth.layers=[1]", "--set", "cnn_vs_baseline.variants.CNN.filters=[4,4,4,4,4,4]",
                     env={"PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 1, proc.stderr[-2000:]
    soup = BeautifulSoup((tmp_path / "digits.html").read_text(), "html.parser")
    data = json.loads((tmp_path / "digits.json").read_text())
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
    # The dense baseline is depth's configuration: trained once, for depth, and reused here.
    assert re.search(r"^cnn_vs_baseline\s+2\s+[\d.]+\s+failed\s+1\s+1\s", proc.stderr, re.M)


# ---------------------------------------------------------------- Fashion-MNIST: the default report
def fashion_folder():
    """The folder holding Fashion-MNIST's files (Keras cache or Debian's package), or None."""
    from helpers.data import registry
    try:
        return registry.locate("fashion_mnist", download=False)
    except registry.DatasetMissing:
        return None


needs_fashion = pytest.mark.skipif(
    fashion_folder() is None,
    reason="Fashion-MNIST's files are in neither /usr/share/datasets/fashion-mnist (apt-get install "
           "dataset-fashion-mnist) nor the Keras cache ($KERAS_HOME/datasets/fashion-mnist, "
           "~/.keras/datasets/fashion-mnist); `make setup` fetches them")


@pytest.mark.e2e
@needs_fashion
def test_the_default_report_builds_on_fashion_mnist(default_report):
    """Without a parameter file the build reads params/report.yaml: eight studies on 28x28
    Fashion-MNIST images, subsampled as the smoke profile says (800 train / 200 validation / 500 test)."""
    plan = load.load(ROOT / "params" / "report.yaml", profile="smoke")
    data = default_report.data
    assert [s["name"] for s in data["studies"]] == list(plan.studies)
    assert all(s["status"] == "ok" for s in data["studies"])
    assert len(data["runs"]) == sum(len(p.runs) for p in plan.studies.values())
    for r in data["runs"]:
        info = r["data_info"]
        assert info["dataset"] == "fashion_mnist" and info["shape"] == [28, 28]
        assert (info["train"], info["val"], info["test"]) == (800, 200, 500)
    assert data["runs"][0]["class_names"][:2] == ["T-shirt/top", "Trouser"]
    soup = BeautifulSoup(default_report.html, "html.parser")
    for name in plan.studies:
        assert soup.find("table", id=f"results-{name}") is not None, name


# ---------------------------------------------------------------- README: the profiles table
def readme_profiles() -> dict[str, dict]:
    """The README's profiles table: profile -> train, test, validation share, epochs cap, and the
    configured epochs where the profile leaves them as configured."""
    text = README.read_text()
    table = text.split("### Profiles", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines()[2:]:  # after the header and the rule
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.match(r"`(\w+)`", cells[0])[1]
        data = re.match(r"([\d,]+)(?: train)?(?: \((\d+) % of it validation\))? / ([\d,]+)", cells[1])
        assert data, cells[1]
        cap = re.fullmatch(r"≤ (\d+)", cells[2])
        configured = re.match(r"as configured \((\d+)", cells[2])
        assert cap or configured, cells[2]
        rows[name] = {"train": int(data[1].replace(",", "")), "test": int(data[3].replace(",", "")),
                      "validation": int(data[2]) / 100 if data[2] else None,
                      "stratified": "stratified" in cells[1],
                      "cap": int(cap[1]) if cap else None,
                      "configured": int(configured[1]) if configured else None}
    return rows


def test_readme_lists_every_profile():
    plan = load.load(ROOT / "params" / "report.yaml")
    assert list(readme_profiles()) == list(plan.report.profiles) == ["smoke", "quick", "full"]


def _sizes(folder) -> tuple[int, int]:
    """Fashion-MNIST's train and test counts, from the label files' idx headers."""
    counts = []
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(folder / name) as f:
            counts.append(int.from_bytes(f.read(8)[4:], "big"))
    return counts[0], counts[1]


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
def test_profiles_match_the_readme_table(profile):
    """params/report.yaml loaded with each profile: data sizes and epoch caps as the README says."""
    row = readme_profiles()[profile]
    plan = load.load(ROOT / "params" / "report.yaml", profile=profile)
    runs = [r for p in plan.studies.values() for r in p.runs]
    data = {(r["config"]["data"]["train_samples"], r["config"]["data"]["test_samples"]) for r in runs}
    epochs = {r["config"]["training"]["epochs"] for r in runs}
    assert plan.report.profiles[profile].epochs == row["cap"]
    if row["cap"] is not None:
        assert max(epochs) <= row["cap"]
    else:  # as configured: the base configuration's epochs, uncapped, with its early stopping
        assert epochs == {row["configured"]} == {plan.report.base.training.epochs}
        assert plan.report.base.training.early_stopping is not None
    if row["validation"] is not None:
        assert {r["config"]["data"]["validation_split"] for r in runs} == {row["validation"]}
    if row["stratified"]:
        assert {r["config"]["data"]["validation_method"] for r in runs} == {"stratified"}
    if data == {(None, None)}:  # no subsample: the whole data set, as large as the table says
        folder = fashion_folder()
        if folder is None:
            pytest.skip("the full profile uses all of Fashion-MNIST; its files are missing, so its size is unknown")
        assert _sizes(folder) == (row["train"], row["test"])
    else:
        assert data == {(row["train"], row["test"])}

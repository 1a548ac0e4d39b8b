"""The reference studies' parameter files, built end to end in the smoke profile on small files
written in the real Keras formats (tests/fakedata.py): never the real data, never the network."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import ROOT, fake_keras_data, run_build

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def keras_dir():
    return fake_keras_data()  # the session's shared workers see the same files


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build_report.py on params/<params> in the smoke profile (conftest.run_build: offline), with the
    data read from ``data_dir`` and, for ``home``, no ~/.keras of the user's either. KERAS_HOME
    points at an empty folder, so a Keras cache of the environment is never searched."""
    keras_home = tmp_path_factory.mktemp("keras-home")

    def run(params: str, out: Path, data_dir: Path | None, *args: str, home: Path | None = None):
        env = {"PYTHONUNBUFFERED": "1", "KERAS_HOME": str(keras_home)}
        if data_dir is not None:
            env["STUDYBOOK_DATA_DIR"] = str(data_dir)
        if home is not None:
            env["HOME"] = str(home)
        return run_build(ROOT / "params" / params, "--profile", "smoke", "--out", out, *args, env=env, timeout=900)
    return run


def check_report(out: Path, name: str, studies: list[str]) -> tuple[BeautifulSoup, dict]:
    soup = BeautifulSoup((out / f"{name}.html").read_text(), "html.parser")
    data = json.loads((out / f"{name}.json").read_text())
    assert [s["name"] for s in data["studies"]] == studies
    for study in studies:
        assert soup.find(id=f"study-{study}") is not None, study
        assert soup.find("table", id=f"results-{study}") is not None, study
    assert all(r["status"] == "ok" for r in data["runs"])
    return soup, data


def test_imdb_report_r1(tmp_path, keras_dir, build):
    # Two seeds (optimizer; one for regularization) and two folds where the file asks for three and
    # five, and without width (a sweep as depth is), loss_64 and activation_64 (loss and activation
    # again, on 2×64): every kind and code path of the file, at under half the runs (CI time).
    fewer = ["regularization.repeats=1", "optimizer.repeats=2", "robustness.top=2", "robustness.repeats=2",
             "cv.folds=2"]
    studies = ["depth", "loss", "activation", "regularization", "optimizer", "robustness", "cv"]
    proc = build("imdb.yaml", tmp_path, keras_dir, "--studies", ",".join(studies),
                 *[a for s in fewer for a in ("--set", s)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    soup, data = check_report(tmp_path, "imdb", studies)
    # depth 4 + loss 2 + activation 3 + regularization 5 + optimizer 3 × 2 seeds
    # + robustness: top 2 × 2 seeds + cv: 2 variants × 2 folds and the selected one's refit
    assert len(data["runs"]) == 4 + 2 + 3 + 5 + 3 * 2 + 2 * 2 + 2 * 2 + 1
    run = data["runs"][0]
    # R1's split: of the 1,000-review smoke subsample, the first 40 % validate.
    assert run["data_info"]["train"] == 600 and run["data_info"]["val"] == 400
    assert run["config"]["data"]["num_words"] == 10000
    folds = [r for r in data["runs"] if "fold" in r["config"]["data"]]
    assert len(folds) == 4 and all("roc_auc" not in r["metrics"] for r in folds)  # folds never test
    for r in data["runs"]:
        assert {"roc_auc", "average_precision", "brier"} <= set(r["metrics"]) or r in folds
        assert r["metrics"]["params"] == r["config"]["model"]["hidden"][0] * 10001 + sum(
            a * b + b for a, b in zip(r["config"]["model"]["hidden"], r["config"]["model"]["hidden"][1:] + [1]))
    # ROC / precision-recall / calibration of each study's best configuration, but robustness's
    # and cv's (their tables compare runs of the other studies' configurations)
    assert len(soup.find_all(string=lambda s: s and "ROC, precision–recall and calibration" in s)) == len(studies) - 2


def test_imdb_models_report_r2(tmp_path, keras_dir, build):
    proc = build("imdb_models.yaml", tmp_path, keras_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, data = check_report(tmp_path, "imdb_models", ["models"])
    epochs = {r["label"]: r["config"]["training"]["epochs"] for r in data["runs"]}
    assert len(epochs) == 3 and min(epochs.values()) <= 2  # smoke caps every model's epochs


def test_cifar10_report_r4(tmp_path, keras_dir, build):
    # One of the file's three searches, two seeds where it asks for three and without its
    # regularization study (CI time): search_2 and search_3 are the same kind with narrower spaces,
    # regularization is in R1 (the whole file's plan is loaded in tests/test_references.py).
    proc = build("cifar10.yaml", tmp_path, keras_dir, "--studies", "scale_up,tuning,search_1",
                 "--set", "scale_up.repeats=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    soup, data = check_report(tmp_path, "cifar10", ["scale_up", "tuning", "search_1"])
    softmax_only = next(r for r in data["runs"] if r["label"] == "softmax only")
    assert softmax_only["metrics"]["params"] == 3072 * 10 + 10
    grid = [r for r in data["runs"] if r["study"] == "tuning"]
    assert len(grid) == 8 and {tuple(r["axis"]) for r in grid} == {("l2", "dropout", "learning_rate")}
    # a three-axis grid: one heatmap per learning rate, plus the pivot table
    section = soup.find(id="study-tuning").find_parent("div", class_="jp-Cell")
    text = " ".join(s.get_text(" ") for s in [section, *section.find_next_siblings("div")][:40])
    assert "Validation accuracy by axis" in text


def test_digits_report_builds_offline(digits_report):
    """conftest.digits_report: built with HOME, KERAS_HOME and the data folder empty."""
    _, data = check_report(digits_report.out, "digits", ["depth", "width", "activation", "optimizer",
                                                         "cnn_vs_baseline"])
    assert data["runs"][0]["data_info"]["test"] == 360


@pytest.mark.parametrize("params, missing", [("cifar10.yaml", "cifar-10-batches-py"),
                                             ("imdb.yaml", "imdb.npz")])
def test_missing_data_stops_before_training(tmp_path, build, params, missing):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = build(params, tmp_path / "out", empty, home=empty)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and missing in lines[0] and str(empty) in lines[0], proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

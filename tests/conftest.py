"""Shared test fixtures: the repository root, one record factory matching the typed run record
(helpers.config.record), a small digits plan, and one way to run build_report.py in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/fakedata.py

from helpers.config.record import RunRecord, Status  # noqa: E402

CLASSES = [str(i) for i in range(10)]


def config(hidden=(64,), activation="relu", optimizer="adam", dataset="digits", **model) -> dict:
    """A resolved configuration as the plan makes it (docs/records.md)."""
    return {"model": {"kind": "mlp", "hidden": list(hidden), "activation": activation, "dropout": 0.0,
                      "dropout_kind": "dropout", "l1": 0.0, "l2": 0.0, "batch_norm": False,
                      "initializer": "auto", "init_stddev": None, "filters": [], "kernel_size": 3,
                      "pool_size": 2, "conv_dropout": 0.0, **model},
            "training": {"optimizer": optimizer, "learning_rate": 0.001, "batch_size": 32, "epochs": 10,
                         "loss": "categorical_crossentropy", "early_stopping": None},
            "data": {"dataset": dataset, "validation_split": 0.2, "train_samples": None,
                     "test_samples": None, "seed": 42}}


def make_record(label: str = "run", val: float = 0.85, *, test: float | None = None, train: float | None = None,
                study: str = "depth", kind: str | None = None, axis: dict | None = None, baseline: bool = False,
                seed: int = 42, status: str = Status.OK, params: int = 1000, seconds: float = 5.0,
                cfg: dict | None = None, history_epochs: int = 0, classes: list[str] | None = None,
                reason: str | None = None, **metrics) -> RunRecord:
    """A run record as training returns it: metrics around ``val`` for an ok or diverged run, an
    error and no metrics for a failed one; ``history_epochs`` > 0 adds a learning history and a
    confusion matrix; ``metrics`` override or add metric values."""
    classes = classes or CLASSES
    rec: RunRecord = {"study": study, "kind": kind or study, "label": label, "axis": dict(axis or {}),
                      "baseline": baseline, "seed": seed, "config": cfg or config(), "status": Status(status),
                      "error": None, "reason": reason, "class_names": list(classes)}
    if status == Status.FAILED:
        rec["error"] = "ValueError: boom"  # a failed record carries no metrics key at all
        return rec
    train = val + 0.01 if train is None else train
    test = val - 0.005 if test is None else test
    rec["metrics"] = {"train_accuracy": train, "val_accuracy": val, "test_accuracy": test,
                      "f1_macro": test - 0.001, "gap": train - val, "params": params, "seconds": seconds,
                      "epochs_run": max(history_epochs, 10), "best_epoch": 8, **metrics}
    if history_epochs:
        steps = [0.6 + (train - 0.6) * i / max(history_epochs - 1, 1) for i in range(history_epochs)]
        rec["history"] = {"accuracy": steps, "val_accuracy": [s - (train - val) for s in steps],
                          "loss": [1 - s for s in steps], "val_loss": [1.05 - s for s in steps]}
        k = len(classes)
        rec["confusion"] = [[90 if i == j else i + j for j in range(k)] for i in range(k)]
    return rec


@pytest.fixture
def record():
    """The record factory (see make_record)."""
    return make_record


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def digits_plan():
    """The digits report's plan in the smoke profile (validated, nothing trained)."""
    from helpers.config import load
    return load.load(ROOT / "params" / "digits.yaml", profile="smoke")


def run_build(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """build_report.py in a subprocess, as a user runs it; output captured as text."""
    return subprocess.run([sys.executable, str(ROOT / "build_report.py"), *map(str, args)], cwd=cwd,
                          env={**os.environ, "STUDYBOOK_OFFLINE": "1", **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def build():
    """Run build_report.py in a subprocess (see run_build)."""
    return run_build


@dataclass(frozen=True)
class Built:
    out: Path                          # the output folder: digits.html, digits.json, digits/, .cache/
    proc: subprocess.CompletedProcess  # the build's exit code and its stderr (progress, summary)
    html: str
    data: dict                         # digits.json


@pytest.fixture(scope="session")
def digits_report(tmp_path_factory) -> Built:
    """The digits report built once for the whole session, as a user on a fresh machine builds it:
    smoke profile, offline, with the data folder, KERAS_HOME and HOME all empty (scikit-learn's
    bundled digits need none of them). Tests read it; a test that builds again works on a copy
    (shutil.copytree), so every run stays cached and nothing is trained twice."""
    empty = tmp_path_factory.mktemp("empty-home")
    out = tmp_path_factory.mktemp("digits-report") / "out"
    proc = run_build(ROOT / "params" / "digits.yaml", "--profile", "smoke", "--out", out, timeout=900,
                     env={"PYTHONUNBUFFERED": "1", "HOME": str(empty), "KERAS_HOME": str(empty),
                          "STUDYBOOK_DATA_DIR": str(empty)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Built(out, proc, (out / "digits.html").read_text(), json.loads((out / "digits.json").read_text()))

"""Shared test fixtures: the repository root, one record factory matching the typed run record
(helpers.config.record), a small digits plan, and one way to run build_report.py in a subprocess."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
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


# --- Dask clusters the tests start: every process on 127.0.0.1, stopped by the test (or the session)
DASK = Path(sys.executable).parent / "dask"
def _start(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(DASK), *args], stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            env={**os.environ, "STUDYBOOK_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                                 # as a build's local workers (helpers.build.cluster): no profiler
                                 "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
                                 "PYTHONPATH": str(ROOT / "src"), **(env or {})},
                            cwd=log.parent, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


class DaskCluster:
    """A scheduler (scheduler file, free port) and its workers, each a `dask worker` process with
    one thread, all on 127.0.0.1."""

    def __init__(self, folder: Path):
        self.folder, self.file, self.procs = folder, folder / "scheduler.json", []
        self.procs.append(_start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  # without a dashboard it still serves /health and /metrics: on loopback too
                                  "--dashboard-address", "127.0.0.1:0",
                                  "--scheduler-file", str(self.file)], folder / "scheduler.log"))
        deadline = time.time() + 60
        while not self.file.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert self.file.exists(), (folder / "scheduler.log").read_text()

    def worker(self, name: str, env: dict | None = None) -> None:
        self.procs.append(_start(["worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                                  "--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                                  "--name", name],
                                 self.folder / f"{name}.log", env))

    def client(self, workers: int):
        from distributed import Client
        client = Client(scheduler_file=str(self.file), timeout="30s", set_as_default=False)
        client.wait_for_workers(workers, timeout=60)
        return client

    def stop(self) -> None:
        _stop(self.procs)


_shared: DaskCluster | None = None
FAKE_KERAS = Path(tempfile.gettempdir()) / f"studybook-keras-data-{os.getpid()}"


def fake_keras_data() -> Path:
    """Small IMDB and CIFAR-10 files in the Keras cache formats (tests/fakedata.py), written once
    per session; the shared workers find them there (STUDYBOOK_DATA_DIR), so a build reading
    them trains on those workers too."""
    if not FAKE_KERAS.exists():
        import fakedata
        partial = FAKE_KERAS.with_name(FAKE_KERAS.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        fakedata.write_imdb(partial, n_train=1200, n_test=600)
        fakedata.write_cifar10(partial, n_per_batch=240, n_test=600)
        partial.rename(FAKE_KERAS)
    return FAKE_KERAS


def shared_scheduler() -> str:
    """The scheduler file of two warm single-threaded workers that the session's builds share,
    started at the first build that wants it and stopped when the session ends. Each build
    would otherwise start (and warm, and stop) a local cluster of its own: some 20 s a build on
    two cores, for dozens of builds whose subject is not where runs train (tests/test_cluster.py
    and the interrupted builds of tests/test_resume.py use their own)."""
    global _shared
    if _shared is None:
        cluster = DaskCluster(Path(tempfile.mkdtemp(prefix="studybook-dask-")))
        _shared = cluster
        data = {"STUDYBOOK_DATA_DIR": str(fake_keras_data())}
        cluster.worker("shared-1", data)
        cluster.worker("shared-2", data)
        # Waited for in a child process: a Client's event loop thread would stay in this one.
        subprocess.run([sys.executable, "-c", "import sys; from distributed import Client; "
                        "c = Client(scheduler_file=sys.argv[1], timeout='60s'); c.wait_for_workers(2, timeout=120); "
                        "c.close()", str(cluster.file)], check=True, capture_output=True, timeout=180)
    return str(_shared.file)


def pytest_sessionfinish(session, exitstatus):
    if _shared is not None:
        _shared.stop()
    shutil.rmtree(FAKE_KERAS, ignore_errors=True)


# Where a build trains with the session's shared workers: not when it asks for a cluster of its own,
# nor when its data (but fake_keras_data()) or backend are its own (the workers would not see them:
# preflight, exit 2).
OWN_CLUSTER = ("--scheduler", "--workers")
OWN_ENV = ("STUDYBOOK_DATA_DIR", "KERAS_BACKEND", "STUDYBOOK_SCHEDULER")


def hears_ctrl_c() -> None:
    """In the child, before exec: a shell without job control starts background commands with
    SIGINT ignored, an ignored signal stays ignored across exec, and Python then leaves it so; the
    build is started as from a terminal, where Ctrl-C is heard, whoever runs the tests."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_build(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 600,
              shared: bool | None = None) -> subprocess.CompletedProcess:
    """build_report.py in a subprocess, as a user runs it; output captured as text. Its runs train
    on the session's shared workers (shared_scheduler) if ``shared``; by default (None) unless it
    must not."""
    env = {"STUDYBOOK_OFFLINE": "1", **(env or {})}
    words = [str(a) for a in args]
    if shared is None:
        own_env = [k for k in OWN_ENV if k in env and not (k == "STUDYBOOK_DATA_DIR" and env[k] == str(FAKE_KERAS))]
        shared = (not any(w in OWN_CLUSTER for w in words) and not own_env
                  and not any(w.startswith("backend=") for w in words))
    if shared:
        env["STUDYBOOK_SCHEDULER"] = shared_scheduler()
    return subprocess.run([sys.executable, str(ROOT / "build_report.py"), *words], cwd=cwd,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


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
                          "STUDYBOOK_DATA_DIR": str(empty)}, shared=True)  # the workers need no files either
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Built(out, proc, (out / "digits.html").read_text(), json.loads((out / "digits.json").read_text()))


@pytest.fixture(scope="session")
def default_report(tmp_path_factory) -> Built:
    """The default report (params/report.yaml, Fashion-MNIST) built once for the session in the
    smoke profile, as `make report` does but smaller; its cache also serves the notebooks run by
    hand (tests/test_notebooks_by_hand.py)."""
    out = tmp_path_factory.mktemp("default-report") / "out"
    proc = run_build("--profile", "smoke", "--out", out, env={"PYTHONUNBUFFERED": "1"}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Built(out, proc, (out / "report.html").read_text(), json.loads((out / "report.json").read_text()))

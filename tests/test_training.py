"""Tests for helpers.run.training on tiny synthetic data: records, reproducibility, failures, saving."""
import copy
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.config.load import load as load_plan  # noqa: E402
from helpers.data.splits import Splits  # noqa: E402
from helpers.run import training  # noqa: E402

METRIC_KEYS = {"train_accuracy", "val_accuracy", "test_accuracy", "train_loss", "val_loss", "test_loss",
               "f1_macro", "auc_ovr", "gap", "params", "epochs_run", "best_epoch", "seconds"}
HISTORY_KEYS = {"loss", "accuracy", "val_loss", "val_accuracy"}
N_TRAIN, N_VAL, N_TEST, K = 60, 20, 20, 3


def labels(n: int, rng) -> np.ndarray:
    # Every class in every split, so the one-vs-rest AUC is defined.
    return rng.permutation(np.arange(n) % K)


@pytest.fixture(scope="module")
def splits() -> Splits:
    rng = np.random.default_rng(0)
    y = {part: labels(n, rng) for part, n in (("train", N_TRAIN), ("val", N_VAL), ("test", N_TEST))}
    # A faint class signal in the first pixels keeps the task learnable but the data random.
    x = {part: rng.random((len(v), 28, 28), dtype=np.float32) for part, v in y.items()}
    for part in x:
        x[part][np.arange(len(y[part])), 0, y[part]] += 1.0
    return Splits(x_train=x["train"], y_train=y["train"], x_val=x["val"], y_val=y["val"],
                  x_test=x["test"], y_test=y["test"], class_names=["a", "b", "c"], fingerprint="x", info={})


@pytest.fixture(scope="module")
def base_spec() -> dict:
    spec = copy.deepcopy(load_plan(profile="smoke").studies["depth"].runs[0])
    spec["config"]["training"]["epochs"] = 2
    spec["config"]["model"]["hidden"] = [16]
    return spec


@pytest.fixture
def spec(base_spec) -> dict:
    return copy.deepcopy(base_spec)


@pytest.fixture(scope="module")
def record(base_spec, splits) -> dict:
    return training.run(copy.deepcopy(base_spec), splits)


def test_record_shape(record, base_spec):
    assert record["status"] == "ok" and record["error"] is None
    assert set(record["metrics"]) == METRIC_KEYS
    for key in ("study", "kind", "label", "axis", "baseline", "seed", "config"):
        assert record[key] == base_spec[key]
    assert record["class_names"] == ["a", "b", "c"]
    assert record["fingerprint"] == "x" and record["data_info"] == {}


def test_metrics_values(record):
    m = record["metrics"]
    assert 1 <= m["epochs_run"] <= 2
    assert 1 <= m["best_epoch"] <= m["epochs_run"]
    assert m["gap"] == pytest.approx(m["train_accuracy"] - m["val_accuracy"])
    assert m["params"] == (28 * 28 * 16 + 16) + (16 * K + K)
    for key in ("train_accuracy", "val_accuracy", "test_accuracy", "f1_macro", "auc_ovr"):
        assert 0 <= m[key] <= 1, key
    assert m["seconds"] > 0
    assert isinstance(m["params"], int) and isinstance(m["epochs_run"], int)


def test_history_matches_epochs_run(record):
    assert set(record["history"]) == HISTORY_KEYS
    assert all(len(v) == record["metrics"]["epochs_run"] for v in record["history"].values())


def test_confusion_covers_the_test_set(record):
    confusion = np.array(record["confusion"])
    assert confusion.shape == (K, K)
    assert confusion.sum() == N_TEST
    # Rows are true classes: each holds that class's test count.
    assert confusion.sum(axis=1).tolist() == np.bincount(np.arange(N_TEST) % K).tolist()
    assert record["metrics"]["test_accuracy"] == pytest.approx(np.trace(confusion) / N_TEST)


def test_record_is_json(record):
    assert json.loads(json.dumps(record, allow_nan=False)) == record


def test_same_seed_same_metrics(record, spec, splits):
    again = training.run(spec, splits)
    drop = lambda m: {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731
    assert drop(again["metrics"]) == drop(record["metrics"])
    assert again["history"] == record["history"]


def test_mse_loss_and_sgd(spec, splits):
    spec["config"]["training"].update(loss="mse", optimizer="sgd", learning_rate=0.01, epochs=1,
                                      early_stopping=None)
    rec = training.run(spec, splits)
    assert rec["status"] == "ok" and rec["metrics"]["epochs_run"] == 1
    # Accuracy is class-wise under any loss, not exact match of the one-hot vector.
    assert rec["metrics"]["train_accuracy"] > 0


@pytest.fixture
def fake_load(monkeypatch, splits):
    # run_all loads data from the spec's data section; serve the synthetic splits instead of files.
    calls = []

    def load(name, **kwargs):
        calls.append((name, kwargs))
        return splits
    monkeypatch.setattr(training.data_splits, "load", load)
    return calls


def test_run_all_keeps_going_after_a_failure(spec, fake_load, tmp_path):
    broken = copy.deepcopy(spec)
    broken["label"] = "too deep"
    # 28 -> 14 -> 7 -> 3 -> 1 -> 0: the fifth pooling block has nothing left to pool.
    broken["config"]["model"].update(kind="cnn", filters=[4] * 6)
    spec["config"]["training"]["epochs"] = 1
    events = tmp_path / "events.jsonl"

    records = training.run_all([broken, spec], events_path=str(events), threads=1)

    failed, ok = records
    assert failed["status"] == "failed" and failed["label"] == "too deep"
    assert "metrics" not in failed
    assert failed["error"].startswith("ValueError: ") and "\n" not in failed["error"]
    assert "Traceback" in failed["traceback"]
    assert ok["status"] == "ok" and ok["metrics"]["epochs_run"] == 1
    # Each run is a task of its own (it may train on another worker): it asks for its split, the
    # same for both; the files are decoded once per process (data.registry.read_raw).
    assert len(fake_load) == 2 and fake_load[0] == fake_load[1]

    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(e["event"], e["index"], e["total"]) for e in lines] == [
        ("start", 1, 2), ("done", 1, 2), ("start", 2, 2), ("done", 2, 2)]
    assert lines[1]["status"] == "failed" and lines[1]["error"] == failed["error"]
    assert lines[1]["test_accuracy"] is None
    assert lines[3]["status"] == "ok" and lines[3]["test_accuracy"] == ok["metrics"]["test_accuracy"]
    assert all(e["study"] == "depth" for e in lines)


def test_run_all_turns_a_data_error_into_a_failed_record(spec, monkeypatch):
    def load(name, **kwargs):
        raise FileNotFoundError("no such dataset file\nsecond line")
    monkeypatch.setattr(training.data_splits, "load", load)
    (rec,) = training.run_all([spec])
    assert rec["status"] == "failed"
    assert rec["error"] == "FileNotFoundError: no such dataset file"


def test_run_all_without_events_path(spec, fake_load, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec["config"]["training"]["epochs"] = 1
    assert training.run_all([spec])[0]["status"] == "ok"
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic_json(tmp_path, record):
    path = tmp_path / "depth.results.json"
    failed = {"study": "depth", "label": "x", "status": "failed", "error": "E: x", "nan": float("nan")}
    training.save([record, failed], path)
    saved = json.loads(path.read_text())
    assert saved[0] == record
    assert saved[1]["nan"] is None  # JSON has no NaN
    assert [p.name for p in tmp_path.iterdir()] == ["depth.results.json"]
    # Overwriting leaves no temporary file either.
    training.save([failed], path)
    assert len(json.loads(path.read_text())) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["depth.results.json"]


@pytest.mark.parametrize("loss", ["crossentropy", "binary_crossentropy", "mse"])
def test_binary_task_uses_one_sigmoid_unit_and_binary_metrics(spec, loss):
    rng = np.random.default_rng(3)
    y = {p: rng.permutation(np.arange(n) % 2) for p, n in (("train", 80), ("val", 20), ("test", 40))}
    x = {p: rng.random((len(v), 50), dtype=np.float32) + v[:, None] * 0.5 for p, v in y.items()}
    binary = Splits(x_train=x["train"], y_train=y["train"], x_val=x["val"], y_val=y["val"], x_test=x["test"],
                    y_test=y["test"], class_names=["negative", "positive"], fingerprint="b", info={})
    spec["config"]["training"]["loss"] = loss
    rec = training.run(spec, binary)
    m = rec["metrics"]
    assert rec["status"] == "ok"
    assert {"roc_auc", "average_precision", "brier"} <= set(m) and "auc_ovr" not in m
    # 50 inputs -> 16 hidden -> 1 sigmoid unit
    assert m["params"] == 50 * 16 + 16 + 16 + 1
    assert 0 <= m["brier"] <= 1 and 0 <= m["roc_auc"] <= 1
    assert np.asarray(rec["confusion"]).shape == (2, 2) and np.asarray(rec["confusion"]).sum() == 40
    assert set(rec["curves"]) == {"roc", "pr", "max_f1", "calibration"}


def test_a_runs_result_does_not_depend_on_other_threads_drawing_random_numbers(spec, splits):
    """A Dask worker's own threads (heartbeats) draw from Python's global random state while a run
    builds its model; Keras's unseeded layers took their seeds from that state, so a run on a worker
    got other weights than the same run elsewhere (helpers.run.models seeds every layer)."""
    import random
    import threading
    spec["config"]["training"]["epochs"] = 2
    spec["config"]["model"].update(hidden=[32, 16], dropout=0.2)
    alone = training.run(spec, splits)
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            random.random()
    noise = threading.Thread(target=draw, daemon=True)
    noise.start()
    try:
        busy = training.run(spec, splits)
    finally:
        stop.set()
        noise.join()
    assert busy["history"] == alone["history"] and busy["metrics"]["test_accuracy"] == alone["metrics"]["test_accuracy"]

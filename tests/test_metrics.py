"""Tests for helpers.run.metrics (and the records frame and results table built on them) against
values worked out by hand on tiny arrays."""
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import make_record
from helpers.analysis.records import frame
from helpers.present import tables
from helpers.run import metrics

# Six samples, three classes. Predictions (argmax): 0, 1, 1, 1, 2, 0.
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
PROBA = np.array([
    [0.7, 0.2, 0.1],
    [0.3, 0.6, 0.1],
    [0.1, 0.8, 0.1],
    [0.2, 0.5, 0.3],
    [0.1, 0.2, 0.7],
    [0.5, 0.1, 0.4],
])
# rows = true class, cols = predicted
CONFUSION = [[1, 1, 0],
             [0, 2, 0],
             [1, 0, 1]]
# Per class (precision, recall): 0: 1/2, 1/2 -> F1 1/2; 1: 2/3, 1 -> F1 4/5; 2: 1, 1/2 -> F1 2/3.
F1_MACRO = (1 / 2 + 4 / 5 + 2 / 3) / 3


def test_confusion_and_accuracy():
    out = metrics.classification(Y_TRUE, PROBA)
    assert out["confusion"] == CONFUSION
    # Accuracy is the argmax hit rate: the confusion diagonal over the sample count.
    accuracy = (PROBA.argmax(axis=1) == Y_TRUE).mean()
    assert accuracy == pytest.approx(4 / 6)
    assert np.trace(out["confusion"]) / np.sum(out["confusion"]) == pytest.approx(accuracy)


def test_macro_f1_by_hand():
    assert metrics.classification(Y_TRUE, PROBA)["f1_macro"] == pytest.approx(F1_MACRO)


def test_auc_matches_sklearn_one_vs_rest():
    out = metrics.classification(Y_TRUE, PROBA)
    assert out["auc_ovr"] == pytest.approx(roc_auc_score(Y_TRUE, PROBA, multi_class="ovr"))
    assert 0 <= out["auc_ovr"] <= 1


def test_perfect_predictions():
    y = np.array([0, 1, 2, 2, 1, 0])
    out = metrics.classification(y, np.eye(3)[y])
    assert out["f1_macro"] == 1.0 and out["auc_ovr"] == 1.0
    assert out["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_auc_with_float32_softmax_that_does_not_sum_to_one():
    # A float32 softmax sums to 1 only up to rounding; sklearn's ovr check must not reject it.
    rng = np.random.default_rng(0)
    proba = rng.random((30, 4)).astype("float32")
    proba = (proba / proba.sum(axis=1, keepdims=True) * np.float32(1.0001)).astype("float32")
    y = np.arange(30) % 4
    out = metrics.classification(y, proba)
    expected = roc_auc_score(y, proba / proba.sum(axis=1, keepdims=True), multi_class="ovr")
    assert out["auc_ovr"] == pytest.approx(expected)


def test_absent_class_gives_no_auc_and_keeps_the_matrix_square():
    y = np.array([0, 0, 1, 1])  # class 2 never occurs in y_true
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1]])
    out = metrics.classification(y, proba)
    assert out["auc_ovr"] is None or math.isnan(out["auc_ovr"])
    assert out["confusion"] == [[1, 0, 1], [0, 2, 0], [0, 0, 0]]
    # Class 2 is predicted once but never true: F1 0 for it, counted in the macro mean.
    assert out["f1_macro"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_values_are_plain_python():
    out = metrics.classification(Y_TRUE, PROBA)
    assert type(out["f1_macro"]) is float and type(out["auc_ovr"]) is float
    assert all(type(v) is int for row in out["confusion"] for v in row)


HISTORY = {"loss": [1.0, 0.8, 0.7, 0.65], "val_loss": [0.9, 0.6, 0.7, 0.8],
           "accuracy": [0.5, 0.6, 0.7, 0.8], "val_accuracy": [0.55, 0.62, 0.7, 0.66]}


@pytest.mark.parametrize("history, monitor, expected", [
    (HISTORY, "val_loss", 2),          # argmin 0.6 at index 1 -> epoch 2
    (HISTORY, "val_accuracy", 3),      # argmax 0.7 at index 2 -> epoch 3
    ({"val_loss": [0.5]}, "val_loss", 1),
    ({"val_loss": [0.5, 0.5, 0.4, 0.4]}, "val_loss", 3),  # ties: the first best epoch
    ({"val_loss": [float("nan"), 0.9, 0.8]}, "val_loss", 3),
    ({"val_loss": [0.9, 0.3]}, "val_accuracy", 2),  # no val_accuracy: val_loss, minimised
    ({"val_loss": [float("nan")] * 3}, "val_loss", 0),  # diverged: no best epoch, no crash
    ({}, "val_loss", 0),
])
def test_best_epoch(history, monitor, expected):
    assert metrics.best_epoch(history, monitor) == expected


METRICS = {"train_accuracy": 0.91234, "val_accuracy": 0.88049, "test_accuracy": 0.87551,
           "train_loss": 0.25, "val_loss": 0.33333, "test_loss": 0.354449, "f1_macro": 0.874449,
           "auc_ovr": 0.98767, "gap": 0.03185, "params": 118282, "epochs_run": 10, "best_epoch": 8,
           "seconds": 12.34}


def record(label, *, status="ok", axis=None, baseline=False, **overrides) -> dict:
    # Every metric pinned to METRICS (failed records carry no metrics key at all).
    return make_record(label, status=status, axis=axis, baseline=baseline, **{**METRICS, **overrides})


RECORDS = [record("3 layers", axis={"layers": 3}, baseline=True),
           record("6 layers", status="failed", axis={"layers": 6})]


def test_frame_columns():
    df = frame(RECORDS)
    assert len(df) == 2
    expected = {"study", "kind", "label", "baseline", "seed", "status", "layers", *METRICS}
    assert expected <= set(df.columns)
    assert df["layers"].tolist() == [3, 6]
    assert df["status"].tolist() == ["ok", "failed"]
    assert df["baseline"].tolist() == [True, False]
    assert df.loc[0, "params"] == 118282
    assert pd.isna(df.loc[1, "test_accuracy"]) and pd.isna(df.loc[1, "params"])


def test_frame_without_axis_or_records():
    df = frame([record("SGD"), record("Adam", test_accuracy=0.9)])
    assert "layers" not in df and df["test_accuracy"].tolist() == [0.87551, 0.9]
    assert frame([]).empty


def test_table():
    t = tables.results(RECORDS)
    assert t.index.name == "configuration"
    assert t.index.tolist() == ["3 layers", "6 layers"]
    # Binary-only columns (ROC AUC, AP, Brier) are left out of a multi-class table.
    assert list(t.columns) == [v for k, v in tables.TABLE_COLUMNS.items()
                               if k not in ("label", "roc_auc", "average_precision", "brier")] + ["status"]
    ok = t.loc["3 layers"]
    assert ok["test acc"] == 0.8755 and ok["val acc"] == 0.8805 and ok["train acc"] == 0.9123
    assert ok["test loss"] == 0.3544 and ok["F1 (macro)"] == 0.8744 and ok["AUC (OvR)"] == 0.9877
    assert ok["gap (train−val)"] == 0.0319
    assert ok["time (s)"] == 12.3
    assert ok["parameters"] == 118282 and ok["epochs"] == 10 and ok["weights"] == "last epoch"  # no early stopping: the last epoch's weights
    assert str(t["parameters"].dtype) == "Int64"
    failed = t.loc["6 layers"]
    assert failed["status"] == "failed"
    assert pd.isna(failed["test acc"]) and pd.isna(failed["parameters"])


def test_table_of_failed_runs_only():
    t = tables.results([record("CNN", status="failed")])
    assert t.loc["CNN", "status"] == "failed"
    assert "AUC (OvR)" not in t  # nothing measured, so no optional column
    assert t.drop(columns="status").isna().all(axis=None)


def test_table_with_missing_auc():
    # A record saved as JSON holds null for an AUC that could not be computed.
    t = tables.results([record("a", auc_ovr=None), record("b")])
    assert pd.isna(t.loc["a", "AUC (OvR)"]) and t.loc["b", "AUC (OvR)"] == 0.9877


def test_binary_metrics_match_sklearn_and_the_max_f1_point_is_real():
    from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 3000)
    p = np.clip(0.35 * y + 0.65 * rng.random(3000), 0, 1)
    b = metrics.binary(y, p)
    assert b["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert b["average_precision"] == pytest.approx(average_precision_score(y, p))
    assert b["brier"] == pytest.approx(brier_score_loss(y, p))
    best = b["curves"]["max_f1"]
    assert best["f1"] == pytest.approx(f1_score(y, p >= best["threshold"]))
    # No threshold does better than the reported maximum.
    assert all(f1_score(y, p >= t) <= best["f1"] + 1e-12 for t in np.linspace(0.05, 0.95, 19))
    assert len(b["curves"]["roc"]["fpr"]) <= metrics.CURVE_POINTS
    cal = b["curves"]["calibration"]
    assert len(cal["predicted"]) == len(cal["observed"]) == len(cal["counts"]) <= 15
    assert sum(cal["counts"]) == 3000


def test_binary_metrics_on_one_class_are_undefined_not_invented():
    b = metrics.binary(np.ones(10), np.full(10, 0.7))
    assert np.isnan(b["roc_auc"]) and np.isnan(b["average_precision"]) and b["curves"] == {}

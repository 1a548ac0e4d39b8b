"""Everything measured from a finished run: classification metrics, binary curves, best epoch."""
from __future__ import annotations

import numpy as np

# scikit-learn's metrics are imported where a finished run is measured (a worker, or a notebook run
# by hand): half a second that a study kernel, which only shows runs, does not need.

CURVE_POINTS = 300  # enough for a smooth curve; keeps a run's record small (IMDB has 25,000 tests)


def classification(y_true: np.ndarray, proba: np.ndarray) -> dict:
    """Test-set metrics from true class indices and predicted class probabilities."""
    from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score
    n = proba.shape[1]
    pred = proba.argmax(axis=1)
    out = {"f1_macro": float(f1_score(y_true, pred, average="macro", labels=range(n), zero_division=0))}
    present = np.unique(y_true)
    # One-vs-rest AUC is undefined when a class is absent from y_true (tiny subsamples);
    # two classes get the binary metrics instead (metrics.binary).
    if len(present) == n and n > 2:
        p = np.clip(proba.astype("float64"), 0, None)
        p = p / np.where(p.sum(axis=1, keepdims=True) > 0, p.sum(axis=1, keepdims=True), 1)
        out["auc_ovr"] = float(roc_auc_score(y_true, p, multi_class="ovr", labels=range(n)))
    else:
        out["auc_ovr"] = float("nan")
    out["confusion"] = confusion_matrix(y_true, pred, labels=range(n)).tolist()
    return out


def _thin(*arrays: np.ndarray) -> list[list[float]]:
    n = len(arrays[0])
    idx = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int)) if n else []
    return [np.asarray(a, dtype=float)[idx].round(6).tolist() for a in arrays]


def binary(y_true: np.ndarray, p: np.ndarray, bins: int = 15) -> dict:
    """Binary-task metrics and the curves its figures draw, from one run's test predictions."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, brier_score_loss, precision_recall_curve, roc_auc_score, roc_curve
    y_true = np.asarray(y_true).astype(int).ravel()
    p = np.clip(np.asarray(p, dtype="float64").ravel(), 0, 1)
    out = {"roc_auc": float("nan"), "average_precision": float("nan"),
           "brier": float(brier_score_loss(y_true, p)), "curves": {}}
    if len(np.unique(y_true)) < 2:  # AUC and precision-recall are undefined on one class
        return out
    out["roc_auc"] = float(roc_auc_score(y_true, p))
    out["average_precision"] = float(average_precision_score(y_true, p))
    fpr, tpr, _ = roc_curve(y_true, p)
    precision, recall, thresholds = precision_recall_curve(y_true, p)
    f1 = 2 * precision * recall / np.where(precision + recall > 0, precision + recall, 1)
    i = int(np.argmax(f1[:-1])) if len(thresholds) else 0  # the last PR point has no threshold
    max_f1 = {"threshold": float(thresholds[i]) if len(thresholds) else 0.5,
              "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i])}
    prob_true, prob_pred = calibration_curve(y_true, p, n_bins=bins, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, bins + 1))[0]
    fpr, tpr = _thin(fpr, tpr)
    precision, recall = _thin(precision, recall)
    out["curves"] = {
        "roc": {"fpr": fpr, "tpr": tpr},
        "pr": {"precision": precision, "recall": recall, "positive_rate": float(y_true.mean())},
        "max_f1": max_f1,
        "calibration": {"predicted": prob_pred.round(6).tolist(), "observed": prob_true.round(6).tolist(),
                        "counts": counts[counts > 0].tolist(), "bins": bins},
    }
    return out


def best_epoch(history: dict, monitor: str) -> int:
    """1-based epoch with the best monitored validation value (what early stopping restores)."""
    if not history.get(monitor):
        monitor = "val_loss"
    values = np.asarray(history.get(monitor) or [], dtype=float)
    if not np.isfinite(values).any():  # no epoch to prefer (e.g. a run whose loss went NaN)
        return 0
    values = np.where(np.isfinite(values), values, -np.inf if "accuracy" in monitor else np.inf)
    pick = np.argmax if "accuracy" in monitor else np.argmin
    return int(pick(values)) + 1

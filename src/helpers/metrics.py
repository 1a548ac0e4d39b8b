"""Everything measured from a finished run, and the flat table of runs that tables and plots use."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score


def classification(y_true: np.ndarray, proba: np.ndarray) -> dict:
    """Test-set metrics from true class indices and predicted class probabilities."""
    n = proba.shape[1]
    pred = proba.argmax(axis=1)
    out = {"f1_macro": float(f1_score(y_true, pred, average="macro", labels=range(n), zero_division=0))}
    present = np.unique(y_true)
    # One-vs-rest AUC is undefined when a class is absent from y_true (tiny subsamples).
    if len(present) == n:
        p = np.clip(proba.astype("float64"), 0, None)
        p = p / np.where(p.sum(axis=1, keepdims=True) > 0, p.sum(axis=1, keepdims=True), 1)
        out["auc_ovr"] = float(roc_auc_score(y_true, p, multi_class="ovr", labels=range(n)))
    else:
        out["auc_ovr"] = float("nan")
    out["confusion"] = confusion_matrix(y_true, pred, labels=range(n)).tolist()
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


def frame(records: list[dict]) -> pd.DataFrame:
    """One row per run: identity columns, every metric, and one column per swept axis key."""
    rows = []
    for r in records:
        row = {k: r.get(k) for k in ("study", "kind", "label", "baseline", "seed", "status")}
        row.update(r.get("axis") or {})
        row.update(r.get("metrics") or {})
        row["error"] = r.get("error")
        rows.append(row)
    return pd.DataFrame(rows)


TABLE_COLUMNS = {
    "label": "configuration", "params": "parameters", "epochs_run": "epochs", "best_epoch": "best epoch",
    "train_accuracy": "train acc", "val_accuracy": "val acc", "test_accuracy": "test acc",
    "test_loss": "test loss", "f1_macro": "F1 (macro)", "auc_ovr": "AUC (OvR)", "gap": "gap (train−val)",
    "seconds": "time (s)",
}


def table(records: list[dict]) -> pd.DataFrame:
    """The results table of a study, as shown in the report (numbers rounded for reading)."""
    df = frame(records)
    for col in TABLE_COLUMNS:
        if col not in df:
            df[col] = np.nan
    out = df[list(TABLE_COLUMNS) + ["status"]].rename(columns=TABLE_COLUMNS)
    out = out.round({v: 4 for k, v in TABLE_COLUMNS.items() if k not in ("params", "epochs_run", "best_epoch", "seconds")})
    out[TABLE_COLUMNS["seconds"]] = out[TABLE_COLUMNS["seconds"]].round(1)
    for k in ("params", "epochs_run", "best_epoch"):
        out[TABLE_COLUMNS[k]] = out[TABLE_COLUMNS[k]].astype("Int64")
    return out.set_index(TABLE_COLUMNS["label"])

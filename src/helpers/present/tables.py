"""The report's tables of runs: a study's results table and the appendix's every-run tables,
numbers rounded for reading and columns named as the report names them."""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.analysis.records import frame
from helpers.config.record import RunRecord

TABLE_COLUMNS = {
    "label": "configuration", "params": "parameters", "epochs_run": "epochs", "best_epoch": "weights",
    "train_accuracy": "train acc", "val_accuracy": "val acc", "test_accuracy": "test acc",
    "test_loss": "test loss", "f1_macro": "F1 (macro)", "auc_ovr": "AUC (OvR)", "roc_auc": "ROC AUC",
    "average_precision": "AP", "brier": "Brier", "gap": "gap (train−val)", "seconds": "time (s)",
}
OPTIONAL = ("auc_ovr", "roc_auc", "average_precision", "brier")  # shown only where measured
MONITOR_WORDS = {"val_loss": "lowest validation loss", "val_accuracy": "highest validation accuracy"}


def _stopping(r: RunRecord) -> dict | None:
    return ((r.get("config") or {}).get("training") or {}).get("early_stopping")


def weights(r: RunRecord) -> str | None:
    """Which weights a run's metrics measure: "restored epoch k" where early stopping restored its
    best epoch, "last epoch" otherwise (then the epoch of lowest validation loss is not what was
    measured, so it is not shown). None for a run without metrics."""
    mt = r.get("metrics") or {}
    if not mt:
        return None
    if _stopping(r):
        # Keras keeps the first epoch's weights when no epoch's monitored value was finite (best_epoch 0)
        return f"restored epoch {max(int(mt.get('best_epoch') or 0), 1)}"
    return "last epoch"


def group_weights(rs: list[RunRecord]) -> str | None:
    """weights() of one configuration over its seeds: "restored epochs 3–5" when they differ."""
    shown = list(dict.fromkeys(w for w in map(weights, rs) if w))
    if not shown or not all(w.startswith("restored") for w in shown):
        return ", ".join(shown) or None
    epochs = sorted(int(w.rsplit(" ", 1)[1]) for w in shown)
    return f"restored epoch {epochs[0]}" if len(epochs) == 1 else f"restored epochs {epochs[0]}–{epochs[-1]}"


def measured(records: list[RunRecord]) -> str:
    """Which model a study's metrics measure, for its captions: the one early stopping restored,
    the one after the last epoch, or (some runs with early stopping, some without) each as its row says."""
    runs = [r for r in records if r.get("metrics")] or list(records)
    stops = [_stopping(r) for r in runs]
    col = TABLE_COLUMNS["best_epoch"]
    if stops and all(stops):
        monitors = {s.get("monitor", "val_loss") for s in stops}
        on = MONITOR_WORDS.get(monitors.pop(), "best monitored value") if len(monitors) == 1 else "best monitored value"
        return f"the model early stopping restored to its epoch of {on} (column “{col}”: restored epoch k)"
    if not any(stops):
        return f"the model after its last epoch (no early stopping; column “{col}”)"
    return (f"the model column “{col}” names: restored epoch k where early stopping restored the best "
            "epoch, last epoch where there was no early stopping")


def results(records: list[RunRecord]) -> pd.DataFrame:
    """The results table of a study, as shown in the report (numbers rounded for reading)."""
    df = frame(records)
    cols = [c for c in TABLE_COLUMNS if c not in OPTIONAL or (c in df and df[c].notna().any())]
    for col in cols:
        if col not in df:
            df[col] = np.nan
    out = df[cols + ["status"]].rename(columns={c: TABLE_COLUMNS[c] for c in cols})
    out[TABLE_COLUMNS["best_epoch"]] = [weights(r) for r in records]
    out = out.round({TABLE_COLUMNS[k]: 4 for k in cols if k not in ("label", "params", "epochs_run", "best_epoch", "seconds")})
    out[TABLE_COLUMNS["seconds"]] = out[TABLE_COLUMNS["seconds"]].round(1)
    for k in ("params", "epochs_run"):
        out[TABLE_COLUMNS[k]] = out[TABLE_COLUMNS[k]].astype("Int64")
    return out.set_index(TABLE_COLUMNS["label"])


def appendix_frames(records: list[RunRecord]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run, one row each: its configuration (and status), and its metrics. Two tables of
    a dozen columns each read on screen and fit the width of an A4 page."""
    configs, results = [], []
    for r in records:
        m, t = r["config"]["model"], r["config"]["training"]
        reg = [f"dropout {m['dropout']}" + (" (gaussian)" if m["dropout_kind"] == "gaussian" else "")
               if m["dropout"] else "", f"L1 {m['l1']}" if m["l1"] else "", f"L2 {m['l2']}" if m["l2"] else "",
               "batch norm" if m["batch_norm"] else ""]
        arch = (f"conv {m['filters']} + " if m["kind"] == "cnn" else "") + f"dense {m['hidden']}"
        mt = r.get("metrics") or {}
        configs.append({"study": r["study"], "configuration": r["label"], "seed": r["seed"], "model": arch,
                        "activation": m["activation"], "regularization": ", ".join(x for x in reg if x) or "none",
                        "optimizer": f"{t['optimizer']} ({t['learning_rate']:g})", "batch": t["batch_size"],
                        "loss": t["loss"], TABLE_COLUMNS["epochs_run"]: mt.get("epochs_run"),
                        "status": r["status"]})
        row = {"study": r["study"], "configuration": r["label"]}
        for k in ("best_epoch", "train_accuracy", "val_accuracy", "test_accuracy", "test_loss", "f1_macro",
                  *OPTIONAL, "gap", "params", "seconds"):
            row[TABLE_COLUMNS.get(k, k)] = mt.get(k)
        row[TABLE_COLUMNS["best_epoch"]] = weights(r)
        results.append(row)
    config_df, result_df = pd.DataFrame(configs), pd.DataFrame(results)
    optional = [TABLE_COLUMNS[k] for k in OPTIONAL]
    result_df = result_df.drop(columns=[c for c in optional if c in result_df and result_df[c].isna().all()])
    for df in (config_df, result_df):
        for col in df.columns:
            if df[col].dtype.kind == "f":
                df[col] = df[col].round(1 if col == TABLE_COLUMNS["seconds"] else 4)
        for col in ("epochs", "parameters"):
            if col in df:
                df[col] = df[col].astype("Int64")
    return config_df, result_df

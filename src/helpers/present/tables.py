"""The report's tables of runs: a study's results table and the appendix's every-run tables,
numbers rounded for reading and columns named as the report names them."""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.analysis.records import frame
from helpers.config.record import RunRecord

TABLE_COLUMNS = {
    "label": "configuration", "params": "parameters", "epochs_run": "epochs", "best_epoch": "best epoch",
    "train_accuracy": "train acc", "val_accuracy": "val acc", "test_accuracy": "test acc",
    "test_loss": "test loss", "f1_macro": "F1 (macro)", "auc_ovr": "AUC (OvR)", "roc_auc": "ROC AUC",
    "average_precision": "AP", "brier": "Brier", "gap": "gap (train−val)", "seconds": "time (s)",
}
OPTIONAL = ("auc_ovr", "roc_auc", "average_precision", "brier")  # shown only where measured


def results(records: list[RunRecord]) -> pd.DataFrame:
    """The results table of a study, as shown in the report (numbers rounded for reading)."""
    df = frame(records)
    cols = [c for c in TABLE_COLUMNS if c not in OPTIONAL or (c in df and df[c].notna().any())]
    for col in cols:
        if col not in df:
            df[col] = np.nan
    out = df[cols + ["status"]].rename(columns={c: TABLE_COLUMNS[c] for c in cols})
    out = out.round({TABLE_COLUMNS[k]: 4 for k in cols if k not in ("label", "params", "epochs_run", "best_epoch", "seconds")})
    out[TABLE_COLUMNS["seconds"]] = out[TABLE_COLUMNS["seconds"]].round(1)
    for k in ("params", "epochs_run", "best_epoch"):
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
        results.append(row)
    config_df, result_df = pd.DataFrame(configs), pd.DataFrame(results)
    optional = [TABLE_COLUMNS[k] for k in OPTIONAL]
    result_df = result_df.drop(columns=[c for c in optional if c in result_df and result_df[c].isna().all()])
    for df in (config_df, result_df):
        for col in df.columns:
            if df[col].dtype.kind == "f":
                df[col] = df[col].round(1 if col == TABLE_COLUMNS["seconds"] else 4)
        for col in ("best epoch", "epochs", "parameters"):
            if col in df:
                df[col] = df[col].astype("Int64")
    return config_df, result_df

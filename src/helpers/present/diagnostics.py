"""Figures of test-set predictions and of grids: confusion matrices, ROC / precision–recall /
reliability curves of one run, and heatmaps of a two-axis grid (style: helpers.present.figures)."""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from helpers.config.record import RunRecord
from helpers.present.figures import WIDTH, empty, figure, ok_frame, ok_records, pretty


def confusion_matrices(records: Iterable[RunRecord]) -> Figure:
    """Row-normalised test confusion matrices side by side, annotated in percent."""
    ok = [r for r in ok_records(records) if r.get("confusion")]
    if not ok:
        return empty()
    ncols = min(len(ok), 3)
    nrows = math.ceil(len(ok) / ncols)
    fig = figure(height=4.5 * nrows if ncols > 1 else 4.5, width=WIDTH if ncols > 1 else 5.0)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, (ax, rec) in enumerate(zip(axes, ok)):
        counts = np.asarray(rec["confusion"], dtype=float)
        # row-normalising makes per-class recall readable regardless of class sizes
        share = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None) * 100
        names = rec.get("class_names") or [str(k) for k in range(len(counts))]
        sns.heatmap(share, ax=ax, vmin=0, vmax=100, cmap="Blues", cbar=False, square=True,
                    annot=True, fmt=".0f", annot_kws={"fontsize": 6},
                    xticklabels=names, yticklabels=names if i % ncols == 0 else False)
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
        ax.tick_params(axis="y", labelrotation=0, labelsize=7)
        ax.set_xlabel("predicted class (cells: % of true class)", fontsize=9)
        ax.set_ylabel("true class" if i % ncols == 0 else "", fontsize=9)
        acc = rec.get("metrics", {}).get("test_accuracy")
        ax.set_title(rec.get("label", "") + (f"\ntest accuracy {acc:.4f}" if acc is not None else ""))
    for ax in axes[len(ok):]:
        fig.delaxes(ax)
    # no suptitle: square heatmaps make constrained layout place it over the panel titles
    return fig


def binary_diagnostics(record: RunRecord) -> Figure:
    """ROC, precision-recall (max-F1 point marked) and reliability curves of one binary run."""
    curves = record.get("curves") or {}
    if not curves:
        return empty("No binary curves for this run")
    m = record.get("metrics", {})
    fig = figure(height=3.2)
    roc_ax, pr_ax, cal_ax = fig.subplots(1, 3)
    roc_ax.plot(curves["roc"]["fpr"], curves["roc"]["tpr"], linewidth=1.8, label=f"AUC {m.get('roc_auc', float('nan')):.4f}")
    roc_ax.plot([0, 1], [0, 1], linestyle=":", color="0.5", label="chance")
    roc_ax.set(title="ROC curve", xlabel="false positive rate", ylabel="true positive rate")
    roc_ax.legend(loc="lower right")
    pr = curves["pr"]
    pr_ax.plot(pr["recall"], pr["precision"], linewidth=1.8, label=f"AP {m.get('average_precision', float('nan')):.4f}")
    pr_ax.axhline(pr["positive_rate"], linestyle=":", color="0.5", label="chance")
    best = curves["max_f1"]
    pr_ax.scatter([best["recall"]], [best["precision"]], marker="*", s=140, color="C3", zorder=3,
                  label=f"max F1 {best['f1']:.3f} @ {best['threshold']:.2f}")
    pr_ax.set(title="Precision–recall", xlabel="recall", ylabel="precision")
    pr_ax.legend(loc="lower left")
    cal = curves["calibration"]
    cal_ax.plot([0, 1], [0, 1], linestyle=":", color="0.5", label="perfect")
    cal_ax.plot(cal["predicted"], cal["observed"], marker="o", markersize=3, linewidth=1.8,
                label=f"Brier {m.get('brier', float('nan')):.4f}")
    cal_ax.set(title=f"Reliability ({cal['bins']} bins)", xlabel="mean predicted probability",
               ylabel="fraction positive", xlim=(0, 1), ylim=(0, 1))
    cal_ax.legend(loc="upper left")
    fig.suptitle(f"{record['label']} (best by validation accuracy)")
    return fig


def heatmap(frame: pd.DataFrame, x: str, y: str, value: str = "val_accuracy", title: str | None = None) -> Figure:
    """A two-axis grid as a heatmap of ``value`` (validation accuracy by default)."""
    df = ok_frame(frame, x, y, value)
    if df.empty:
        return empty()
    table = df.pivot_table(index=y, columns=x, values=value, aggfunc="mean")
    fig = figure(height=max(2.6, 0.55 * len(table) + 1.4), width=min(WIDTH, 1.2 * len(table.columns) + 2.5))
    ax = fig.subplots()
    sns.heatmap(table, annot=True, fmt=".4f", cmap="viridis", cbar_kws={"label": pretty(value)}, ax=ax)
    ax.set(title=title or f"{pretty(value).capitalize()} by {x} and {y}", xlabel=x, ylabel=y)
    return fig

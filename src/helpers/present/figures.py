"""Figures for the study notebooks: tidy input in, matplotlib Figure out.

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot: a pyplot
figure is registered with the notebook backend and would be shown twice (once
when created, once when the cell returns it). Nothing here calls ``plt.show()``.
Failed runs are skipped everywhere, since they have no metrics.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from helpers.config.record import RESULTS, RunRecord, Status

# 6.9 in fits the text width of an A4 page (210 mm less 2 x 16 mm margins = 7.0 in), so a figure
# prints at the size it was drawn (fonts at their point sizes) and reads well on screen.
WIDTH = 6.9
HEIGHT = 3.8
PALETTE = "colorblind"
# PNG resolution: the report shows each figure at the size it was drawn (WIDTH inches), so 150 dpi
# is sharp on screen and in print.
DPI = 150


def theme() -> None:
    """Apply the one report style (whitegrid, colour-blind palette, readable fonts)."""
    sns.set_theme(
        context="notebook",
        style="whitegrid",
        palette=PALETTE,
        rc={
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "legend.fontsize": 9,
            "legend.title_fontsize": 9,
            "figure.dpi": 110,
            "savefig.dpi": DPI,
            "savefig.bbox": "tight",
        },
    )


theme()


def figure(height: float = HEIGHT, width: float = WIDTH) -> Figure:
    # constrained layout keeps titles/legends inside the page width without tight_layout calls
    return Figure(figsize=(width, height), layout="constrained")


def ok_records(records: Iterable[RunRecord]) -> list[dict]:
    return [r for r in records if r.get("status") == Status.OK]


def ok_frame(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    if "status" in frame.columns:
        frame = frame[frame["status"] == Status.OK]
    return frame.dropna(subset=[c for c in columns if c in frame.columns])


def colours(n: int) -> list:
    return sns.color_palette(PALETTE, max(n, 1))


def empty(message: str = "No successful runs to plot") -> Figure:
    # an explanatory blank figure keeps a notebook running when a whole study failed
    fig = figure(height=3.0)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def pretty(name: str) -> str:
    return name.replace("val_", "validation ").replace("_", " ")


def _value_text(v: float) -> str:
    if abs(v) <= 1.0 and not float(v).is_integer():
        return f"{v:.4f}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def zoomed_limits(values: Sequence[float], text_room: float = 0.0) -> tuple[float, float]:
    """Value-axis limits that make small differences visible.

    Starting at zero would squash accuracies of 0.86-0.89 into identical bars, so
    the axis starts just below the smallest value unless that is close to zero anyway.
    """
    lo, hi = float(np.min(values)), float(np.max(values))
    span = hi - lo
    pad = max(span * 0.6, abs(hi) * 0.02, 1e-3)
    start = lo - pad
    if start <= 0 or start < 0.25 * hi:
        start = 0.0
    else:
        step = 10 ** math.floor(math.log10(pad))  # round down so the start is a tidy number
        start = math.floor(start / step) * step
    end = hi + (hi - start) * (0.08 + text_room)
    if 0 < hi <= 1.0 and start > 0:
        end = min(end, 1.0 + (hi - start) * text_room)
    return start, end


def label_axis_start(ax, start: float, axis: str = "y") -> None:
    """Make a non-zero axis start explicit: a tick at the start and a note in the label."""
    if start == 0:
        return
    get_ticks, set_ticks = (ax.get_yticks, ax.set_yticks) if axis == "y" else (ax.get_xticks, ax.set_xticks)
    get_label, set_label = (ax.get_ylabel, ax.set_ylabel) if axis == "y" else (ax.get_xlabel, ax.set_xlabel)
    lim = ax.get_ylim() if axis == "y" else ax.get_xlim()
    ticks = [t for t in get_ticks() if lim[0] <= t <= lim[1]]
    if not ticks or not math.isclose(ticks[0], start, abs_tol=1e-9):
        ticks = [start] + [t for t in ticks if t - start > 0.4 * (ticks[1] - ticks[0] if len(ticks) > 1 else 1)]
    set_ticks(ticks)
    set_label(f"{get_label()} (axis starts at {start:g})")


def learning_curves(records: Iterable[RunRecord], metrics: Sequence[str] = ("accuracy", "loss")) -> Figure:
    """One panel per metric; colour = configuration, dashed = training, solid = validation."""
    # A diverged run is shown too: its curves are the result (R3's learning rate 0.1).
    ok = [r for r in records if r.get("status") in RESULTS and r.get("history")]
    if not ok:
        return empty()
    fig = figure(height=4.2 if len(ok) > 4 else HEIGHT)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    palette = colours(len(ok))
    for ax, metric in zip(axes, metrics):
        for colour, rec in zip(palette, ok):
            hist = rec["history"]
            for key, style in ((metric, "--"), (f"val_{metric}", "-")):
                ys = hist.get(key)
                if ys:
                    # Markers keep a one- or two-epoch run visible (a single point draws no line).
                    ax.plot(range(1, len(ys) + 1), np.asarray(ys, dtype=float), linestyle=style, color=colour,
                            linewidth=1.6, marker="o" if len(ys) <= 3 else None, markersize=3)
        if metric == "loss":  # an exploding loss would flatten every other curve: it leaves the panel
            kept = [v for r in ok if r["status"] == Status.OK for k in (metric, f"val_{metric}")
                    for v in r["history"].get(k) or [] if v is not None and math.isfinite(v)]
            if kept and any(r["status"] == Status.DIVERGED for r in ok):
                pad = 0.05 * (max(kept) - min(kept) or 1)
                ax.set_ylim(min(kept) - pad, max(kept) + pad)
    labels = [r["label"] + (" (diverged)" if r["status"] == Status.DIVERGED else "") for r in ok]
    _epoch_panels(fig, axes, metrics, zip(palette, labels))
    return fig


def _epoch_panels(fig: Figure, axes, metrics: Sequence[str], entries, title: str = "", band: str = "") -> None:
    """Titles and axes of per-epoch panels, and one legend: a colour per configuration (proxy
    handles: the plotted lines would list every configuration twice), dashed/solid per split."""
    for ax, metric in zip(axes, metrics):
        ax.set_title(f"{pretty(metric).capitalize()} per epoch{title}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(pretty(metric))
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles = [Line2D([], [], color=c, linewidth=2.5, label=label) for c, label in entries]
    handles += [Line2D([], [], color="0.3", linestyle="--", label="training"),
                Line2D([], [], color="0.3", linestyle="-", label="validation")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), frameon=False,
               title="colour = configuration; dashed = training, solid = validation" + band)


def mean_curves(records: Iterable[RunRecord], metrics: Sequence[str] = ("accuracy", "loss")) -> Figure:
    """Several seeds per configuration: the mean curve per configuration with a min–max band over
    its seeds (a seed that stopped early counts until its last epoch)."""
    groups: dict[str, list[dict]] = {}
    for rec in ok_records(records):
        if rec.get("history"):
            groups.setdefault(rec["label"], []).append(rec["history"])
    if not groups:
        return empty()
    fig = figure(height=4.2 if len(groups) > 4 else HEIGHT)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    palette = colours(len(groups))
    for ax, metric in zip(axes, metrics):
        for colour, hists in zip(palette, groups.values()):
            for key, style, alpha in ((metric, "--", 0.08), (f"val_{metric}", "-", 0.22)):
                runs = [h[key] for h in hists if h.get(key)]
                if not runs:
                    continue
                grid = np.full((len(runs), max(map(len, runs))), np.nan)
                for i, ys in enumerate(runs):
                    grid[i, :len(ys)] = ys
                xs = np.arange(1, grid.shape[1] + 1)
                ax.plot(xs, np.nanmean(grid, axis=0), linestyle=style, color=colour, linewidth=1.6,
                        marker="o" if len(xs) <= 3 else None, markersize=3)
                ax.fill_between(xs, np.nanmin(grid, axis=0), np.nanmax(grid, axis=0), color=colour,
                                alpha=alpha, linewidth=0)
    _epoch_panels(fig, axes, metrics, zip(palette, groups), " (mean over seeds)", "; band = min–max over seeds")
    return fig


def _by_configuration(data: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Runs of the same configuration (several seeds) as one row: the mean of ``columns`` and
    their standard deviation in ``<column>_std`` (0 for a single run)."""
    grouped = data.groupby("label", sort=False)
    out = grouped[list(columns)].mean()
    for c in columns:
        out[f"{c}_std"] = grouped[c].std(ddof=1).fillna(0.0)
    out["n"] = grouped[columns[0]].count()
    if "baseline" in data.columns:
        out["baseline"] = grouped["baseline"].first()
    return out.reset_index()


def _repeated(data: pd.DataFrame) -> bool:
    return "label" in data.columns and data["label"].duplicated().any()


def versus(frame: pd.DataFrame, x: str, y: str = "test_accuracy", logx: bool = False,
           title: str | None = None, xlabel: str | None = None) -> Figure:
    """Points joined in order of x, each annotated with its configuration label."""
    data = ok_frame(frame, x, y)
    if data.empty:
        return empty()
    several = _repeated(data)
    if several:  # one point per configuration: the mean, with ± 1 std error bars over seeds
        data = _by_configuration(data, x, y)
    data = data.sort_values(x)
    fig = figure()
    ax = fig.add_subplot()
    ax.plot(data[x], data[y], marker="o", markersize=7, linewidth=1.5, color=colours(1)[0])
    if several:
        ax.errorbar(data[x], data[y], yerr=data[f"{y}_std"], fmt="none", ecolor="0.35", capsize=3)
    if "baseline" in data.columns and data["baseline"].astype(bool).any():
        base = data[data["baseline"].astype(bool)]
        ax.plot(base[x], base[y], marker="*", markersize=14, linestyle="none",
                color=colours(2)[1], label="baseline", zorder=3)
        ax.legend(loc="best")
    for i, (_, row) in enumerate(data.iterrows()):
        # alternate above/below so labels of neighbouring points do not collide
        ax.annotate(str(row.get("label", "")), (row[x], row[y]), textcoords="offset points",
                    xytext=(0, 8 if i % 2 == 0 else -14), ha="center", fontsize=8)
    if logx:
        ax.set_xscale("log")
    ax.margins(x=0.08, y=0.2)
    ax.set_xlabel(xlabel or pretty(x))
    ax.set_ylabel(pretty(y) + (" (mean ± std over seeds)" if several else ""))
    ax.set_title(title or f"{pretty(y).capitalize()} vs {xlabel or pretty(x)}")
    return fig


def bars(frame: pd.DataFrame, y: str = "test_accuracy", title: str | None = None) -> Figure:
    """One horizontal bar per configuration (in study order) with its value printed on it."""
    data = ok_frame(frame, y)
    if data.empty:
        return empty()
    several = _repeated(data)
    if several:  # one bar per configuration: the mean over seeds, ± 1 std error bars
        data = _by_configuration(data, y)
    labels = [str(v) for v in data["label"]]
    values = data[y].astype(float).to_numpy()
    err = data[f"{y}_std"].to_numpy() if several else np.zeros(len(values))
    counts = data["n"].to_numpy() if several else np.ones(len(values), dtype=int)
    fig = figure(height=min(4.5, max(3.0, 1.0 + 0.4 * len(labels))))
    ax = fig.add_subplot()
    positions = np.arange(len(labels))
    ax.barh(positions, values, color=colours(len(labels)), height=0.65,
            xerr=err if several else None, capsize=4, error_kw={"ecolor": "0.25"})
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()  # first configuration on top, matching table order
    start, end = zoomed_limits(np.concatenate([values - err, values + err]), text_room=0.35 if several else 0.25)
    ax.set_xlim(start, end)
    for pos, val, e, n in zip(positions, values, err, counts):
        spread = (f" ± {e:.4f}" if abs(val) <= 1 else f" ± {_value_text(e)}") if n > 1 else " (1 seed)"
        ax.text(val + e, pos, f" {_value_text(val)}" + (spread if several else ""),
                va="center", ha="left", fontsize=9)
    ax.set_xlabel(pretty(y) + (" (mean ± std over seeds)" if several else ""))
    ax.grid(axis="y", visible=False)
    label_axis_start(ax, start, axis="x")
    ax.set_title(title or f"{pretty(y).capitalize()} per configuration")
    return fig


def accuracy_splits(frame: pd.DataFrame) -> Figure:
    """Grouped train / validation / test accuracy bars; the train-validation gap is printed."""
    splits = {"train_accuracy": "train", "val_accuracy": "validation", "test_accuracy": "test"}
    data = ok_frame(frame, *splits)
    if data.empty:
        return empty()
    labels = [str(v) for v in data["label"]]
    long = (data.assign(label=labels)
            .melt(id_vars=["label"], value_vars=list(splits), var_name="split", value_name="accuracy"))
    long["split"] = long["split"].map(splits)
    fig = figure()
    ax = fig.add_subplot()
    several = _repeated(data)
    if several:  # seaborn draws each configuration's mean over seeds; the bars show ± 1 std
        labels = list(dict.fromkeys(labels))
        data = _by_configuration(data, *splits)
    sns.barplot(data=long, x="label", y="accuracy", hue="split", order=labels,
                hue_order=list(splits.values()), ax=ax, errorbar="sd" if several else None, capsize=0.1)
    start, end = zoomed_limits(long["accuracy"].to_numpy(), text_room=0.15)
    ax.set_ylim(start, end)
    for i, (_, row) in enumerate(data.iterrows()):
        gap = (row["train_accuracy"] - row["val_accuracy"]) * 100
        top = max(row[k] + (row[f"{k}_std"] if several else 0) for k in splits)
        ax.text(i, top, f"gap {gap:+.1f} pp", ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("configuration")
    ax.set_ylabel("accuracy")
    if len(labels) > 4:
        ax.tick_params(axis="x", labelrotation=30)
    label_axis_start(ax, start, axis="y")
    # outside the axes: inside, it would cover the bars of some configuration
    handles, texts = ax.get_legend_handles_labels()
    ax.get_legend().remove()
    fig.legend(handles, texts, title="split", loc="outside right upper", frameon=False)
    ax.set_title("Train / validation / test accuracy (gap = train − validation)")
    return fig

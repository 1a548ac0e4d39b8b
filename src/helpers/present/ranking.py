"""The composite ranking's part of the summary across studies: its weights in words, the table of
the top configurations and a chart of their scores (the numbers: helpers.analysis.ranking)."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from helpers.analysis.ranking import COMPONENTS, rank
from helpers.config import kinds
from helpers.config.record import RunRecord
from helpers.present import figures
from helpers.present.markup import figure_html, table_html

WORDS = {"test_accuracy": "test accuracy", "auc": "ROC AUC", "gap": "low overfitting gap (train − validation)",
         "params": "few parameters", "seconds": "short training time"}


def table(frame: pd.DataFrame, used: dict[str, float], top: int) -> pd.DataFrame:
    """The top rows as shown: raw test accuracy, then each applied component normalised, the score."""
    keys = [k for k in COMPONENTS if used[k] > 0]
    out = frame.head(top)[["rank", "study", "configuration", "runs", "test_accuracy"]].copy()
    out = out.rename(columns={"test_accuracy": "test acc (raw)"})
    single = bool(((frame["runs"] == 1) & (frame["of"] == 1)).all())
    out["runs"] = [f"{n}/{m}" for n, m in zip(frame["runs"].head(top), frame["of"].head(top))]
    for k in keys:
        out[f"{COMPONENTS[k][1]} ({used[k]:.2f})"] = frame[f"n_{k}"].head(top)
    out["score"] = frame["score"].head(top)
    if single:
        out = out.drop(columns="runs")
    return out.round(4)


def chart(frame: pd.DataFrame, used: dict[str, float], top: int):
    """Stacked horizontal bars: each configuration's score split into its weighted components."""
    data = frame.head(top)
    if data.empty:
        return figures.empty("No configuration to rank")
    keys = [k for k in COMPONENTS if used[k] > 0]
    fig = figures.figure(height=min(6.0, max(2.6, 1.0 + 0.35 * len(data))))
    ax = fig.add_subplot()
    names = [f"{c} ({s})" for c, s in zip(data["configuration"], data["study"])]
    pos = np.arange(len(data))
    left = np.zeros(len(data))
    for key, colour in zip(keys, figures.colours(len(keys))):
        part = used[key] * data[f"n_{key}"].to_numpy(dtype=float)
        ax.barh(pos, part, left=left, height=0.65, color=colour, label=f"{COMPONENTS[key][1]} ({used[key]:.2f})")
        left += part
    for p, s in zip(pos, data["score"]):
        ax.text(s, p, f" {s:.3f}", va="center", ha="left", fontsize=9)
    ax.set_yticks(pos, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("composite score (weighted sum of normalised components)")
    fig.legend(loc="outside lower center", ncol=len(keys), frameon=False)
    ax.set_title(f"Composite ranking: top {len(data)}")
    return fig


def weights_sentence(used: dict[str, float], given: dict[str, float]) -> str:
    parts = [f"{used[k]:.2f} × {WORDS[k]}" for k in COMPONENTS if used[k] > 0]
    given_txt = ", ".join(f"{k} {given.get(k, 0):g}" for k in COMPONENTS)
    return f"score = {' + '.join(parts)} (weights as given: {given_txt})"


def section_html(records: list[RunRecord], settings) -> str:
    """The ranking's part of the cross-study summary: heading, weights, table and chart."""
    if settings is None or settings.top == 0:
        return ""
    given = settings.weights.model_dump()
    frame, used, notes = rank(records, given)
    if len(frame) < 2 or not any(used.values()):  # one configuration has no one to be ranked against
        return ""
    shown = table(frame, used, settings.top)
    body = shown.to_html(table_id="ranking-table", classes="results ranking", index=False, na_rep="—", escape=True)
    n = len(frame)
    text = (f"<p>A composite score in the manner of R1 ranks the {n} configuration{'s' * (n != 1)} of this report "
            f"that have a test score: {html.escape(weights_sentence(used, given))}. Each component is "
            "min–max normalised over these configurations, 1 for the best and 0 for the worst; low gap, few "
            "parameters and short time count the smallest value as best. The weights are parameters "
            "(<code>ranking.weights</code>). "
            + "".join(f"{html.escape(note[0].upper() + note[1:])}. " for note in notes)
            + ("Runs gives the runs a configuration's numbers are the mean over, out of those trained: a "
               "configuration that lost some is averaged over the survivors only. "
               if (frame["runs"] < frame["of"]).any() else "")
            + ("A configuration that several studies share is one row, their names joined by “/”. "
               if frame["study"].astype(str).str.contains(" / ").any() else "")
            + ("The robustness study's re-runs are not ranked again: their configurations are ranked under "
               "the studies they come from. " if any(kinds.after_others(r.get("kind")) for r in records) else "")
            + "The ranking weighs test accuracy, so it describes the configurations and chooses none; "
            "every choice in this report is made on validation accuracy.</p>")
    return ('<h3 id="ranking">Composite ranking</h3>' + text
            + table_html(body, "tab:summary:ranking",
                         f"The top {len(shown)} configurations by composite score: each normalised component "
                         "(its weight in brackets) and the score; test acc (raw) is the unnormalised test accuracy.")
            + figure_html(chart(frame, used, settings.top), "fig:summary:ranking",
                          "Composite score of the top configurations, split into its weighted components."))

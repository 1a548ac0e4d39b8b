"""What a search study's notebook shows (its cells call search.<name>): the space and budget, the
top trials, validation score against each hyperparameter, and findings. Every number comes from
the search summary that helpers.run.search attaches to the study's records (``record["search"]``)."""
from __future__ import annotations

import html
import math

import pandas as pd
from IPython.display import HTML, Markdown
from matplotlib.ticker import MaxNLocator, NullFormatter

from helpers.analysis import noise, stats
from helpers.config import space as searchspace
from helpers.config.record import RESULTS, RunRecord, Status
from helpers.present import figures, findings as finding_words, format as fmt
from helpers.present.markup import figure_html, see, table_html

_shown = searchspace.shown_value

OBJECTIVE = {"val_accuracy": "validation accuracy", "val_loss": "validation loss"}


def _study(records: list[RunRecord]) -> str:
    return records[0].get("study", "study") if records else "study"


def describe(key: str, p: dict) -> tuple[str, str]:
    """(kind, range) of one hyperparameter in words, for the report's table of the space."""
    if p.get("values") is not None:
        return "choice", ", ".join(fmt.compact(v) for v in p["values"])
    kind = "integer" if key in searchspace.INTS else "float"
    text = f"{fmt.compact(p['min'])} to {fmt.compact(p['max'])}"
    if p.get("step"):
        text += f", step {fmt.compact(p['step'])}" + (" (×)" if p.get("sampling") == "log" else "")
    if p.get("sampling") == "log":
        text += ", log scale"
    return kind + (" per layer" if key == "units" else ""), text


def _summary(records: list[RunRecord]) -> dict:
    return next((r["search"] for r in records if r.get("search")), {})


def _done(s: dict) -> list[dict]:
    """Completed trials, best first by the search's objective."""
    done = [t for t in s.get("trials", []) if t.get("score") is not None and t["status"] == "COMPLETED"]
    return sorted(done, key=lambda t: -t["score"] if s["objective"].endswith("accuracy") else t["score"])


def _words(s: dict) -> str:
    if s["algorithm"] == "hyperband":
        budget = (f"Hyperband: up to {s['max_epochs']} epochs per trial, factor {s['factor']}, "
                  f"{s['hyperband_iterations']} iteration{'s' * (s['hyperband_iterations'] != 1)}"
                  + (f", at most {s['max_trials']} trials" if s.get("max_trials") else ""))
    else:
        budget = f"{'random search' if s['algorithm'] == 'random' else 'Bayesian optimisation'}: {s['max_trials']} trials"
    return budget + (f", each trained {s['executions_per_trial']} times" if s["executions_per_trial"] > 1 else "")


def space(records: list[RunRecord]) -> HTML:
    s = _summary(records)
    if not s:
        return HTML("")
    study = _study(records)
    rows = [(key, *describe(key, p)) for key, p in s["space"].items()]
    body = pd.DataFrame(rows, columns=["hyperparameter", "type", "range or choices"]).set_index("hyperparameter")
    table = table_html(body.to_html(classes="results", escape=True), f"tab:{study}:space",
                               "The search space; every hyperparameter not listed keeps the study's base value.")
    seconds = sum(t["seconds"] or 0 for t in s["trials"])
    reused = len(s["trials"]) - s["new_trials"]
    text = (f"<p><b>Algorithm and budget</b>: {html.escape(_words(s))}; objective: {OBJECTIVE[s['objective']]} "
            f"(the test set is never shown to the tuner). <b>Spent</b>: {len(s['trials'])} trials "
            f"({s['new_trials']} trained in this build" + (f", {reused} reused from the cache" if reused else "")
            + f"), {seconds:.1f} s of trial training in all; this build's search took {s['seconds']:.1f} s.</p>")
    return HTML(table + text)


def _tid(trial_id: str) -> str:
    """Keras Tuner pads trial ids to the width of max_trials ("0003" without one); show numbers."""
    return str(int(trial_id)) if str(trial_id).isdigit() else str(trial_id)


def trials(records: list[RunRecord]) -> HTML:
    s = _summary(records)
    if not s:
        return HTML("")
    study = _study(records)
    done = _done(s)
    rows = []
    for rank, t in enumerate(done[:s["top"]], 1):
        row = {"rank": rank, "trial": _tid(t["id"]), OBJECTIVE[s["objective"]]: f"{t['score']:.4f}"}
        row.update({k: _shown(v) for k, v in t["values"].items()})
        row.update({"epochs": t["epochs"], "time (s)": None if t["seconds"] is None else round(t["seconds"], 1)})
        if s["algorithm"] == "hyperband":
            row["from trial"] = _tid(t["continues"]) if t["continues"] else "—"
        rows.append(row)
    if not rows:
        return HTML("<p>No trial completed.</p>")
    body = pd.DataFrame(rows).set_index("rank").to_html(classes="results", na_rep="—", escape=True)
    caption = (f"The {len(rows)} best of {len(s['trials'])} trials by {OBJECTIVE[s['objective']]}, the search's "
               "objective; epochs = epochs the trial trained"
               + ("; Hyperband trains promising trials longer, continuing from an earlier trial's weights (from "
                  "trial)." if s["algorithm"] == "hyperband" else "."))
    return HTML(table_html(body, f"tab:{study}:trials", caption))


def _axis(t: dict, key: str):
    """A trial's value on the panel of ``key``: layers and units are read from hidden."""
    hidden = t["values"].get("hidden", t["model"]["hidden"])
    if key == "layers":
        return len(hidden)
    if key == "units":
        return sum(hidden)
    return t["values"][key]


def scores_figure(s: dict):
    done = _done(s)
    keys = list(s["space"])
    if not done:
        return figures.empty("No trial completed")
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = figures.figure(height=2.6 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    best = done[0]
    for ax, key in zip(axes, keys):
        p = s["space"][key]
        xs = [_axis(t, key) for t in done]
        ys = [t["score"] for t in done]
        if "values" in p and key != "layers":  # choices: one column each, in the declared order
            order = [str(v) for v in p["values"]]
            pos = [order.index(str(x)) for x in xs]
            ax.set_xticks(range(len(order)), order)
            xs = pos
        ax.scatter(xs, ys, s=18, alpha=0.7)
        bx = xs[0]
        ax.scatter([bx], [best["score"]], marker="*", s=140, color="C3", zorder=3, label="best trial")
        if p.get("sampling") == "log":
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on a short range
        elif key in searchspace.INTS and "values" not in p:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.set_xlabel({"units": "total hidden units", "layers": "hidden layers"}.get(key, key.replace("_", " ")))
        ax.set_ylabel(OBJECTIVE[s["objective"]])
    for ax in axes[len(keys):]:
        ax.set_axis_off()
    return fig


def scores(records: list[RunRecord]) -> HTML:
    s = _summary(records)
    if not s:
        return HTML("")
    return HTML(figure_html(scores_figure(s), f"fig:{_study(records)}:scores",
                            f"{html.escape(OBJECTIVE[s['objective']].capitalize())} of each completed trial against "
                            "each searched hyperparameter (units: the sum over layers); the star marks the best trial."))


def _numeric(done: list[dict], key: str) -> list[float] | None:
    xs = [_axis(t, key) for t in done]
    return xs if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs) else None


def _edge(s: dict, best: dict) -> list[str]:
    """Hyperparameters whose best value sits at an end of its range: the next search should widen it."""
    out = []
    for key, p in s["space"].items():
        if "values" in p or key == "units":
            continue
        x, lo, hi = _axis(best, key), p["min"], p["max"]
        if key in searchspace.INTS and (hi - lo) / p.get("step", 1) < 3:
            continue  # two or three values: each is an "end"
        f = (lambda v: math.log(v)) if p.get("sampling") == "log" else (lambda v: v)
        where = (f(x) - f(lo)) / (f(hi) - f(lo))
        if 0.1 < where < 0.9:
            continue
        side = "bottom" if where <= 0.1 else "top"
        if side == "bottom" and (lo <= 0 or (key == "layers" and lo <= 1)):
            continue  # nothing below it to try (no negative rate; zero hidden layers is the baseline)
        out.append(f"`{key}` = {_shown(x)} lies at the {side} of its range ({_shown(lo)} to {_shown(hi)}): "
                   f"a follow-up search should extend the range {'below' if side == 'bottom' else 'above'} it")
    return out


def findings(records: list[RunRecord]) -> Markdown:
    s = _summary(records)
    if not s:
        return Markdown(finding_words.findings(records, links=True))
    study = _study(records)
    done = _done(s)
    acc, pp = fmt.acc, fmt.pp
    what = OBJECTIVE[s["objective"]]
    best = done[0]
    parts = [f"The search ({html.escape(_words(s))}) ran {len(s['trials'])} trials, {len(done)} of which "
             f"completed{see(f'tab:{study}:trials')}. The best, trial {_tid(best['id'])}, reached {what} "
             f"{acc(best['score'])} with " + ", ".join(f"`{k}` = {_shown(v)}" for k, v in best["values"].items()) + "."]
    rec = next((r for r in records if r.get("status") in RESULTS), None)
    if rec is not None:
        m = rec["metrics"]
        parts.append(f"Retrained from scratch with that configuration for {rec['config']['training']['epochs']} "
                     f"epochs, it reaches validation accuracy {acc(m['val_accuracy'])} and test accuracy "
                     f"{acc(m['test_accuracy'])}{see(f'tab:{study}:results')}: the test set was used this once, "
                     "after the search chose by validation data alone.")
        if rec["status"] == Status.DIVERGED:
            parts.append(f"The retrained run diverged ({rec.get('reason')}).")
        elif s["objective"] == "val_accuracy" and abs(m["val_accuracy"] - best["score"]) >= noise.floor([rec]):
            parts.append(f"Its validation accuracy differs from the trial's by {pp(m['val_accuracy'] - best['score'])} "
                         "points: a trial is scored at its best epoch"
                         + (" and may continue from an earlier trial's weights" if s["algorithm"] == "hyperband" else "")
                         + ", so the retrained figure is the fairer one.")
    if len(done) >= 5:
        ys = [t["score"] for t in done]
        cors = []
        for key in s["space"]:
            xs = _numeric(done, key)
            if xs is not None and len(set(xs)) > 1:
                rho = stats.rank_corr(xs, ys)
                if rho == rho:
                    cors.append((abs(rho), rho, key))
        if cors:
            _, rho, key = max(cors)
            sign = -1 if s["objective"] == "val_loss" else 1
            trend = "rises" if rho * sign > 0 else "falls"
            parts.append(f"Across the trials, {what} {trend} most consistently with `{key}` (rank correlation "
                         f"{fmt.signed(rho)}){see(f'fig:{study}:scores')}" + (
                             "; no hyperparameter shows a strong monotonic effect." if abs(rho) < 0.5 else "."))
    else:
        parts.append(f"With {len(done)} completed trials there are too few to say which hyperparameter matters.")
    edges = _edge(s, best)
    if edges:
        parts.append("; ".join(e[0].upper() + e[1:] for e in edges) + ".")
    bad = [t for t in s["trials"] if t["status"] != "COMPLETED"]
    if bad:
        parts.append(f"{len(bad)} trial{'s' * (len(bad) != 1)} did not complete ({', '.join(_tid(t['id']) for t in bad)}).")
    return Markdown(" ".join(parts))


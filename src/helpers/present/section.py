"""What a study notebook shows after training: its design, results table, figures and findings.
Each function returns an object Jupyter displays (Markdown or HTML), so notebook cells stay one
line each. Kinds with sections of their own add a module of helpers.present.views.
"""
from __future__ import annotations

import html

from IPython.display import HTML, Markdown

from helpers.analysis import records as runs, repeats
from helpers.config.kinds import AXIS_WORDS
from helpers.config.record import RESULTS, RunRecord, Status
from helpers.present import (
    design as design_words,
    diagnostics as evaluation,
    figures,
    findings as finding_words,
    references as reference_words,
    repeats as repeat_words,
    tables,
)
from helpers.present.markup import figure_html, table_html


def _study(records: list[RunRecord]) -> str:
    return records[0].get("study", "study") if records else "study"


def by(records: list[RunRecord]) -> str:
    """What a study's figures are broken down by, in words: 'by number of hidden layers'."""
    keys = list(dict.fromkeys(k for r in records for k in (r.get("axis") or {})))
    if keys:
        return "by " + " × ".join(AXIS_WORDS.get(k, k.replace("_", " ")) for k in keys)
    labels = list(dict.fromkeys(str(r.get("label", "")) for r in records))  # once, however many seeds
    shown = ", ".join(labels[:6]) + (f" and {len(labels) - 6} more" if len(labels) > 6 else "")
    return f"for each configuration ({shown})" if labels else "for each configuration"


def figure(records: list[RunRecord], fig, name: str, caption: str) -> HTML:
    return HTML(figure_html(fig, f"fig:{_study(records)}:{name}", caption))


# ---------------------------------------------------------------- what the notebooks show
def design(records: list[RunRecord]) -> Markdown:
    return Markdown(design_words.design(records))


def _weights_column(frame, records: list[RunRecord]):
    """The repeated-seeds table with a "weights" column before its status: which epoch each
    configuration's metrics measure (tables.group_weights)."""
    per = {label: tables.group_weights(rs) for (_, label), rs in repeats.groups(records).items()}
    frame = frame.copy()
    at = frame.columns.get_loc("status") if "status" in frame.columns else len(frame.columns)
    frame.insert(at, tables.TABLE_COLUMNS["best_epoch"], [per.get(label) for label in frame.index])
    return frame


def table(records: list[RunRecord]) -> HTML:
    study = _study(records)
    what = html.escape(tables.measured(records))
    if repeats.repeated(records):
        n = len(repeats.seeds(records))
        body = _weights_column(repeat_words.table(records), records).to_html(
            table_id=f"results-{study}", classes="results", na_rep="—", escape=True)
        caption = (f"Results {html.escape(by(records))} over {n} seeds: mean ± standard deviation and the 95 % "
                   f"confidence interval of the mean (t distribution) of the accuracy of {what}; the best "
                   "configuration is chosen by mean validation accuracy; gap = train − validation accuracy and "
                   "time = training wall time, both means over seeds.")
        return HTML(table_html(body, f"tab:{study}:results", caption))
    body = tables.results(records).to_html(table_id=f"results-{study}", classes="results", na_rep="—",
                                          escape=True)
    caption = (f"Results {html.escape(by(records))}: accuracy and loss on each split of {what}; the best "
               "configuration is chosen by validation accuracy; gap = train − validation accuracy; time = "
               "training wall time.")
    return HTML(table_html(body, f"tab:{study}:results", caption))


def failures(records: list[RunRecord]) -> HTML:
    """Failed runs, with their errors, shown in the section instead of stopping the study."""
    failed = [r for r in records if r.get("status") not in RESULTS]  # diverged: a result (findings)
    if not failed:
        return HTML("")
    seed = (lambda r: f" · seed {r.get('seed')}") if repeats.repeated(records) else (lambda r: "")  # noqa: E731
    items = "".join(f"<li><b>{html.escape(r['label'] + seed(r))}</b>: <code>{html.escape(r.get('error') or '')}</code>"
                    f"<pre>{html.escape(r.get('traceback') or '')}</pre></li>" for r in failed)
    return HTML(f'<div class="study-error"><p><b>{len(failed)} of {len(records)} runs failed.</b></p>'
                f"<ul>{items}</ul></div>")


def curves(records: list[RunRecord]) -> HTML:
    if repeats.repeated(records):
        return figure(records, figures.mean_curves(records), "curves",
                      f"Accuracy and loss per epoch {html.escape(by(records))}, mean over seeds with a min–max "
                      "band (training dashed, validation solid; one colour per configuration).")
    return figure(records, figures.learning_curves(records), "curves",
                  f"Accuracy and loss per epoch {html.escape(by(records))} (training dashed, validation "
                  "solid; one colour per configuration).")


def versus(records: list[RunRecord], x: str, *, logx: bool = False, xlabel: str | None = None) -> HTML:
    what = xlabel or x.replace("_", " ")
    star = any(r.get("baseline") and r.get("status") == Status.OK for r in records)  # plots draw ok runs only
    drawn = {r.get("label") for r in records if r.get("status") == Status.OK}
    gone = {r.get("label"): Status.DIVERGED if r.get("status") == Status.DIVERGED else Status.FAILED
            for r in records if r.get("label") not in drawn}
    return figure(records, figures.versus(runs.frame(records), x=x, logx=logx, xlabel=xlabel), f"versus-{x}",
                  f"Test accuracy against {html.escape(what)} {html.escape(by(records))}; each point is one "
                  "configuration" + (", the star marks the baseline" if star else "")
                  + ("; not drawn: " + html.escape(", ".join(f"{k} ({v})" for k, v in gone.items())) if gone else "")
                  + ("; points are means over seeds with ± 1 standard deviation error bars." if
                     repeats.repeated(records) else "."))


def bars(records: list[RunRecord], y: str = "test_accuracy") -> HTML:
    frame = runs.frame(records)
    if y not in frame or frame[y].isna().all():  # e.g. ROC AUC of a multi-class study: not measured
        return HTML("")
    several = repeats.repeated(records)
    return figure(records, figures.bars(frame, y=y), f"bars-{y}",
                  f"{html.escape(y.replace('val_', 'validation ').replace('_', ' ').capitalize())} "
                  f"{html.escape(by(records))}"
                  + (": mean over seeds with ± 1 standard deviation error bars." if several else "."))


def spread(records: list[RunRecord]) -> HTML:
    """Test accuracy per configuration with error bars over seeds, and ROC AUC where measured."""
    return HTML(bars(records).data + bars(records, "roc_auc").data)


def splits(records: list[RunRecord]) -> HTML:
    return figure(records, figures.accuracy_splits(runs.frame(records)), "splits",
                  f"Train, validation and test accuracy {html.escape(by(records))}; the printed gap is "
                  "train − validation accuracy in percentage points (a large gap means overfitting)"
                  + ("; bars are means over seeds with ± 1 standard deviation error bars." if
                     repeats.repeated(records) else "."))


def confusion(records: list[RunRecord]) -> HTML:
    several = repeats.repeated(records)  # one matrix per configuration: counts summed over seeds
    return figure(records, evaluation.confusion_matrices(repeats.collapse(records)), "confusion",
                  f"Test-set confusion matrices {html.escape(by(records))}"
                  + (", counts summed over seeds" if several else "") + "; each row is normalised to its "
                  "true class (cells: % of the true class), so the diagonal is per-class recall.")


def diagnostics(records: list[RunRecord]) -> HTML:
    """Binary tasks: ROC, precision-recall and reliability curves of the best configuration
    (chosen by validation accuracy); nothing for multi-class studies."""
    several = repeats.repeated(records)
    best = repeats.best_run(records) if several else runs.best(records)
    if not best or not best.get("curves"):
        return HTML("")
    return figure(records, evaluation.binary_diagnostics(best), "diagnostics",
                  "ROC, precision–recall and calibration curves of the best configuration, "
                  f"<b>{html.escape(best['label'])}</b> (chosen by "
                  + (f"mean validation accuracy; the run with seed {best.get('seed')}" if several else
                     "validation accuracy") + "), on the test set.")


def grid(records: list[RunRecord]) -> HTML:
    """A grid's validation accuracy pivoted by its axes; a heatmap for each two-axis slice."""
    axes = list(records[0].get("axis", {})) if records else []
    frame = runs.frame(records)
    if len(axes) < 2 or frame.empty or "val_accuracy" not in frame:
        return HTML("")
    study = _study(records)
    ok = frame[frame["status"] == Status.OK]
    pivot = ok.pivot_table(index=axes[0], columns=axes[1:], values="val_accuracy", aggfunc="mean").round(4)
    parts = [table_html(pivot.to_html(classes="results pivot", na_rep="—"), f"tab:{study}:grid",
                        f"Validation accuracy by axis: rows {html.escape(axes[0])}, columns "
                        f"{html.escape(', '.join(axes[1:]))}.")]
    slices = [(None, ok)] if len(axes) == 2 else list(ok.groupby(axes[2:]))
    for i, (key, part) in enumerate(slices, start=1):
        title = None if key is None else ", ".join(f"{a} {v}" for a, v in zip(axes[2:], key if isinstance(key, tuple) else (key,)))
        fig = evaluation.heatmap(part, x=axes[1], y=axes[0], title=title and f"Validation accuracy ({title})")
        parts.append(figure_html(fig, f"fig:{study}:grid-{i}",
                                 f"Validation accuracy by {html.escape(axes[1])} and {html.escape(axes[0])}"
                                 + (f" at {html.escape(title)}." if title else ".")))
    return HTML("".join(parts))


def comparisons(records: list[RunRecord]) -> HTML:
    """Several seeds: the best configuration against each other one (paired t-test over seeds on
    test accuracy, Holm-corrected). Nothing for a study trained with one seed."""
    if not repeats.repeated(records):
        return HTML("")
    df = repeat_words.comparison_table(records)
    if df.empty:
        return HTML("")
    n = len(repeats.comparisons(records)["comparisons"])
    caption = (f"Comparisons with the best configuration, <b>{html.escape(str(repeats.best_label(records)))}</b> "
               "(highest mean validation accuracy): difference in mean test accuracy (best − other), two-sided "
               f"{repeat_words.TEST_NAME} on test accuracy, and its p-value adjusted for the {n} "
               f"comparison{'s' * (n != 1)} with Holm's method.")
    body = df.to_html(classes="results comparisons", na_rep="—", escape=True)
    return HTML(table_html(body, f"tab:{_study(records)}:comparisons", caption))


def references(records: list[RunRecord]) -> HTML:
    """The reference studies' figures beside ours, with the verdict for each (helpers.present.references);
    nothing for a study that reproduces none."""
    return HTML(reference_words.table(records))


def findings(records: list[RunRecord]) -> Markdown:
    """The study's findings in words, with references to its table and figures."""
    return Markdown(finding_words.findings(records, links=True))

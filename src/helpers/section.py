"""What a study notebook calls: train its runs, then show them. Each function returns an object
Jupyter displays (Markdown or HTML), so notebook cells stay one line each.

Figures and tables carry a label and a caption but no number: ``<figure class="sb-figure"
data-label="fig:<study>:<name>">`` and ``<div class="sb-table" data-label="tab:<study>:<name>">``.
The report numbers them across the whole report while stitching (``report.number``) and turns
references in the text (``{{ref:fig:depth:curves}}``, see ``narrate``) into links.
"""
from __future__ import annotations

import base64
import html
import io
import re
import struct

from IPython.display import HTML, Image, Markdown

from helpers import crossval, cvsection, metrics, narrate, plots, repeats

# Words for a swept key in captions: "by number of hidden layers".
AXIS_WORDS = {"layers": "number of hidden layers", "units": "units per hidden layer", "loss": "loss function",
              "activation": "activation function", "batch_size": "batch size", "learning_rate": "learning rate"}
CSS_DPI = 96  # a CSS pixel is 1/96 inch: figures are shown at the physical size they were drawn at


def train(study: str, runs: list[dict] | None = None, *, params_file: str | None = None,
          profile: str = "smoke", results_path: str | None = None, events_path: str | None = None,
          threads: int | None = None, cache_dir: str | None = None, force: bool = False) -> list[dict]:
    """Train the study's runs (all runs go through training.run_all) and save their records."""
    from helpers import training  # TensorFlow: only where something trains, not where a report is drawn
    if not runs:  # opened by hand in Jupyter: take the study from the parameter files
        from helpers import config
        plan = config.load(params_file or config.PARAMS / "report.yaml", profile=profile, studies=[study])
        runs = plan.studies[study].runs
    if runs and "search" in runs[0]:  # a search study: tune, then retrain the best trial (helpers.search)
        from helpers import search
        records = search.train(runs, events_path=events_path, threads=threads, cache_dir=cache_dir, force=force)
    else:
        records = training.run_all(runs, events_path=events_path, threads=threads, cache_dir=cache_dir, force=force)
    if any(crossval.is_fold(r) for r in records):  # the refit's configuration depends on the folds' scores
        from helpers import cvstudy
        records += cvstudy.refit(records, events_path=events_path, threads=threads, cache_dir=cache_dir,
                                 force=force)
    if results_path:
        training.save(records, results_path)
    return records


# ---------------------------------------------------------------- figure and table markup
def _study(records: list[dict]) -> str:
    return records[0].get("study", "study") if records else "study"


def by(records: list[dict]) -> str:
    """What a study's figures are broken down by, in words: 'by number of hidden layers'."""
    keys = list(dict.fromkeys(k for r in records for k in (r.get("axis") or {})))
    if keys:
        return "by " + " × ".join(AXIS_WORDS.get(k, k.replace("_", " ")) for k in keys)
    labels = list(dict.fromkeys(str(r.get("label", "")) for r in records))  # once, however many seeds
    shown = ", ".join(labels[:6]) + (f" and {len(labels) - 6} more" if len(labels) > 6 else "")
    return f"for each configuration ({shown})" if labels else "for each configuration"


def _png(fig) -> tuple[bytes, int]:
    """PNG bytes and the CSS width (px) that shows them at the size the figure was drawn."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=plots.DPI)
    data = buf.getvalue()
    width = struct.unpack(">I", data[16:20])[0]  # the IHDR chunk: width, then height
    return data, round(width * CSS_DPI / plots.DPI)


def figure_html(fig, label: str, caption: str) -> str:
    """A figure as an embedded PNG with its caption (HTML; the caption is HTML too)."""
    data, width = _png(fig)
    alt = html.escape(html.unescape(_strip_tags(caption)), quote=True)
    return (f'<figure class="sb-figure" data-label="{html.escape(label, quote=True)}">'
            f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}" width="{width}" alt="{alt}">'
            f"<figcaption>{caption}</figcaption></figure>")


def table_html(table: str, label: str, caption: str) -> str:
    """An HTML <table> (as pandas writes it) with a caption, in a labelled wrapper."""
    start = table.index("<table")
    end = table.index(">", start) + 1
    return (f'<div class="sb-table" data-label="{html.escape(label, quote=True)}">'
            f"{table[:end]}<caption>{caption}</caption>{table[end:]}</div>")


def _strip_tags(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


def image(fig) -> Image:
    """A figure as an embedded PNG without a caption (for use by hand in Jupyter)."""
    return Image(data=_png(fig)[0], format="png")


def figure(records: list[dict], fig, name: str, caption: str) -> HTML:
    return HTML(figure_html(fig, f"fig:{_study(records)}:{name}", caption))


# ---------------------------------------------------------------- what the notebooks show
def design(records: list[dict]) -> Markdown:
    return Markdown(narrate.design(records))


def table(records: list[dict]) -> HTML:
    study = _study(records)
    if repeats.repeated(records):
        n = len(repeats.seeds(records))
        body = repeats.table(records).to_html(table_id=f"results-{study}", classes="results", na_rep="—",
                                              escape=True)
        caption = (f"Results {html.escape(by(records))} over {n} seeds: mean ± standard deviation and the 95 % "
                   "confidence interval of the mean (t distribution) of the restored (best-epoch) model's "
                   "accuracy; the best configuration is chosen by mean validation accuracy; gap = train − "
                   "validation accuracy and time = training wall time, both means over seeds.")
        return HTML(table_html(body, f"tab:{study}:results", caption))
    body = metrics.table(records).to_html(table_id=f"results-{study}", classes="results", na_rep="—",
                                          escape=True)
    caption = (f"Results {html.escape(by(records))}: accuracy and loss of the restored (best-epoch) model "
               "on each split; the best configuration is chosen by validation accuracy; gap = train − "
               "validation accuracy; time = training wall time.")
    return HTML(table_html(body, f"tab:{study}:results", caption))


def failures(records: list[dict]) -> HTML:
    """Failed runs, with their errors, shown in the section instead of stopping the study."""
    failed = [r for r in records if r.get("status") not in ("ok", "diverged")]  # diverged: a result (findings)
    if not failed:
        return HTML("")
    seed = (lambda r: f" · seed {r.get('seed')}") if repeats.repeated(records) else (lambda r: "")  # noqa: E731
    items = "".join(f"<li><b>{html.escape(r['label'] + seed(r))}</b>: <code>{html.escape(r.get('error') or '')}</code>"
                    f"<pre>{html.escape(r.get('traceback') or '')}</pre></li>" for r in failed)
    return HTML(f'<div class="study-error"><p><b>{len(failed)} of {len(records)} runs failed.</b></p>'
                f"<ul>{items}</ul></div>")


def curves(records: list[dict]) -> HTML:
    if repeats.repeated(records):
        return figure(records, plots.mean_curves(records), "curves",
                      f"Accuracy and loss per epoch {html.escape(by(records))}, mean over seeds with a min–max "
                      "band (training dashed, validation solid; one colour per configuration).")
    return figure(records, plots.learning_curves(records), "curves",
                  f"Accuracy and loss per epoch {html.escape(by(records))} (training dashed, validation "
                  "solid; one colour per configuration).")


def versus(records: list[dict], x: str, *, logx: bool = False, xlabel: str | None = None) -> HTML:
    what = xlabel or x.replace("_", " ")
    star = any(r.get("baseline") and r.get("status") == "ok" for r in records)  # plots draw ok runs only
    drawn = {r.get("label") for r in records if r.get("status") == "ok"}
    gone = {r.get("label"): "diverged" if r.get("status") == "diverged" else "failed"
            for r in records if r.get("label") not in drawn}
    return figure(records, plots.versus(metrics.frame(records), x=x, logx=logx, xlabel=xlabel), f"versus-{x}",
                  f"Test accuracy against {html.escape(what)} {html.escape(by(records))}; each point is one "
                  "configuration" + (", the star marks the baseline" if star else "")
                  + ("; not drawn: " + html.escape(", ".join(f"{k} ({v})" for k, v in gone.items())) if gone else "")
                  + ("; points are means over seeds with ± 1 standard deviation error bars." if
                     repeats.repeated(records) else "."))


def bars(records: list[dict], y: str = "test_accuracy") -> HTML:
    frame = metrics.frame(records)
    if y not in frame or frame[y].isna().all():  # e.g. ROC AUC of a multi-class study: not measured
        return HTML("")
    several = repeats.repeated(records)
    return figure(records, plots.bars(frame, y=y), f"bars-{y}",
                  f"{html.escape(y.replace('val_', 'validation ').replace('_', ' ').capitalize())} "
                  f"{html.escape(by(records))}"
                  + (": mean over seeds with ± 1 standard deviation error bars." if several else "."))


def spread(records: list[dict]) -> HTML:
    """Test accuracy per configuration with error bars over seeds, and ROC AUC where measured."""
    return HTML(bars(records).data + bars(records, "roc_auc").data)


def splits(records: list[dict]) -> HTML:
    return figure(records, plots.accuracy_splits(metrics.frame(records)), "splits",
                  f"Train, validation and test accuracy {html.escape(by(records))}; the printed gap is "
                  "train − validation accuracy in percentage points (a large gap means overfitting)"
                  + ("; bars are means over seeds with ± 1 standard deviation error bars." if
                     repeats.repeated(records) else "."))


def confusion(records: list[dict]) -> HTML:
    several = repeats.repeated(records)  # one matrix per configuration: counts summed over seeds
    return figure(records, plots.confusion_matrices(repeats.collapse(records)), "confusion",
                  f"Test-set confusion matrices {html.escape(by(records))}"
                  + (", counts summed over seeds" if several else "") + "; each row is normalised to its "
                  "true class (cells: % of the true class), so the diagonal is per-class recall.")


def diagnostics(records: list[dict]) -> HTML:
    """Binary tasks: ROC, precision-recall and reliability curves of the best configuration
    (chosen by validation accuracy); nothing for multi-class studies."""
    several = repeats.repeated(records)
    best = repeats.best_run(records) if several else narrate.best(records)
    if not best or not best.get("curves"):
        return HTML("")
    return figure(records, plots.binary_diagnostics(best), "diagnostics",
                  "ROC, precision–recall and calibration curves of the best configuration, "
                  f"<b>{html.escape(best['label'])}</b> (chosen by "
                  + (f"mean validation accuracy; the run with seed {best.get('seed')}" if several else
                     "validation accuracy") + "), on the test set.")


def grid(records: list[dict]) -> HTML:
    """A grid's validation accuracy pivoted by its axes; a heatmap for each two-axis slice."""
    axes = list(records[0].get("axis", {})) if records else []
    frame = metrics.frame(records)
    if len(axes) < 2 or frame.empty or "val_accuracy" not in frame:
        return HTML("")
    study = _study(records)
    ok = frame[frame["status"] == "ok"]
    pivot = ok.pivot_table(index=axes[0], columns=axes[1:], values="val_accuracy", aggfunc="mean").round(4)
    parts = [table_html(pivot.to_html(classes="results pivot", na_rep="—"), f"tab:{study}:grid",
                        f"Validation accuracy by axis: rows {html.escape(axes[0])}, columns "
                        f"{html.escape(', '.join(axes[1:]))}.")]
    slices = [(None, ok)] if len(axes) == 2 else list(ok.groupby(axes[2:]))
    for i, (key, part) in enumerate(slices, start=1):
        title = None if key is None else ", ".join(f"{a} {v}" for a, v in zip(axes[2:], key if isinstance(key, tuple) else (key,)))
        fig = plots.heatmap(part, x=axes[1], y=axes[0], title=title and f"Validation accuracy ({title})")
        parts.append(figure_html(fig, f"fig:{study}:grid-{i}",
                                 f"Validation accuracy by {html.escape(axes[1])} and {html.escape(axes[0])}"
                                 + (f" at {html.escape(title)}." if title else ".")))
    return HTML("".join(parts))


def comparisons(records: list[dict]) -> HTML:
    """Several seeds: the best configuration against each other one (paired t-test over seeds on
    test accuracy, Holm-corrected). Nothing for a study trained with one seed."""
    if not repeats.repeated(records):
        return HTML("")
    df = repeats.comparison_table(records)
    if df.empty:
        return HTML("")
    n = len(repeats.comparisons(records)["comparisons"])
    caption = (f"Comparisons with the best configuration, <b>{html.escape(str(repeats.best_label(records)))}</b> "
               "(highest mean validation accuracy): difference in mean test accuracy (best − other), two-sided "
               f"{repeats.TEST_NAME} on test accuracy, and its p-value adjusted for the {n} "
               f"comparison{'s' * (n != 1)} with Holm's method.")
    body = df.to_html(classes="results comparisons", na_rep="—", escape=True)
    return HTML(table_html(body, f"tab:{_study(records)}:comparisons", caption))


def findings(records: list[dict]) -> Markdown:
    """The study's findings in words, with references to its table and figures."""
    return Markdown(narrate.findings(records, links=True))


# ---------------------------------------------------------------- cross-validation studies (helpers.cvsection)
# Every notebook cell after training calls section (tests/test_notebooks.py): cvsection's parts, as they are.
cv_design, cv_table, cv_figure = cvsection.design, cvsection.table, cvsection.figure
cv_tests, cv_selected, cv_findings = cvsection.tests, cvsection.selected, cvsection.findings


# ---------------------------------------------------------------- search studies (helpers.searchview)
def search_space(records: list[dict]) -> HTML:
    from helpers import searchview
    return searchview.space(records)


def search_trials(records: list[dict]) -> HTML:
    from helpers import searchview
    return searchview.trials(records)


def search_scores(records: list[dict]) -> HTML:
    from helpers import searchview
    return searchview.scores(records)


def search_findings(records: list[dict]) -> Markdown:
    from helpers import searchview
    return searchview.findings(records)

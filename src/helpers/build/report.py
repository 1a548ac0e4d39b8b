"""Stitching: the executed study notebooks and the generated text become one combined notebook,
rendered by nbconvert with the project's template into a single self-contained HTML file (and,
on request, a PDF of that file printed by Chromium).

Layout: title page, abstract, contents, numbered sections (Introduction when the parameters give
one, Methodology, one per study, Summary across studies, Discussion, Conclusions) and a lettered
appendix. Figures and tables are numbered across the whole report by ``number`` after rendering.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import platform
import re
from importlib import metadata
from pathlib import Path

import nbformat
import pandas as pd
from nbformat.v4 import new_markdown_cell, new_notebook

from helpers.analysis import repeats
from helpers.analysis.summary import summary
from helpers.build.execute import Outcome
from helpers.build.render import html_cell, prose, render, table
from helpers.config.plan import Plan
from helpers.config.record import is_fold
from helpers.present import discussion, overview, ranking
from helpers.present.changes import box
from helpers.present.methodology import methodology, parameters_yaml
from helpers.present.tables import appendix_frames, measured
from helpers.present.views.cv import abstract_note
from helpers.run.cache import write_atomic

PACKAGES = ["tensorflow", "tensorflow-cpu", "keras", "jax", "jaxlib", "numpy", "pandas", "scikit-learn", "matplotlib",
            "seaborn", "papermill", "nbconvert", "pydantic"]
DROP_TAGS = {"header", "parameters", "injected-parameters"}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


# ---------------------------------------------------------------- building blocks
def _heading(number: int | str, title: str, anchor: str) -> str:
    return (f'<h2 class="section" id="{anchor}"><span class="secnum">{number}</span> '
            f"{html.escape(title)}</h2>")



def _study_cells(nb: nbformat.NotebookNode, number: int, section: str) -> list:
    """A study's executed cells, minus its header, parameters and log noise; headings numbered."""
    cells, sub = [], 0
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if DROP_TAGS & tags:
            continue
        if cell.cell_type == "markdown":
            def renumber(m):
                nonlocal sub
                sub += 1
                return f"### {number}.{sub} "
            cell.source = re.sub(r"^### ", renumber, cell.source, flags=re.M)
        if cell.cell_type == "code":
            if "remove-input" in tags:
                cell.source = ""
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            # A notebook's own error output is replaced by the report's error box.
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "error"]
        cell.metadata["studybook"] = {"section": section}
        cells.append(cell)
    return cells


def _error_box(outcome: Outcome) -> str:
    tb = re.sub(r"\x1b\[[0-9;]*m", "", outcome.traceback or "")  # ANSI colours from IPython
    return (f'<div class="study-error"><p><b>This study failed.</b> {html.escape(outcome.error or "")}</p>'
            + (f"<details><summary>Traceback</summary><pre>{html.escape(tb)}</pre></details>" if tb else "")
            + "</div>")


# ---------------------------------------------------------------- generated sections
def combined(plan: Plan, outcomes: list[Outcome], date: str, changes: dict | None = None) -> nbformat.NotebookNode:
    """``changes``: what differs from the previous build (helpers.build.history.diff), boxed after
    the abstract; None for a first build."""
    rep = plan.report
    records = [r for o in outcomes for r in o.records]
    # A cross-validation fold is no configuration of its own: its study's section and the appendix show it.
    every_run, records = records, [r for r in records if not is_fold(r)]
    sections: list[tuple[str, str, str]] = []  # (number, title, anchor) for the contents
    cells = [html_cell('<div class="cover">'
                   f'<h1 id="title">{html.escape(rep.title)}</h1>'
                   + (f'<p class="author">{html.escape(rep.author)}</p>' if rep.author else "")
                   + (f'<p class="course">{html.escape(rep.course)}</p>' if rep.course else "")
                   + f'<p class="date">{html.escape(date)}</p></div>'),
             new_markdown_cell("## Abstract\n\n" + overview.abstract(records) + abstract_note(every_run))]
    if changes is not None:
        cells.append(html_cell(box(changes, prose)))
    body = []
    n = 1
    if rep.introduction.strip():
        body += [html_cell(_heading(n, "Introduction", "introduction") + prose(rep.introduction))]
        sections.append((str(n), "Introduction", "introduction"))
        n += 1
    body += [html_cell(_heading(n, "Methodology", "methodology")), new_markdown_cell(methodology(plan, records, n))]
    sections.append((str(n), "Methodology", "methodology"))

    for number, outcome in enumerate(outcomes, start=n + 1):
        sp = plan.studies[outcome.name]
        anchor = f"study-{sp.name}"
        head = (f'<h2 id="{anchor}"><span class="secnum">{number}</span> {html.escape(sp.title)}</h2>'
                f'<button type="button" class="sb-toggle" data-section="{anchor}" aria-expanded="false">'
                "Show code</button>")
        if sp.question:
            head += f'<p class="question"><em>{html.escape(sp.question)}</em></p>'
        head += prose((rep.studies.get(sp.name) or {}).get("introduction", ""))
        body.append(html_cell(head, anchor))
        sections.append((str(number), sp.title, anchor))
        if outcome.status == "failed" and outcome.traceback:
            body.append(html_cell(_error_box(outcome), anchor))
        if outcome.notebook and outcome.notebook.exists():
            body += _study_cells(nbformat.read(outcome.notebook, as_version=4), number, anchor)
        elif outcome.status == "failed" and not outcome.traceback:
            body.append(html_cell(_error_box(outcome), anchor))
    n += len(outcomes) + 1

    best_rows = summary(records).rename(columns={
        "best": "best configuration (by val acc)", "val_accuracy": "val acc", "test_accuracy": "test acc",
        "f1_macro": "F1 (macro)", "params": "parameters", "seconds": "time (s)"})
    best_rows = best_rows.round({"val acc": 4, "test acc": 4, "F1 (macro)": 4, "time (s)": 1})
    best_rows["parameters"] = best_rows["parameters"].astype("Int64")
    # Folds are trained runs too: count them in "runs" though they are no configuration of their own.
    best_rows["runs"] = best_rows["study"].map(summary(every_run).set_index("study")["runs"])
    body += [html_cell(_heading(n, "Summary across studies", "summary")
                   + "<p>The best configuration of each study, chosen by validation accuracy; its test "
                   "accuracy is reported, never used to choose.</p>"
                   + table(best_rows, "summary-table", "summary", "tab:summary",
                            "The best configuration of each study (by validation accuracy) with its test "
                            "accuracy, macro F1, size and training time; runs = successful / all"
                            + ("; a study trained over several seeds shows means over them"
                               if repeats.repeated(records) else "")
                            + ("; a cross-validation study's val acc is its mean fold score"
                               if len(every_run) > len(records) else "")
                            + ".")
                   + ranking.section_html(records, rep.ranking)),
             html_cell(_heading(n + 1, "Discussion", "discussion")),
             new_markdown_cell(discussion.discussion(records, links=True))]
    if rep.discussion.strip():
        body.append(html_cell(prose(rep.discussion)))
    body += [html_cell(_heading(n + 2, "Conclusions", "conclusions")), new_markdown_cell(overview.conclusions(records))]
    sections += [(str(n), "Summary across studies", "summary"), (str(n + 1), "Discussion", "discussion"),
                 (str(n + 2), "Conclusions", "conclusions"), ("", "Appendix", "appendix")]

    runs_config, runs_metrics = appendix_frames(every_run)
    body += [html_cell('<h2 class="section" id="appendix">Appendix</h2>'
                   '<h3 id="appendix-every-run">A. Every run</h3>'
                   + table(runs_config, "appendix-runs", "appendix", "tab:appendix:runs",
                            "Every run's configuration and status (epochs: epochs trained before early "
                            "stopping or the cap).")
                   + table(runs_metrics, "appendix-metrics", "appendix", "tab:appendix:metrics",
                            f"Every run's metrics: accuracy and loss of {html.escape(measured(every_run))}, "
                            "gap = train − validation accuracy, time = training wall time in seconds.")),
             html_cell('<h3 id="appendix-environment">B. Environment</h3>'
                   + table(pd.DataFrame(list(versions().items()), columns=["package", "version"]),
                            "versions", "versions", "tab:appendix:versions",
                            "Package versions.")
                   + f"<p>Parameters: <code>{html.escape(plan.source)}</code>, profile "
                   f"<code>{html.escape(rep.profile)}</code>. Executed study notebooks are saved beside "
                   "this report.</p>"),
             html_cell('<h3 id="appendix-parameters">C. Parameters</h3><p>The shared settings and each study\'s '
                   "settings after merging the defaults, the study files, the report file and any "
                   "<code>--set</code> (YAML; a study's runs are these settings applied to the base).</p>"
                   + '<div class="sb-params">'
                   + "".join(f'<div><h4>{html.escape(title)}</h4><pre class="yaml">{html.escape(text)}</pre></div>'
                             for title, text in parameters_yaml(plan)) + "</div>")]

    toc = ['<nav class="contents"><h2 id="contents">Contents</h2><ol>']
    toc += [f'<li><a href="#{anchor}"><span class="secnum">{num}</span> {html.escape(title)}</a></li>'
            for num, title, anchor in sections]
    toc.append("</ol></nav>")
    cells += [html_cell("".join(toc)), *body]
    for i, cell in enumerate(cells):  # unique ids: two studies of one kind share their template's ids
        cell.id = f"cell-{i}"
    return new_notebook(cells=cells, metadata={"title": rep.title,
                                               "kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


# ---------------------------------------------------------------- numbering and cross-references

def build(plan: Plan, outcomes: list[Outcome], html_path: Path, json_path: Path,
          changes: dict | None = None) -> None:
    """Write the report's JSON and HTML; each replaces the previous one only when complete."""
    rep = plan.report
    date = str(rep.date) if rep.date else dt.date.today().isoformat()
    nb = combined(plan, outcomes, date, changes)
    body = render(nb)
    data = {
        "title": rep.title, "author": rep.author, "course": rep.course, "date": date,
        "params_file": plan.source, "profile": rep.profile, "seed": rep.seed,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "studies": [{"name": o.name, "kind": plan.studies[o.name].kind, "title": plan.studies[o.name].title,
                     "status": o.status, "error": o.error, "seconds": round(o.seconds, 2),
                     "runs": len(o.records)} for o in outcomes],
        "runs": [{k: v for k, v in r.items() if k != "traceback"} | {"seconds": (r.get("metrics") or {}).get("seconds")}
                 for o in outcomes for r in o.records],
    }
    write_atomic(json_path, json.dumps(data, indent=1, allow_nan=False))
    write_atomic(html_path, body)


# ---------------------------------------------------------------- PDF

"""Stitching: the executed study notebooks and the generated text become one combined notebook,
rendered by nbconvert with the project's template into a single self-contained HTML file."""
from __future__ import annotations

import datetime as dt
import html
import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path

import nbformat
import pandas as pd
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers import metrics, narrate
from helpers.config import Plan
from helpers.execute import Outcome

TEMPLATES = Path(__file__).parent / "templates"
PACKAGES = ["tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "scikit-learn", "matplotlib",
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


def _html(content: str) -> nbformat.NotebookNode:
    """A cell whose only output is HTML: tables and headings that need ids or classes."""
    cell = new_code_cell("")
    cell.outputs = [new_output("display_data", data={"text/html": content, "text/plain": ""})]
    return cell


def _table(df: pd.DataFrame, table_id: str, cls: str) -> str:
    return df.to_html(table_id=table_id, classes=cls, na_rep="—", index=False, escape=True)


def _study_cells(nb: nbformat.NotebookNode, number: int) -> list:
    """A study's executed cells, minus its header, parameters and log noise; headings numbered."""
    cells, sub = [], 0
    for cell in nb.cells:
        if DROP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        if cell.cell_type == "markdown":
            def renumber(m):
                nonlocal sub
                sub += 1
                return f"### {number}.{sub} "
            cell.source = re.sub(r"^### ", renumber, cell.source, flags=re.M)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            # A notebook's own error output is replaced by the report's error box.
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "error"]
        cells.append(cell)
    return cells


def _error_box(outcome: Outcome) -> str:
    tb = re.sub(r"\x1b\[[0-9;]*m", "", outcome.traceback or "")  # ANSI colours from IPython
    return (f'<div class="study-error"><p><b>This study failed.</b> {html.escape(outcome.error or "")}</p>'
            + (f"<details><summary>Traceback</summary><pre>{html.escape(tb)}</pre></details>" if tb else "")
            + "</div>")


def methodology(plan: Plan, records: list[dict]) -> str:
    rep = plan.report
    info = next((r["data_info"] for r in records if r.get("data_info")), None)
    base_m, base_t = rep.base.model.model_dump(), rep.base.training.model_dump()
    profile = rep.profiles[rep.profile]
    lines = ["## 1. Methodology", "", "### 1.1 Data", ""]
    if info:
        lines.append(f"Dataset `{info['dataset']}` ({info['classes']} classes, inputs of shape "
                     f"{tuple(info.get('input_shape') or info.get('shape') or ())}), read from `{info['source']}`. Preprocessing: {info['preprocessing']}. "
                     f"Split: **{info['train']:,}** training, **{info['val']:,}** validation and "
                     f"**{info['test']:,}** test samples.")
        if info.get("storage"):
            lines[-1] += f" Features are stored as {info['storage']}."
        if info.get("example"):
            lines += ["", f"A training example, decoded: *{html.escape(str(info['example']))}*"]
    else:
        lines.append(f"Dataset `{rep.dataset}` (no run finished, so split sizes are unknown).")
    how = ("the first samples of the training subsample, in their original order"
           if rep.data.validation_method == "head" else f"a stratified sample of the training subsample, seed {rep.seed}")
    lines += ["",
              f"The validation set ({rep.data.validation_split:.0%}: {how}) is carved out of the training "
              "data. The test set is used once per run, after "
              "training, for the final metrics; it never influences early stopping or the choice of a best "
              "configuration, which is always made on validation accuracy.",
              "", f"Profile **{rep.profile}**: "
              + ", ".join([f"{profile.train_samples:,} training samples" if profile.train_samples else "all training samples",
                           f"{profile.test_samples:,} test samples" if profile.test_samples else "all test samples"])
              + " (subsamples are stratified and seeded)" * bool(profile.train_samples or profile.test_samples)
              + (f", at most {profile.epochs} epoch{'s' * (profile.epochs != 1)} per run." if profile.epochs
                 else ", the configured number of epochs."),
              "", "### 1.2 Model and training", "",
              f"Every run starts from one base configuration and a study changes only what it studies: "
              f"a {base_m.get('kind', 'mlp').upper()} with hidden layers {base_m.get('hidden')} "
              f"({base_m.get('activation')}, initializer {base_m.get('initializer')}), "
              + ("one sigmoid output unit (two classes); " if info and info.get("classes") == 2 else "softmax output; ")
              + f"optimizer {base_t.get('optimizer')} (learning rate {base_t.get('learning_rate')}), "
              f"batch size {base_t.get('batch_size')}, up to {base_t.get('epochs')} epochs, loss "
              f"{base_t.get('loss')}; "
              + (f"early stopping on {base_t['early_stopping'].get('monitor', 'val_loss')} with patience "
                 f"{base_t['early_stopping'].get('patience', 3)}, restoring the best weights."
                 if base_t.get("early_stopping") else "no early stopping."),
              "Each study's own settings are listed at the start of its section.",
              "", "### 1.3 Measurements", "",
              "Per run: train, validation and test accuracy and loss (of the restored model), macro F1 and "
              + ("ROC AUC, average precision and Brier score" if info and info.get("classes") == 2 else "one-vs-rest AUC")
              + " on the test set, the test confusion matrix, the overfitting gap (train − "
              "validation accuracy), the parameter count, epochs run and best epoch, and training wall time "
              f"(fit only, on {os.cpu_count()} CPU cores). Seed {rep.seed}; one run per configuration."]
    return "\n".join(lines)


def combined(plan: Plan, outcomes: list[Outcome], date: str) -> nbformat.NotebookNode:
    rep = plan.report
    records = [r for o in outcomes for r in o.records]
    cells = [_html('<div class="cover">'
                   f'<h1 id="title">{html.escape(rep.title)}</h1>'
                   + (f'<p class="author">{html.escape(rep.author)}</p>' if rep.author else "")
                   + (f'<p class="course">{html.escape(rep.course)}</p>' if rep.course else "")
                   + f'<p class="date">{html.escape(date)}</p></div>'),
             new_markdown_cell("## Abstract\n\n" + narrate.abstract(records))]
    n_end = len(outcomes) + 2
    toc = ['<nav class="contents"><h2 id="contents">Contents</h2><ol>',
           '<li><a href="#methodology">Methodology</a></li>']
    toc += [f'<li><a href="#study-{o.name}">{html.escape(plan.studies[o.name].title)}</a></li>' for o in outcomes]
    toc += ['<li><a href="#summary">Summary across studies</a></li>',
            '<li><a href="#conclusions">Conclusions</a></li>',
            '<li><a href="#appendix">Appendix</a></li></ol></nav>']
    cells.append(_html("".join(toc)))
    cells += [_html('<a id="methodology"></a>'), new_markdown_cell(methodology(plan, records))]

    for number, outcome in enumerate(outcomes, start=2):
        sp = plan.studies[outcome.name]
        head = f'<h2 id="study-{sp.name}">{number}. {html.escape(sp.title)}</h2>'
        if sp.question:
            head += f'<p class="question"><em>{html.escape(sp.question)}</em></p>'
        cells.append(_html(head))
        if outcome.status == "failed" and outcome.traceback:
            cells.append(_html(_error_box(outcome)))
        if outcome.notebook and outcome.notebook.exists():
            cells += _study_cells(nbformat.read(outcome.notebook, as_version=4), number)
        elif outcome.status == "failed" and not outcome.traceback:
            cells.append(_html(_error_box(outcome)))

    summary = narrate.summary(records).rename(columns={
        "best": "best configuration (by val acc)", "val_accuracy": "val acc", "test_accuracy": "test acc",
        "f1_macro": "F1 (macro)", "params": "parameters", "seconds": "time (s)"})
    summary = summary.round({"val acc": 4, "test acc": 4, "F1 (macro)": 4, "time (s)": 1})
    summary["parameters"] = summary["parameters"].astype("Int64")
    cells += [_html(f'<h2 class="section" id="summary">{n_end}. Summary across studies</h2>'
                    "<p>The best configuration of each study, chosen by validation accuracy; its test "
                    "accuracy is reported, never used to choose.</p>" + _table(summary, "summary-table", "summary")),
              _html(f'<h2 class="section" id="conclusions">{n_end + 1}. Conclusions</h2>'),
              new_markdown_cell(narrate.conclusions(records))]

    cells += [_html(f'<h2 class="section" id="appendix">Appendix</h2>'
                    "<h3>A. Every run</h3>" + _table(appendix_frame(records), "appendix-runs", "appendix")
                    + "<h3>B. Environment</h3>"
                    + _table(pd.DataFrame(list(versions().items()), columns=["package", "version"]),
                             "versions", "versions")
                    + f"<p>Parameters: <code>{html.escape(plan.source)}</code>, profile "
                    f"<code>{html.escape(rep.profile)}</code>. Executed study notebooks are saved beside "
                    "this report.</p>")]
    nb = new_notebook(cells=cells, metadata={"title": rep.title,
                                             "kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    return nb


def appendix_frame(records: list[dict]) -> pd.DataFrame:
    """Every run's configuration and metrics, one row each."""
    rows = []
    for r in records:
        m, t = r["config"]["model"], r["config"]["training"]
        reg = [f"dropout {m['dropout']}" + (" (gaussian)" if m["dropout_kind"] == "gaussian" else "")
               if m["dropout"] else "", f"L1 {m['l1']}" if m["l1"] else "", f"L2 {m['l2']}" if m["l2"] else "",
               "batch norm" if m["batch_norm"] else ""]
        arch = (f"conv {m['filters']} + " if m["kind"] == "cnn" else "") + f"dense {m['hidden']}"
        row = {"study": r["study"], "configuration": r["label"], "seed": r["seed"], "model": arch,
               "activation": m["activation"], "regularization": ", ".join(x for x in reg if x) or "none",
               "optimizer": f"{t['optimizer']} ({t['learning_rate']:g})", "batch": t["batch_size"],
               "loss": t["loss"], "status": r["status"]}
        mt = r.get("metrics") or {}
        for k in ("epochs_run", "best_epoch", "train_accuracy", "val_accuracy", "test_accuracy", "test_loss",
                  "f1_macro", "auc_ovr", "gap", "params", "seconds"):
            row[metrics.TABLE_COLUMNS.get(k, k)] = mt.get(k)
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in df.columns:
        if df[col].dtype.kind == "f":
            df[col] = df[col].round(1 if col == metrics.TABLE_COLUMNS["seconds"] else 4)
    return df


def render(nb: nbformat.NotebookNode) -> str:
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="studybook", extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    return body


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def build(plan: Plan, outcomes: list[Outcome], html_path: Path, json_path: Path) -> None:
    """Write the report's JSON and HTML; each replaces the previous one only when complete."""
    rep = plan.report
    date = str(rep.date) if rep.date else dt.date.today().isoformat()
    nb = combined(plan, outcomes, date)
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
